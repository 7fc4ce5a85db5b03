"""The systemd cgroup driver: the container's cgroup is a transient scope
that systemd makes, around ocirt-init itself (a scope starts with a process
in it); the init is then cloned into it. systemd sets what it manages
(sdunit.resource_properties, the device policy of sddevices); every other
file, and our own device filter, is written as the cgroupfs driver writes
them (Delegate=yes). On cgroup v1 systemd makes the scope only in the
hierarchies it manages: the same path is made in the others (cpuset,
freezer, net_cls...), and the helper joins it there, as runc's v1 driver does.
Rootless, the scope is the user's manager's (the user bus, as runc), under
that manager's own cgroup, on cgroup v2 only (v1 delegates nothing to a user)."""
from ..errors import OcirtError
from . import fs, paths, sdbus, sdunit
from .v1 import V1
from .v2 import V2


def for_container(cgroups_path, container_id, rootless=False):
    default = sdunit.USER_SLICE if rootless else sdunit.DEFAULT_SLICE
    slice_, unit = sdunit.unit_of(cgroups_path, container_id, default)   # bad input first, on any host
    sdbus.check_systemd()
    inner = sdunit.expand_slice(slice_).rstrip("/") + "/" + unit
    if rootless:
        if not paths.is_unified():
            raise OcirtError(f"{sdbus.FLAG}: a rootless container's cgroup needs cgroup v2 (the user's systemd "
                             "manager is delegated none of the v1 hierarchies)")
        with _manager(user=True) as m:   # /user.slice/user-UID.slice/user@UID.service
            base = m.control_group().rstrip("/")
        return SystemdV2({"": paths.ROOT + base + inner}, unit, slice_, user=True)
    if paths.is_unified():
        return SystemdV2({"": paths.ROOT + inner}, unit, slice_)
    # systemd's PID 1 is in /init.scope: the slices hang from each hierarchy's root
    dirs = {ctrl: paths.v1_dir(mnt, root, "/", inner)
            for ctrl, (mnt, root) in paths.parse_v1_mounts(fs.read("/proc/self/mountinfo")).items()}
    if "devices" not in dirs:   # the device policy is the container's security: no way around it
        raise OcirtError(f"{sdbus.FLAG}: no devices cgroup controller is mounted")
    if paths.is_unified(paths.HYBRID_UNIFIED):
        dirs[""] = paths.HYBRID_UNIFIED + inner
    return SystemdV1(dirs, unit, slice_)


class _Systemd:
    """What the v1 and v2 drivers share: the scope's life over D-Bus. Mixed
    in before V1 or V2, which do the cgroupfs part. user: the scope is the
    user's manager's (rootless)."""
    holds_helper = True

    def __init__(self, dirs, unit, slice_, user=False):
        super().__init__(dirs)
        self.unit, self.slice, self.user = unit, slice_, user
        self.rootless = user   # device rules the kernel refuses the user are left out
        self._pending = None
        self.warnings = []
        self.started = True    # reopened from a state: the scope was made

    @classmethod
    def from_state(cls, d):
        sd = d["systemd"]
        return cls(d["dirs"], sd["unit"], sd["slice"], sd.get("user", False))

    def with_dirs(self, dirs):
        return type(self)(dirs, self.unit, self.slice, self.user)

    def to_state(self):
        sd = {"unit": self.unit, "slice": self.slice, **({"user": True} if self.user else {})}
        return dict(super().to_state(), systemd=sd)

    def plan_made(self):
        """Nothing of ours to remove later but the scope's own directories:
        systemd makes and removes the slices."""
        self.made = []

    def create(self, resources, where="linux.resources"):
        """Only check now: the scope is made in start_around, once the helper runs."""
        from . import devices
        r = resources or {}
        rules = devices.rules(r.get("devices"), where + ".devices")
        props, self.warnings = _device_properties(rules, where + ".devices")
        props += sdunit.resource_properties(r, where, self.version)
        self._pending = (r, where, props)
        self.started = False
        return 0

    def start_around(self, pid, container_id):
        """Start the scope with pid (the helper) in it, then write the rest."""
        resources, where, props = self._pending
        with _manager(self.user) as m:
            m.start_scope(self.unit, sdunit.unit_properties(self.slice, container_id, self.version) + props +
                          [("PIDs", "au", [pid])])
            self.started = True
            try:
                self._make_rest()
                self._apply(resources, where, updating=False)
            except BaseException:
                m.stop(self.unit)
                self._remove_rest()
                raise

    def _make_rest(self):
        """The directories systemd did not make (none on cgroup v2)."""

    def _remove_rest(self):
        for d in self.unique_dirs():
            fs.remove_tree(d)

    def helper_leaves(self, placement=None):
        """A helper that waits for its process goes back to our own cgroup,
        in the cgroup2 hierarchy systemd moved it in too."""
        leaves = list(super().helper_leaves(placement))
        if "" in self.dirs:
            root = paths.ROOT if self.version == 2 else paths.HYBRID_UNIFIED
            own = placement.own if placement else paths.parse_proc_cgroup(fs.read("/proc/self/cgroup"))
            leaves.append(root + own.get("", "/").rstrip("/") + "/cgroup.procs")
        return leaves

    def update(self, resources, where="linux.resources"):
        props = sdunit.resource_properties(resources, where, self.version)
        if props:
            with _manager(self.user) as m:
                m.set_properties(self.unit, props)
        super().update(resources, where)

    def destroy(self):
        if self.started:   # a create that failed before it has no scope, and needs no bus
            with _manager(self.user) as m:
                m.stop(self.unit)
        super().destroy()   # what systemd did not make or left: sub-cgroups, v1 hierarchies


class SystemdV2(_Systemd, V2):
    pass


class SystemdV1(_Systemd, V1):
    def _make_rest(self):
        made = [d for leaf in self.unique_dirs() for d in fs.make_dirs(leaf)]
        self._prepare(made)   # cpuset.cpus/mems, before the helper joins


def _device_properties(rules, where):
    from . import sddevices
    try:
        return sddevices.device_properties(rules, fs.read("/proc/devices"))
    except sddevices.Unexpressible as e:
        raise OcirtError(f"{e}: not supported by {sdbus.FLAG} (nor by the devices cgroup)", where) from None


class _manager:
    def __init__(self, user=False):
        self.user = user

    def __enter__(self):
        self.m = sdbus.Manager(self.user)
        return self.m

    def __exit__(self, *exc):
        self.m.close()
