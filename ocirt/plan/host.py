"""Fields that need a facility of the host: linux.intelRdt (resctrl) and
linux.mountLabel (SELinux), and those not built yet (linux.netDevices).
Asking for one that cannot be honoured is an error: a runtime must not
silently ignore a field (config.md, Valid values)."""
from ocirt.errors import OcirtError


def check(linux):
    if linux.get("intelRdt") is not None:
        if not _mounted("resctrl"):
            raise OcirtError("no resctrl filesystem is mounted on this host (Intel RDT)", "linux.intelRdt")
        raise OcirtError("Intel RDT is not supported by ocirt yet", "linux.intelRdt")
    if linux.get("netDevices"):
        raise OcirtError("moving network devices is not supported by ocirt yet", "linux.netDevices")
    if linux.get("mountLabel") and not selinux_enabled():
        raise OcirtError("selinux is not enabled on this host", "linux.mountLabel")


def selinux_enabled():
    try:
        with open("/sys/fs/selinux/enforce"):
            return True
    except OSError:
        return False


def _mounted(fstype):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split(" - ", 1)[-1].split(" ", 1)[0] == fstype:
                return True
    return False
