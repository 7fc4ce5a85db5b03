"""Where a container's cgroup lives: the host's hierarchies and linux.cgroupsPath.

Pure functions over the text of /proc/self/cgroup and /proc/self/mountinfo,
so they can be tested without root."""
from ..errors import OcirtError
from ..pathops import exists, join, normpath, parent

ROOT = "/sys/fs/cgroup"
HYBRID_UNIFIED = ROOT + "/unified"


def parse_proc_cgroup(text):
    """/proc/PID/cgroup -> {controller or "name=X" or "" (cgroup2): path}."""
    own = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            own[c] = path
    return own


def parse_v1_mounts(text):
    """/proc/self/mountinfo -> {controller: (mountpoint, mount root)} for cgroup v1
    mounts; named hierarchies appear as "name=X". First mount of each wins."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] != "cgroup":
            continue
        root, mnt = unescape(fields[3]), unescape(fields[4])
        for opt in fields[sep + 3].split(","):
            if opt.startswith("name=") or opt in V1_CONTROLLERS:
                mounts.setdefault(opt, (mnt, root))
    return mounts


V1_CONTROLLERS = {"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer",
                  "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"}


def unescape(s):
    """A path field of /proc/self/mountinfo, with its octal escapes undone."""
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def inner_path(cgroups_path, container_id):
    """The cleaned linux.cgroupsPath, or the default runc 1.1 uses when it is
    absent: the container id, relative to the runtime's own cgroup."""
    if not cgroups_path:
        return container_id
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise OcirtError(f"{cgroups_path!r} looks like a systemd slice:prefix:name path, "
                         "which needs --systemd-cgroup", "linux.cgroupsPath")
    # cleaned as runc's CleanPath: ".." cannot climb above the root
    if cgroups_path.startswith("/"):
        return normpath(cgroups_path)
    cleaned = normpath("/" + cgroups_path).lstrip("/")
    if not cleaned:
        raise OcirtError(f"{cgroups_path!r} names no cgroup", "linux.cgroupsPath")
    return cleaned


def v1_dir(mountpoint, mount_root, own_path, inner):
    """Directory of a container cgroup in one v1 hierarchy. A relative path is
    relative to the runtime's own cgroup there (runc's GetOwnCgroupPath)."""
    if inner.startswith("/"):
        return mountpoint + inner
    if mount_root != "/" and (own_path + "/").startswith(mount_root.rstrip("/") + "/"):
        own_path = own_path[len(mount_root.rstrip("/")):] or "/"
    return join(mountpoint + own_path.rstrip("/"), inner)


def v2_dir(mountpoint, own_path, inner, parent_of_own):
    """Directory of a container cgroup in a cgroup2 hierarchy. runc's v2 driver
    (fs2 defaultDirPath) takes a relative path from the *parent* of its own
    cgroup, since its own cgroup holds processes and could not delegate
    controllers; in hybrid mode runc joins the same path as in v1."""
    if inner.startswith("/"):
        return mountpoint + inner
    base = parent(own_path) if parent_of_own else own_path
    return join(mountpoint + base.rstrip("/"), inner)


PATH_MAX = 4096   # the kernel's, with the NUL
NAME_MAX = 255
FILE_ROOM = 40    # the longest cgroup file name written (blkio.throttle.write_iops_device)


def check_lengths(dirs):
    """Refuse directories whose files the kernel could not name: a path
    past PATH_MAX or a component past NAME_MAX fails with ENAMETOOLONG
    only part way through making the tree."""
    for d in dirs:
        name = max(d.split("/"), key=len)
        if len(name.encode()) > NAME_MAX:
            raise OcirtError(f"a component of the path is {len(name.encode())} bytes long, "
                             f"more than the kernel allows ({NAME_MAX})", "linux.cgroupsPath")
        if len(d.encode()) + FILE_ROOM >= PATH_MAX:
            raise OcirtError(f"the cgroup directory would be {len(d.encode())} bytes long: its files' "
                             f"paths would pass the kernel's limit ({PATH_MAX})", "linux.cgroupsPath")


def parse_sub_cgroups(args):
    """exec --cgroup values, [CONTROLLER[,CONTROLLER]:]PATH as in runc 1.1, ->
    {controller: PATH}; a lone bare PATH is keyed "": every hierarchy (the
    one on cgroup v2). Unlike runc 1.1, an empty or repeated controller is
    refused, as later runc does."""
    subs = {}
    for arg in args:
        if arg.count(":") > 1:
            raise OcirtError(f"invalid --cgroup argument: {arg}")
        if ":" not in arg:
            if len(args) != 1:
                raise OcirtError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            subs[""] = arg
            continue
        ctrls, path = arg.split(":")
        for c in ctrls.split(","):
            if not c:
                raise OcirtError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)")
            if c in subs:
                raise OcirtError(f"invalid --cgroup argument(s): controller {c} specified multiple times")
            subs[c] = path
    return subs


def sub_dirs(dirs, subs):
    """A container's cgroup dirs ({controller: dir}) with the sub-cgroups of
    parse_sub_cgroups in place. Controllers sharing a hierarchy move
    together. A PATH must stay inside the container's cgroup: runc 1.1 only
    compares string prefixes, which lets "../ID-other" through."""
    moved = {}
    for ctrl, add in subs.items():
        if ctrl and ctrl not in dirs:
            raise OcirtError(f"--cgroup: unknown controller {ctrl}" +
                             (" (on cgroup v2, give a PATH alone)" if list(dirs) == [""] else ""))
        for base in {dirs[c] for c in (dirs if ctrl == "" else [ctrl])}:
            d = normpath(join(base, add.lstrip("/")))
            if d != base and not d.startswith(base + "/"):
                raise OcirtError(f"--cgroup: {add} is not a sub cgroup path")
            if moved.setdefault(base, d) != d:
                raise OcirtError(f"--cgroup: {base} is given two sub-cgroups "
                                 "(its controllers share one hierarchy)")
    return {c: moved.get(d, d) for c, d in dirs.items()}


def is_unified(root=ROOT):
    """True on a pure cgroup v2 host (runc: /sys/fs/cgroup is a cgroup2 mount)."""
    return exists(root + "/cgroup.controllers")
