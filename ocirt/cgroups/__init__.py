"""Container cgroups: a cgroupfs v1 and a cgroup v2 driver behind one
interface (base.Cgroup), chosen by the host as runc chooses, and the
systemd driver (systemd.py, on either) when --systemd-cgroup asks for it."""


class Placement:
    """Where the runtime itself is: its /proc/self/cgroup and the cgroup v1
    hierarchies of its mountinfo, read once for a create (which needs them
    for the warm-up, the container's paths and the helper's way back)."""

    def __init__(self):
        from . import paths
        self.own = paths.parse_proc_cgroup(_read("/proc/self/cgroup"))
        self.v1_mounts = paths.parse_v1_mounts(_read("/proc/self/mountinfo"))


def for_container(cgroups_path, container_id, systemd=False, rootless=False, placement=None):
    """The Cgroup for linux.cgroupsPath (absolute; relative to the runtime's
    own cgroup; or, when absent, the container id relative to it, as runc 1.1;
    with systemd, "slice:prefix:name", of the user's manager when rootless).
    placement: the runtime's Placement, if read already."""
    if systemd:
        from . import systemd as sd
        return sd.for_container(cgroups_path, container_id, rootless)
    from . import paths
    inner = paths.inner_path(cgroups_path, container_id)
    placement = placement or Placement()
    own = placement.own
    if paths.is_unified():
        from .v2 import V2
        return V2({"": paths.v2_dir(paths.ROOT, own.get("", "/"), inner, parent_of_own=True)})
    from .v1 import V1
    dirs = {}
    for ctrl, (mnt, root) in placement.v1_mounts.items():
        dirs[ctrl] = paths.v1_dir(mnt, root, own.get(ctrl, "/"), inner)
    if paths.is_unified(paths.HYBRID_UNIFIED):
        dirs[""] = paths.v2_dir(paths.HYBRID_UNIFIED, own.get("", "/"), inner, parent_of_own=False)
    return V1(dirs)


def own_procs(cg, placement=None):
    """The runtime's own cgroup.procs in each hierarchy a helper joins for cg
    (clone_join): where a helper that waits for its process goes back to,
    so that kill --all, ps and pids.max meet only the container's processes."""
    joined = set(cg.clone_join()[0])
    if not joined:
        return []
    own = own_v1_procs(placement)
    out = [own[ctrl] for ctrl, d in cg.dirs.items() if ctrl in own and d + "/cgroup.procs" in joined]
    return list(dict.fromkeys(out))


def own_v1_procs(placement=None):
    """{v1 controller: the runtime's own cgroup.procs in its hierarchy}."""
    from ..pathops import normpath
    from . import paths
    placement = placement or Placement()
    return {ctrl: normpath(paths.v1_dir(mnt, root, placement.own.get(ctrl, "/"), ".")) + "/cgroup.procs"
            for ctrl, (mnt, root) in placement.v1_mounts.items()}


def from_state(d):
    """Reopen the Cgroup that to_state() described."""
    if d.get("skipped"):
        from .none import Skipped
        return Skipped(d["version"])
    if "systemd" in d:
        from .systemd import SystemdV1, SystemdV2
        return (SystemdV2 if d["version"] == 2 else SystemdV1).from_state(d)
    if d["version"] == 2:
        from .v2 import V2
        return V2(d["dirs"], d.get("made", ()))
    from .v1 import V1
    return V1(d["dirs"], d.get("made", ()))


def _read(path):
    from ..pathops import read_text
    return read_text(path)
