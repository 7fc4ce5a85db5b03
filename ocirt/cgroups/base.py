"""What both drivers share: creation with rollback, joining, killing,
destruction. A driver supplies the directories and the resource plan.
delete and kill reopen a cgroup on every call: the resource plans, device
rules and stats modules are imported only by the methods that need them."""
import posix
import time

from ..errors import OcirtError
from ..pathops import isdir
from . import fs

SIGKILL = 9  # not signal.SIGKILL: `import signal` costs ~4 ms (enum)


class Cgroup:
    """A container's cgroup. `dirs` maps a v1 controller (or "" for the
    cgroup2 directory) to its directory; several may share one directory."""
    version = 0
    holds_helper = False   # True: the cgroup is made around the helper (start_around)
    skipped = False        # True: none (none.Skipped, a rootless container's)
    rootless = False       # True: device rules the kernel refuses the caller are gone without

    def __init__(self, dirs, made=()):
        self.dirs = dirs
        self.made = list(made)  # what create makes, parents included: destroy removes them

    def to_state(self):
        return {"version": self.version, "dirs": dict(self.dirs), "made": self.made}

    def plan_made(self):
        """Note the directories create will make (recorded before it makes them)."""
        self.made = [d for leaf in self.unique_dirs() for d in fs.missing(leaf)]

    def unique_dirs(self):
        return list(dict.fromkeys(self.dirs.values()))

    # --- creation -----------------------------------------------------------
    def create(self, resources, where="linux.resources"):
        """Make (or reuse) the cgroup and apply resources; -> the number of
        processes already in a reused cgroup, which the caller warns of."""
        from .paths import check_lengths
        check_lengths(self.unique_dirs())
        made = []
        try:
            for d in self.unique_dirs():
                made += fs.make_dirs(d)
            found = self._check_reused([d for d in self.unique_dirs() if d not in made])
            self._prepare(made)
            self._apply(resources or {}, where, updating=False)
        except BaseException:
            for d in reversed(made):
                fs.remove_tree(d)
            raise
        return found

    def _check_reused(self, reused):
        """A frozen cgroup would stop the helper as soon as it joins (runc
        refuses it too); processes already there are the caller's to warn of."""
        if not reused:
            return 0
        if self.is_frozen():
            raise OcirtError("container's cgroup unexpectedly frozen (thaw it, or give another path)",
                             "linux.cgroupsPath")
        return len({p for d in reused for p in fs.procs(d)})

    def update(self, resources, where="linux.resources"):
        self._apply(resources, where, updating=True)

    def _apply(self, resources, where, updating):
        fs.write_all(self._plan(resources, where, updating), self._write)
        if not updating or (resources.get("devices") is not None):
            from . import devices
            try:
                self._set_devices(devices.rules(resources.get("devices"), where + ".devices"), where + ".devices")
            except fs.FsError as e:
                # unprivileged, the kernel refuses device rules (runc ignores them rootless):
                # a user namespace gets no device node of its own anyway
                if not (self.rootless and e.errno in fs.DENIED):
                    raise

    def _write(self, w):
        d = self._dir_for(w)
        path = f"{d}/{w.file}"
        fs.write(path, w.value, w.where)
        if w.check:
            back, want = fs.read_int(path), int(w.value)
            if back not in (want, want - want % posix.sysconf("SC_PAGE_SIZE")):
                raise OcirtError(f"{want} is not honoured by this kernel: {w.file} reads {back}", w.where)

    def _dir_for(self, w):
        if w.ctrl not in self.dirs:
            raise OcirtError(f"not supported by this host: no {w.ctrl} cgroup controller is mounted", w.where)
        return self.dirs[w.ctrl]

    # --- processes ----------------------------------------------------------
    def join_files(self):
        return [d + "/cgroup.procs" for d in self.unique_dirs()]

    def clone_join(self):
        """How a new process is born in this cgroup: (cgroup.procs files the
        helper writes itself into, cgroup2 dir it clones into or "")."""
        v2 = self.v2_dir()
        return [f for f in self.join_files() if f != f"{v2}/cgroup.procs"], v2 or ""

    def sub(self, subs):
        """This cgroup with exec --cgroup's existing sub-cgroups in place
        (subs: paths.parse_sub_cgroups)."""
        from .paths import sub_dirs
        dirs = sub_dirs(self.dirs, subs)
        for d in set(dirs.values()) - set(self.dirs.values()):
            if not isdir(d):
                raise OcirtError(f"--cgroup: there is no sub-cgroup {d} (exec joins existing ones only)")
        return self.with_dirs(dirs)

    def with_dirs(self, dirs):
        """The same kind of cgroup (a driver may carry more than dirs) at dirs."""
        return type(self)(dirs)

    def helper_leaves(self, placement=None):
        """cgroup.procs files a helper that waits for its process goes back to
        (placement: the runtime's cgroups.Placement, if read already)."""
        from . import own_procs
        return own_procs(self, placement)

    def v2_dir(self):
        return self.dirs.get("")

    def add(self, pid):
        for f in self.join_files():
            for i in range(5):
                try:
                    fs.write(f, str(pid), None)
                    break
                except OcirtError:
                    # a task still in TASK_NEW answers EINVAL for a moment (runc retries too)
                    if i == 4:
                        raise
                    time.sleep(0.03)

    def pids(self):
        return fs.procs(self._procs_dir())

    def kill_all(self, sig):
        """Signal every process; frozen meanwhile so none can fork past us.
        Thawed after, and after SIGKILL even when the container was paused:
        a task frozen by the v1 freezer does not die until thawed. Other
        signals leave a paused container paused (they arrive on resume)."""
        if not self.pids() and not (sig == SIGKILL and self.is_frozen()):
            return  # nothing to signal: skip the freeze/thaw round trip
        froze = self._try_freeze()
        try:
            for pid in self.pids():
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if froze or (sig == SIGKILL and self.is_frozen()):
                self.thaw()

    def _try_freeze(self):
        if self.is_frozen():
            return False
        try:
            self.freeze()
            return True
        except OcirtError:
            return False

    def freeze(self, timeout=5.0):
        self._set_frozen(True)
        if not fs.wait_for(self.is_frozen, timeout):
            self.thaw()
            raise OcirtError(f"the container's processes did not freeze within {timeout:g}s")

    def thaw(self):
        self._set_frozen(False)

    def destroy(self):
        """Remove the cgroup, and the parents made for it that nothing else uses."""
        leaves = self.unique_dirs()
        for d in leaves:
            fs.remove_tree(d, on_busy=_kill_joined)
        for d in reversed(self.made):
            if d not in leaves:   # those went with their trees
                fs.remove_empty(d)

    # subclasses: _prepare(made), _plan(resources, where, updating),
    # _set_devices(rules, where), _set_frozen(bool), is_frozen(), _procs_dir(),
    # stats(), oom_count()



def _kill_joined(d):
    """A task in a cgroup being removed joined after the kill: the helper
    of a create killed part way goes on until it has cloned the init."""
    for pid in fs.procs(d):
        try:
            posix.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass
