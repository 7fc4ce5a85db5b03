"""The host facts a plan needs (ocirt.plan.context.Host), read once per
create or exec: plan/ reads nothing of the host itself."""
import posix

from ocirt.errors import OcirtError
from ocirt.pathops import exists, is_dir_mode, read_text
from ocirt.plan.context import Host
from ocirt.rootless import in_user_namespace


def gather(spec, bundle=""):
    """The Host for spec (a config, or {"process": ...} for an exec): the
    LSMs and resctrl are looked up only when it asks for them."""
    proc = spec.get("process") or {}
    linux = spec.get("linux") or {}
    ids = (posix.geteuid(), posix.getegid())
    return Host(last_cap=_last_cap(), bounding=bounding_set(), kcore=exists("/proc/kcore"),
                apparmor=bool(proc.get("apparmorProfile")) and _apparmor_enabled(),
                selinux=bool(proc.get("selinuxLabel") or linux.get("mountLabel")) and _selinux_enabled(),
                resctrl=_resctrl() if linux.get("intelRdt") is not None else None,
                sources=_sources(spec, bundle) if spec.get("mounts") else {},
                ids=ids, id_tools=_id_tools(linux, ids) if ids[0] else {}, in_userns=in_user_namespace())


def bounding_set():
    """The runtime's own capability bounding set: what it can grant."""
    for line in read_text("/proc/self/status").splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return 0


def _last_cap():
    try:
        return int(read_text("/proc/sys/kernel/cap_last_cap"))
    except OSError:
        return Host().last_cap  # every capability ocirt knows


def _apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().startswith("Y")
    except OSError:
        return False


def _selinux_enabled():
    try:
        with open("/sys/fs/selinux/enforce"):
            return True
    except OSError:
        return False


def _resctrl():
    from ocirt.intelrdt import mount_point
    try:
        return mount_point()
    except OcirtError:
        return None


def _id_tools(linux, ids):
    """The setuid helpers the id maps of an unprivileged caller need (its
    subordinate ranges), found in PATH as runc finds them."""
    from ocirt.plan.namespaces import ID_TOOLS, needs_id_tool
    needed = [tool for key, tool in ID_TOOLS.items() if needs_id_tool(linux, key, ids)]
    if not needed:
        return {}
    import shutil
    return {tool: path for tool in needed if (path := shutil.which(tool))}


def _sources(spec, bundle):
    from ocirt.plan.mounts import bind_sources  # not for exec, whose hot path does without it
    return {p: _kind(p) for p in bind_sources(spec, bundle)}


def _kind(path):
    """What a bind source is: "dir", "file", or why it cannot be used."""
    try:
        return "dir" if is_dir_mode(posix.stat(path).st_mode) else "file"
    except OSError as e:
        return e.strerror.lower()
