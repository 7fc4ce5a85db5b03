"""Fields that need a facility of the host: linux.intelRdt (resctrl),
linux.mountLabel (SELinux) and linux.netDevices (host network devices).
Asking for one that cannot be honoured is an error: a runtime must not
silently ignore a field (config.md, Valid values)."""
from ocirt.errors import OcirtError, jpath

NO_RESCTRL = "no resctrl filesystem is mounted on this host (Intel RDT)"


def check(linux, ns, host):
    """ns: {type: path or None} of linux.namespaces; host: the Host."""
    if linux.get("intelRdt") is not None and host.resctrl is None:
        raise OcirtError(NO_RESCTRL, "linux.intelRdt")
    if linux.get("netDevices"):
        net_devices(linux["netDevices"], ns)
    if linux.get("mountLabel") and not host.selinux:
        raise OcirtError("selinux is not enabled on this host", "linux.mountLabel")


def net_devices(devices, ns):
    """linux.netDevices, checked here; the runtime moves them once the
    container's network namespace exists (ocirt/netdevices.py)."""
    if "network" not in ns:
        raise OcirtError("moving network devices needs a network namespace of the container "
                         "in linux.namespaces", "linux.netDevices")
    taken = {}
    for host_name, dev in devices.items():
        where = jpath("linux.netDevices", host_name)
        _ifname(host_name, where, template=False)
        name = dev.get("name")
        if name is not None:
            _ifname(name, jpath(where, "name"), template=True)
        target = name or host_name
        if "%" not in target and taken.setdefault(target, host_name) != host_name:
            raise OcirtError(f'two devices would be named "{target}" in the container '
                             f'(this one and {taken[target]})', jpath(where, "name") if name else where)


def _ifname(name, where, template):
    """A name the kernel takes for a network interface (dev_valid_name); a
    template has one %d, for which the kernel puts a free number."""
    bad = not 0 < len(name.encode()) < 16 or name in (".", "..") \
        or any(c in "/: \t\n\v\f\r" for c in name)
    if "%" in name:
        head, sep, tail = name.partition("%d")
        bad = bad or not template or not sep or "%" in head + tail
    if bad:
        what = "a network interface name or a template with one %d" if template else "a network interface name"
        raise OcirtError(f'"{name}" is not {what} (1-15 bytes, none of / : or blanks)', where)
