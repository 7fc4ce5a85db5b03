"""No cgroup: what a rootless container gets when the caller may not make
one and the config sets no limit (runc goes on without one too). Nothing
joins it; what only a cgroup can do (ps, kill --all, pause, update, stats)
fails and says why."""
from ..errors import OcirtError, jpath
from .base import Cgroup
from .fs import DENIED, FsError

WHY = "the container has no cgroup (rootless, without permission to make one)"


def create_rootless(cgroup, resources, log, own_pidns=True):
    """A rootless create's cgroup without a cgroupsPath (runc's rule: an
    explicit one must be made): made where the caller may (a delegated
    subtree), its device rules if the kernel takes them; else none unless
    a limit needs it, with a warning (runc's) only without a pid namespace
    of its own (own_pidns), which then kills them all. -> (cgroup,
    processes found in a reused one)."""
    cgroup.rootless = True
    try:
        return cgroup, cgroup.create(resources)
    except FsError as e:
        if e.errno not in DENIED:
            raise
        denied = e.msg
    limit = first_limit(resources)
    if limit:
        raise OcirtError(f"cannot be applied: a rootless container without a cgroup ({denied}); "
                         "remove the limit or run where the user's cgroup is delegated", limit)
    if own_pidns:
        log.debug(f"{denied}: the container runs without a cgroup (rootless)")
    else:
        log.warn(f"{denied}: the container runs without a cgroup (rootless) and without a pid namespace of "
                 "its own: nothing can end all its processes")
    return Skipped(cgroup.version), 0


def first_limit(resources, where="linux.resources"):
    """The path of the first field of linux.resources that sets a value
    only a cgroup applies (devices excepted: see create_rootless), or None."""
    if isinstance(resources, dict):
        items = ((k, v) for k, v in resources.items() if not (where == "linux.resources" and k == "devices"))
    elif isinstance(resources, list):
        items = enumerate(resources)
    else:
        return None if resources is None else where
    for k, v in items:
        found = first_limit(v, jpath(where, k))
        if found:
            return found
    return None


class Skipped(Cgroup):
    skipped = True

    def __init__(self, version):
        super().__init__({})
        self.version = version

    def to_state(self):
        return {"version": self.version, "dirs": {}, "made": [], "skipped": True}

    def pids(self):
        return []   # what is left once the init is killed: nothing (the pid namespace goes with it)

    def is_frozen(self):
        return False

    def oom_count(self):
        return 0

    def sub(self, subs):
        raise OcirtError(f"--cgroup: {WHY}")

    def _set_frozen(self, frozen):
        raise OcirtError(f"cannot {'freeze' if frozen else 'thaw'}: {WHY}")

    def _plan(self, resources, where, updating):
        raise OcirtError(f"cannot be applied: {WHY}", where or None)

    def _set_devices(self, rules, where):
        pass

    def stats(self):
        raise OcirtError(f"no stats: {WHY}")
