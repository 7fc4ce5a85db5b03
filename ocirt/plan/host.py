"""Fields that need a facility of the host: linux.intelRdt (resctrl) and
linux.mountLabel (SELinux). Where the facility is missing, asking for the
field is an error (runtime.md: a runtime must not silently ignore it)."""
from ocirt.errors import OcirtError


def check(linux):
    if linux.get("intelRdt") is not None:
        if not _mounted("resctrl"):
            raise OcirtError("no resctrl filesystem is mounted on this host (Intel RDT)", "linux.intelRdt")
        raise OcirtError("Intel RDT is not supported by ocirt yet", "linux.intelRdt")
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
