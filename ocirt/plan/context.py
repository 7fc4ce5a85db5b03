"""What the planner is given besides the config: the host's facts and the
runtime's context. Plain values, filled by the runtime (ocirt/hostfacts.py,
create.py, execproc.py); plan/ reads nothing of the host, so tests build
plans from these alone."""
from ocirt.plan.process import CAPABILITIES
from ocirt.record import Record

_ALL_CAPS = len(CAPABILITIES) - 1


class Host(Record):
    """Facts of the host. last_cap: the kernel's highest capability number;
    bounding: the runtime's own bounding set (what it can grant); kcore: the
    host has /proc/kcore; apparmor, selinux: the LSM is on, and resctrl:
    where resctrl is mounted (None: not), each looked up only when the
    config asks for it; sources: {bind source path: "dir", "file", or why
    it cannot be used (a strerror)}; ids: the runtime's (euid, egid);
    id_tools: {"newuidmap"/"newgidmap": path} of those the id maps need
    (looked up only then; missing: not in PATH); in_userns: the runtime
    runs in a user namespace that is not the initial one (no mknod there).
    The defaults: root of the host, every capability ocirt knows, nothing else."""
    __slots__ = ("last_cap", "bounding", "kcore", "apparmor", "selinux", "resctrl", "sources", "ids", "id_tools",
                 "in_userns")

    def __init__(self, last_cap: int = _ALL_CAPS, bounding: int = (2 << _ALL_CAPS) - 1, kcore: bool = True,
                 apparmor: bool = False, selinux: bool = False, resctrl: str | None = None,
                 sources: dict | None = None, ids: tuple = (0, 0), id_tools: dict | None = None,
                 in_userns: bool = False):
        self.last_cap, self.bounding, self.kcore = last_cap, bounding, kcore
        self.apparmor, self.selinux, self.resctrl = apparmor, selinux, resctrl
        self.sources = sources or {}
        self.ids, self.id_tools, self.in_userns = ids, id_tools or {}, in_userns


class Context(Record):
    """The runtime's side of a create or exec.
    rootfs, bundle: absolute paths; id: the container's (in the state sent to
    a seccomp agent, and the session keyring's name).
    cgroup_files: cgroup.procs files the helper joins before clone;
    cgroup_v2_dir: the cgroup2 dir for CLONE_INTO_CGROUP ("": none);
    cgroup_leave: cgroup.procs files a waiting helper goes back to;
    cgroup_hold: the helper waits for its cgroup to be made around it (systemd);
    cgroup_dirs: [(name, host dir)] for a v1 "cgroup" mount;
    cgroup2_host: a pure cgroup v2 host; rdt_tasks: resctrl tasks files to join.
    fifo: the exec fifo (create; None: run and wait); console_fd: the
    --console-socket connection, or None; preserve_fds: fds after stdio to
    pass on; no_pivot, wait: bools; seccomp: the compiled program
    (ocirt.plan.seccomp.Compiled) or None; no_new_keyring: keep the caller's
    session keyring; create_cwd: make process.cwd if missing (not for exec);
    host: the Host."""
    __slots__ = ("rootfs", "bundle", "id", "cgroup_files", "cgroup_v2_dir", "cgroup_leave", "cgroup_hold",
                 "cgroup_dirs", "cgroup2_host", "rdt_tasks", "fifo", "console_fd", "preserve_fds", "no_pivot",
                 "wait", "seccomp", "no_new_keyring", "create_cwd", "host")

    def __init__(self, rootfs: str = "", bundle: str = "", id: str = "", cgroup_files=(),
                 cgroup_v2_dir: str = "", cgroup_leave=(), cgroup_hold: bool = False, cgroup_dirs=(),
                 cgroup2_host: bool = False, rdt_tasks=(), fifo: str | None = None, console_fd: int | None = None,
                 preserve_fds: int = 0, no_pivot: bool = False, wait: bool = False, seccomp=None,
                 no_new_keyring: bool = False, create_cwd: bool = True, host: Host | None = None):
        self.rootfs, self.bundle, self.id = rootfs, bundle, id
        self.cgroup_files, self.cgroup_v2_dir, self.cgroup_leave = cgroup_files, cgroup_v2_dir, cgroup_leave
        self.cgroup_hold, self.cgroup_dirs, self.cgroup2_host = cgroup_hold, cgroup_dirs, cgroup2_host
        self.rdt_tasks, self.fifo, self.console_fd, self.preserve_fds = rdt_tasks, fifo, console_fd, preserve_fds
        self.no_pivot, self.wait, self.seccomp = no_pivot, wait, seccomp
        self.no_new_keyring, self.create_cwd = no_new_keyring, create_cwd
        self.host = host or Host()
