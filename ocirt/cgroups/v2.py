"""The cgroup v2 (unified) driver: one directory; devices through eBPF."""
import posix

from ..errors import OcirtError
from ..pathops import exists, parent
from ..state import frozen_in
from . import fs
from .base import SIGKILL, Cgroup


class V2(Cgroup):
    version = 2

    @property
    def dir(self):
        return self.dirs[""]

    def _prepare(self, made):
        # As runc: enable every available controller in each ancestor's
        # subtree_control. Unlike runc, never the hierarchy root's: that is
        # the host's own setting (systemd hosts enable them all anyway). A
        # level that refuses (it has processes of its own, say) is left as
        # is: a resource that then needs a missing controller fails, naming
        # its field.
        import os
        from . import paths
        root = paths.HYBRID_UNIFIED if self.dir.startswith(paths.HYBRID_UNIFIED + "/") else paths.ROOT
        level = root
        for part in os.path.relpath(os.path.dirname(self.dir), root).split("/"):
            if part != ".":
                level += "/" + part
                enable_controllers(level)

    def _plan(self, resources, where, updating):
        if fs.no_writes(resources):
            return []
        from . import v2plan
        return v2plan.plan(resources, where, _Host(self.dir), updating)

    def _dir_for(self, w):
        ctrl = w.file.split(".", 1)[0]
        if ctrl != "cgroup" and not exists(f"{self.dir}/{w.file}"):
            check_controller(self.dir, ctrl, w.where)
        return self.dir

    def _set_devices(self, rules, where):
        from . import bpf, devices
        bpf.set_device_filter(self.dir, devices.bpf_program(rules), where)

    def _set_frozen(self, frozen):
        fs.write(self.dir + "/cgroup.freeze", "1" if frozen else "0", None)

    def is_frozen(self):
        return frozen_in(2, self.dirs)

    def _procs_dir(self):
        return self.dir

    def kill_all(self, sig):
        if sig == SIGKILL and exists(self.dir + "/cgroup.kill"):
            fs.write(self.dir + "/cgroup.kill", "1", None)
        else:
            super().kill_all(sig)

    def stats(self):
        from . import stats
        return stats.v2(self.dir)

    def oom_count(self):
        return fs.read_keyed(self.dir + "/memory.events").get("oom_kill", 0)

    def oom_notifier(self):
        """memory.events, which polls POLLPRI when it changes (kernfs notify)
        once it has been read."""
        try:
            fd = posix.open(self.dir + "/memory.events", posix.O_RDONLY | posix.O_CLOEXEC)
        except FileNotFoundError:  # no memory controller here
            return None

        def rearm():
            posix.lseek(fd, 0, 0)  # SEEK_SET
            posix.read(fd, 4096)
        rearm()
        from select import POLLPRI  # here: only `events` waits for an OOM
        return fd, POLLPRI, rearm


def enable_controllers(level):
    available = fs.read(level + "/cgroup.controllers").split()
    missing = [c for c in available if c not in fs.read(level + "/cgroup.subtree_control").split()]
    if not missing:
        return
    try:
        fs.write(level + "/cgroup.subtree_control", " ".join("+" + c for c in missing), None)
    except OcirtError:
        for c in missing:
            try:
                fs.write(level + "/cgroup.subtree_control", "+" + c, None)
            except OcirtError:
                pass


def check_controller(d, ctrl, where):
    """Fail, naming the field, when controller ctrl is not enabled for cgroup d."""
    try:
        enabled = fs.read(d + "/cgroup.controllers").split()
    except OSError:
        enabled = []
    if ctrl not in enabled:
        raise OcirtError(f"not supported by this host: the {ctrl} controller is not enabled for {d} "
                         f"(see {parent(d)}/cgroup.subtree_control)", where)


def v2_hugetlb_file(v1_file):
    """hugetlb.2MB.limit_in_bytes -> hugetlb.2MB.max (and .rsvd. likewise)."""
    return v1_file.replace(".limit_in_bytes", ".max")


class _Host:
    def __init__(self, d):
        self.d = d

    def has(self, file):
        return exists(f"{self.d}/{file}")

    def read_int(self, file):
        return fs.read_int(f"{self.d}/{file}")
