"""The cgroupfs v1 driver: one directory per mounted hierarchy, plus the
cgroup2 directory on hybrid hosts (joined, and used for hugetlb when the
host bound that controller to cgroup2, as this kind of host does)."""
import posix

from ..errors import OcirtError
from ..pathops import exists, parent
from ..state import frozen_in
from . import fs
from .base import Cgroup


class V1(Cgroup):
    version = 1

    def _prepare(self, made):
        # A cpuset cgroup with empty cpus/mems accepts no task: fill them
        # from the parent, outermost first, in every ancestor still empty
        # (new ones, and existing ones someone left empty), as runc does.
        leaf = self.dirs.get("cpuset")
        if not leaf:
            return
        # Each file is read once: what an ancestor has (or got) its child gets.
        chain = []
        d = leaf
        while True:
            have = {key: fs.read(f"{d}/{key}") for key in ("cpuset.cpus", "cpuset.mems")}
            if all(have.values()):
                break
            chain.append((d, have))
            d = parent(d)
        for d, own in reversed(chain):
            for key, value in own.items():
                if value:
                    have[key] = value
                else:
                    fs.write(f"{d}/{key}", have[key], "linux.cgroupsPath")

    def _plan(self, resources, where, updating):
        if fs.no_writes(resources):
            return []
        from . import v1plan
        return [self._hugetlb_on_v2(w) for w in v1plan.plan(resources, where, _Host(self), updating)]

    def _hugetlb_on_v2(self, w):
        if w.ctrl != "hugetlb" or "hugetlb" in self.dirs or "" not in self.dirs:
            return w
        from .v2 import check_controller, v2_hugetlb_file
        check_controller(self.dirs[""], "hugetlb", w.where)
        return fs.Write("", v2_hugetlb_file(w.file), w.value, w.where, w.check)

    def _set_devices(self, rules, where):
        if "devices" not in self.dirs:
            raise OcirtError("not supported by this host: no devices cgroup controller is mounted", where)
        from .devices import v1_lines
        for file, line in v1_lines(rules):
            fs.write(f"{self.dirs['devices']}/{file}", line, where)

    def _set_frozen(self, frozen):
        if "freezer" not in self.dirs:
            raise OcirtError("cannot freeze: no freezer cgroup controller is mounted")
        fs.write(self.dirs["freezer"] + "/freezer.state", "FROZEN" if frozen else "THAWED", None)

    def freeze(self, timeout=5.0):
        # A v1 freeze can stay in FREEZING (a task in an uninterruptible
        # sleep): ask again every 100 ms until it holds or time runs out.
        waited = 0.0
        while True:
            self._set_frozen(True)
            if fs.wait_for(self.is_frozen, 0.1):
                return
            waited += 0.1
            if waited >= timeout:
                self.thaw()
                raise OcirtError(f"the container's processes did not freeze within {timeout:g}s")

    def is_frozen(self):
        return frozen_in(1, self.dirs)

    def _procs_dir(self):
        for key in ("devices", "freezer", "pids", "memory"):
            if key in self.dirs:
                return self.dirs[key]
        return self.unique_dirs()[0]

    def stats(self):
        from . import stats
        s = stats.v1(self.dirs)
        if "hugetlb" not in self.dirs and "" in self.dirs:
            s["hugetlb"] = stats.v2_hugetlb(self.dirs[""])
        return s

    def oom_count(self):
        if "memory" not in self.dirs:
            return 0
        return fs.read_keyed(self.dirs["memory"] + "/memory.oom_control").get("oom_kill", 0)

    def oom_notifier(self):
        """An eventfd the memory controller signals on OOM (cgroup.event_control)."""
        if "memory" not in self.dirs:
            return None
        d = self.dirs["memory"]
        efd = posix.eventfd(0, posix.EFD_CLOEXEC)
        ofd = posix.open(d + "/memory.oom_control", posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            fs.write(d + "/cgroup.event_control", f"{efd} {ofd}", None)
        finally:
            posix.close(ofd)
        from select import POLLIN  # here: only `events` waits for an OOM
        return efd, POLLIN, lambda: posix.eventfd_read(efd)


class _Host:
    def __init__(self, cg):
        self.dirs = cg.dirs

    def has(self, ctrl, file):
        return ctrl in self.dirs and exists(f"{self.dirs[ctrl]}/{file}")

    def read_int(self, ctrl, file):
        return fs.read_int(f"{self.dirs[ctrl]}/{file}")
