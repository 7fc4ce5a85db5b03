"""The systemd cgroup driver (cgroup v2): the container's cgroup is a
transient scope that systemd makes, around ocirt-init itself (a scope starts
with a process in it); the init is then cloned into it. systemd sets what it
manages (sdunit.resource_properties); every other file, and the device
filter, is written as the cgroupfs driver writes them (Delegate=yes)."""
from ..errors import OcirtError
from . import fs, paths, sdbus, sdunit
from .v2 import V2


def for_container(cgroups_path, container_id):
    slice_, unit = sdunit.unit_of(cgroups_path, container_id)   # bad input first, on any host
    sdbus.check_systemd()
    if not paths.is_unified():
        raise OcirtError(f"{sdbus.FLAG}: only pure cgroup v2 hosts are supported "
                         "(this host has cgroup v1 controllers)")
    return SystemdV2({"": paths.ROOT + sdunit.expand_slice(slice_).rstrip("/") + "/" + unit},
                     unit, slice_)


class SystemdV2(V2):
    holds_helper = True

    def __init__(self, dirs, unit, slice_):
        super().__init__(dirs)
        self.unit, self.slice = unit, slice_
        self._pending = None
        self.started = True    # reopened from a state: the scope was made

    @classmethod
    def from_state(cls, d):
        return cls(d["dirs"], d["systemd"]["unit"], d["systemd"]["slice"])

    def to_state(self):
        return dict(super().to_state(), systemd={"unit": self.unit, "slice": self.slice})

    def plan_made(self):
        """Nothing of ours to remove later: systemd makes and removes the
        directories of the scope and its slices."""
        self.made = []

    def create(self, resources, where="linux.resources"):
        """Only check now: the scope is made in start_around, once the helper runs."""
        self._pending = (resources or {}, where, sdunit.resource_properties(resources, where))
        self.started = False
        return 0

    def start_around(self, pid, container_id):
        """Start the scope with pid (the helper) in it, then write the rest."""
        resources, where, props = self._pending
        with _manager() as m:
            m.start_scope(self.unit, sdunit.unit_properties(self.slice, container_id) + props +
                          [("PIDs", "au", [pid])])
            self.started = True
            try:
                self._apply(resources, where, updating=False)
            except BaseException:
                m.stop(self.unit)
                raise

    def helper_leaves(self):
        """A helper that waits for its process goes back to our own cgroup."""
        own = paths.parse_proc_cgroup(fs.read("/proc/self/cgroup")).get("", "/")
        return [paths.ROOT + own.rstrip("/") + "/cgroup.procs"]

    def update(self, resources, where="linux.resources"):
        props = sdunit.resource_properties(resources, where)
        if props:
            with _manager() as m:
                m.set_properties(self.unit, props)
        super().update(resources, where)

    def destroy(self):
        if self.started:   # a create that failed before it has no scope, and needs no bus
            with _manager() as m:
                m.stop(self.unit)
        super().destroy()   # sub-cgroups the container made, if systemd left any


class _manager:
    def __enter__(self):
        self.m = sdbus.Manager()
        return self.m

    def __exit__(self, *exc):
        self.m.close()
