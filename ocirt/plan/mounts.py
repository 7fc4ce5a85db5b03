"""root, mounts, rootfsPropagation, maskedPaths, readonlyPaths and the
default /dev of runtime-linux.md."""
from ocirt.errors import OcirtError, jpath
from ocirt.pathops import join, normpath
from ocirt.plan.namespaces import format_map

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 0x10, 0x20, 0x40, 0x80
MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME, MS_BIND = 0x100, 0x400, 0x800, 0x1000
MS_REC, MS_SILENT, MS_POSIXACL = 0x4000, 0x8000, 0x10000
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x20000, 0x40000, 0x80000, 0x100000
MS_RELATIME, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME = 0x200000, 0x800000, 0x1000000, 0x2000000

# option -> (flags to set, flags to clear), as mount(8) and runc read them.
FLAGS = {
    "async": (0, MS_SYNCHRONOUS), "atime": (0, MS_NOATIME), "bind": (MS_BIND, 0),
    "defaults": (0, 0), "dev": (0, MS_NODEV), "diratime": (0, MS_NODIRATIME),
    "dirsync": (MS_DIRSYNC, 0), "exec": (0, MS_NOEXEC), "iversion": (MS_I_VERSION, 0),
    "lazytime": (MS_LAZYTIME, 0), "loud": (0, MS_SILENT), "mand": (MS_MANDLOCK, 0),
    "noatime": (MS_NOATIME, 0), "nodev": (MS_NODEV, 0), "nodiratime": (MS_NODIRATIME, 0),
    "noexec": (MS_NOEXEC, 0), "noiversion": (0, MS_I_VERSION), "nolazytime": (0, MS_LAZYTIME),
    "nomand": (0, MS_MANDLOCK), "norelatime": (0, MS_RELATIME), "nostrictatime": (0, MS_STRICTATIME),
    "nosuid": (MS_NOSUID, 0), "nosymfollow": (MS_NOSYMFOLLOW, 0), "rbind": (MS_BIND | MS_REC, 0),
    "relatime": (MS_RELATIME, 0), "remount": (MS_REMOUNT, 0), "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY), "silent": (MS_SILENT, 0), "strictatime": (MS_STRICTATIME, 0),
    "suid": (0, MS_NOSUID), "symfollow": (0, MS_NOSYMFOLLOW), "sync": (MS_SYNCHRONOUS, 0),
    "acl": (MS_POSIXACL, 0), "noacl": (0, MS_POSIXACL),
}
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC, "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
A_RDONLY, A_NOSUID, A_NODEV, A_NOEXEC = 0x1, 0x2, 0x4, 0x8
A_RELATIME, A_NOATIME, A_STRICTATIME, A_NODIRATIME, A_NOSYMFOLLOW = 0x0, 0x10, 0x20, 0x80, 0x200000
A_ATIME_MASK = 0x70
# recursive option -> (mount_setattr attr_set, attr_clr)
RECURSIVE = {
    "rro": (A_RDONLY, 0), "rrw": (0, A_RDONLY), "rnosuid": (A_NOSUID, 0), "rsuid": (0, A_NOSUID),
    "rnodev": (A_NODEV, 0), "rdev": (0, A_NODEV), "rnoexec": (A_NOEXEC, 0), "rexec": (0, A_NOEXEC),
    "rnodiratime": (A_NODIRATIME, 0), "rdiratime": (0, A_NODIRATIME),
    "rrelatime": (A_RELATIME, A_ATIME_MASK), "rnorelatime": (0, A_ATIME_MASK),
    "rnoatime": (A_NOATIME, A_ATIME_MASK), "ratime": (A_RELATIME, A_ATIME_MASK),
    "rstrictatime": (A_STRICTATIME, A_ATIME_MASK), "rnostrictatime": (0, A_ATIME_MASK),
    "rnosymfollow": (A_NOSYMFOLLOW, 0), "rsymfollow": (0, A_NOSYMFOLLOW),
}
EXTENSIONS = ("tmpcopyup", "idmap", "ridmap")
MOUNT_OPTIONS = tuple(sorted([*FLAGS, *PROPAGATION, *RECURSIVE, *EXTENSIONS]))
ROOTFS_PROPAGATION = {
    "private": MS_PRIVATE | MS_REC, "rprivate": MS_PRIVATE | MS_REC, "slave": MS_SLAVE | MS_REC,
    "rslave": MS_SLAVE | MS_REC, "shared": MS_SHARED | MS_REC, "rshared": MS_SHARED | MS_REC,
    "unbindable": MS_UNBINDABLE | MS_REC, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Files under /proc that may be mount destinations (lxcfs-style), as runc allows.
PROC_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                "/proc/sys/kernel/ns_last_pid")

DEFAULT_DEVICES = (  # runtime-linux.md: path, major, minor
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)


def parse_options(options, where):
    """-> dict(flags, clear, prop, attr_set, attr_clr, data, ext)."""
    r = dict(flags=0, clear=0, prop=0, attr_set=0, attr_clr=0, data=[], ext=set())
    for i, opt in enumerate(options or []):
        if opt in FLAGS:
            s, c = FLAGS[opt]
            r["flags"] = (r["flags"] | s) & ~c
            r["clear"] |= c
        elif opt in PROPAGATION:
            r["prop"] |= PROPAGATION[opt]
        elif opt in RECURSIVE:
            s, c = RECURSIVE[opt]
            r["attr_set"] = (r["attr_set"] & ~c) | s
            r["attr_clr"] |= c
        elif opt in EXTENSIONS:
            r["ext"].add(opt)
        elif opt.startswith(("idmap=", "ridmap=")):
            raise OcirtError(f'option "{opt}" is not supported', jpath(where, i))
        else:
            r["data"].append(opt)
    return r


def clean_dest(dest, where):
    if not dest.startswith("/"):
        # runc resolves a relative destination against "/" (spec: SHOULD be absolute).
        dest = "/" + dest
    return normpath(dest)


def mount_step(m, i, ctx, id_maps=(), sysfs_bind=False):
    """One entry of `mounts` as a "mount" step (or several); id_maps: the
    container's user namespace mappings (uid_map, gid_map text), if any;
    sysfs_bind: a sysfs becomes a bind of the host's."""
    where = jpath("mounts", i)
    dest = m.get("destination")
    if not dest:
        raise OcirtError("missing required field", jpath(where, "destination"))
    dest = clean_dest(dest, jpath(where, "destination"))
    o = parse_options(m.get("options"), jpath(where, "options"))
    mtype = m.get("type") or ""
    if mtype == "sysfs" and sysfs_bind:
        # the kernel refuses a new sysfs to a user namespace that does not own
        # the network namespace: the host's /sys, bound recursively (as runc)
        m, mtype = dict(m, source="/sys"), ""
        o["flags"] |= MS_BIND | MS_REC
    src, bind = _source(m, o, ctx.bundle)
    if mtype == "bind":
        mtype = ""
        o["flags"] |= MS_BIND
    if dest == "/dev" and not bind:
        o["flags"] &= ~MS_RDONLY  # filled first, made read-only last (finish_steps), as runc does
    _check_proc_dest(dest, mtype, bind, where)
    idmap = _idmap(m, o, bind, where, id_maps)
    if idmap and dest == "/proc":
        raise OcirtError("/proc cannot be an idmapped mount", jpath(where, "options"))
    if mtype == "cgroup" and not ctx.cgroup2_host:
        return _cgroup_v1_steps(m, o, dest, where, ctx)
    if mtype == "cgroup":
        mtype = "cgroup2"
    kind = "dir"
    if bind:
        kind = ctx.host.sources.get(src, "not looked up")
        if kind not in ("dir", "file"):
            raise OcirtError(f"bind source {src}: {kind}", jpath(where, "source"))
    flags = o["flags"]
    remount = 0
    if bind and flags & ~(MS_BIND | MS_REC):
        # A bind mount ignores most flags: apply them with a remount.
        remount = MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC))
        flags &= MS_BIND | MS_REC
    if "tmpcopyup" in o["ext"] and mtype != "tmpfs":
        raise OcirtError("tmpcopyup needs a tmpfs mount", jpath(where, "options"))
    extra = [x for x, on in (("in-proc", dest.startswith("/proc/")), ("proc-source", bind and dest == "/proc"),
                             ("tmpcopyup", "tmpcopyup" in o["ext"]), ("idmapped", idmap)) if on]
    step = ("mount", where, src, dest, mtype, flags, ",".join(o["data"]), kind, remount,
            o["prop"], o["attr_set"], o["attr_clr"], ",".join(extra))
    if not idmap:
        return [step]
    # The helper makes the mapped tree (see build.create_plan); the mount attaches it.
    return [("idmap-tree", where, src, *idmap, int(bool(flags & MS_REC)),
             int("ridmap" in o["ext"])), step]


def _source(m, o, bundle):
    """(source, is a bind): a bind's relative source is the bundle's."""
    src = m.get("source") or ""
    bind = bool(o["flags"] & MS_BIND) or m.get("type") == "bind"
    if bind and not src.startswith("/"):
        src = join(bundle, src)
    return src, bind


def bind_sources(spec, bundle):
    """The host paths the bind mounts of `mounts` take, for the runtime to
    look up (Host.sources), and /sys for a sysfs, which may become a bind of
    it. An entry with bad options is left to mount_step, which names the field."""
    paths = []
    for i, m in enumerate(spec.get("mounts") or []):
        try:
            src, bind = _source(m, parse_options(m.get("options"), jpath("mounts", i)), bundle)
        except OcirtError:
            continue
        if bind:
            paths.append(src)
        elif m.get("type") == "sysfs":
            paths.append("/sys")
    return paths


def _idmap(m, o, bind, where, id_maps):
    """(uid_map, gid_map) text of an idmapped mount, or None. The mount's own
    mappings win; else the container's user namespace ones (config.md)."""
    uids, gids = m.get("uidMappings"), m.get("gidMappings")
    if not (o["ext"] & {"idmap", "ridmap"} or uids or gids):
        return None
    if not bind:
        raise OcirtError("idmapped mounts must be bind mounts", jpath(where, "options"))
    if bool(uids) != bool(gids):
        missing = "gidMappings" if uids else "uidMappings"
        raise OcirtError("uidMappings and gidMappings must be given together", jpath(where, missing))
    if uids:
        return format_map(uids), format_map(gids)
    if id_maps:
        return id_maps
    raise OcirtError("an idmapped mount needs uidMappings and gidMappings, "
                     "or a new user namespace whose mappings it takes", jpath(where, "options"))


def _check_proc_dest(dest, mtype, bind, where):
    """Only procfs itself or a short list of files may go over /proc. A
    bind at /proc (of the host's, as rootless and nested setups do) must be
    of a procfs' root: the helper checks the source it opened."""
    if dest == "/proc":
        if mtype != "proc" and not bind:
            raise OcirtError(f"/proc must be a proc mount or a bind of a procfs, not {mtype}",
                             jpath(where, "type"))
    elif dest.startswith("/proc/") and dest not in PROC_ALLOWED:
        raise OcirtError(f"mount destination {dest} is inside /proc and not allowed",
                         jpath(where, "destination"))


def _cgroup_v1_steps(m, o, dest, where, ctx):
    """A "cgroup" mount on a v1 host: a tmpfs holding a bind of the
    container's own cgroup in every hierarchy (what runc does)."""
    base = o["flags"] & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    steps = [("mount", where, "tmpfs", dest, "tmpfs", base, "mode=755", "dir", 0, 0, 0, 0, "")]
    for name, host_dir in ctx.cgroup_dirs:
        sub = f"{dest}/{name}"
        remount = MS_BIND | MS_REMOUNT | base | (o["flags"] & MS_RDONLY)
        steps.append(("mount", where, host_dir, sub, "", MS_BIND, "", "dir", remount, 0, 0, 0, ""))
    if o["flags"] & MS_RDONLY:
        steps.append(("mount", where, "", dest, "", MS_REMOUNT | MS_RDONLY | base, "mode=755",
                      "none", 0, 0, 0, 0, ""))
    return steps


def rootfs_steps(spec, ctx):
    """Steps before the mounts: propagation and the rootfs bind."""
    linux = spec.get("linux") or {}
    prop_name = linux.get("rootfsPropagation") or None  # "" is the default, as in runc
    if prop_name is not None and prop_name not in ROOTFS_PROPAGATION:
        raise OcirtError(f'unknown propagation "{prop_name}"', "linux.rootfsPropagation")
    prop = ROOTFS_PROPAGATION.get(prop_name, MS_SLAVE | MS_REC)
    if prop & MS_UNBINDABLE:
        prop = MS_SLAVE | MS_REC  # the rootfs must be bindable; / is made unbindable after pivot_root
    rootfs = ctx.rootfs
    steps = [("rootprop", "linux.rootfsPropagation", prop)]
    if prop & MS_SHARED:
        steps.append(("parent-private", "root.path", rootfs))
    steps.append(("bindroot", "root.path", rootfs))
    return steps


def dev_mount(spec):
    """(index, is a bind, read-only) of the mount that ends up at /dev, or None."""
    ms = spec.get("mounts") or []
    for i in range(len(ms) - 1, -1, -1):
        if clean_dest(ms[i].get("destination", ""), "") == "/dev":
            flags = parse_options(ms[i].get("options"), jpath(jpath("mounts", i), "options"))["flags"]
            return i, bool(flags & MS_BIND) or ms[i].get("type") == "bind", bool(flags & MS_RDONLY)
    return None


def dev_steps(spec, devices, userns, host):
    """Default devices and /dev symlinks of a /dev that is not the host's;
    the file the console is bound on, made now as /dev may become read-only."""
    steps = []
    if (spec.get("process") or {}).get("terminal"):
        steps.append(("mkfile", "process.terminal", "/dev/console"))
    listed = {d["path"] for d in devices}
    for path, major, minor in DEFAULT_DEVICES:
        if path in listed:
            continue
        if userns:
            steps.append(("binddev", "linux.devices", path))
        else:
            steps.append(("mknod", "linux.devices", path, "c", major, minor, 0o666, 0, 0, "replace"))
    for target, link in DEV_SYMLINKS:
        steps.append(("symlink", "linux", target, link))
    if host.kcore:
        steps.append(("symlink", "linux", "/proc/kcore", "/dev/core"))
    steps.append(("symlink", "linux", "pts/ptmx", "/dev/ptmx"))
    return steps


def finish_steps(spec, linux):
    """After pivot_root: a read-only /dev (everything in it made, its
    console file too), read-only root, then readonlyPaths and maskedPaths
    (the spec wants them last, over every mount), then the propagation of /."""
    steps = []
    dev = dev_mount(spec)
    if dev and dev[2] and not dev[1]:
        steps.append(("remount-ro", jpath("mounts", dev[0]), "/dev"))
    if (spec.get("root") or {}).get("readonly"):
        steps.append(("root-ro", "root.readonly"))
    for i, p in enumerate(linux.get("readonlyPaths") or []):
        steps.append(("readonly", jpath("linux.readonlyPaths", i), _abs(p, jpath("linux.readonlyPaths", i))))
    for i, p in enumerate(linux.get("maskedPaths") or []):
        steps.append(("mask", jpath("linux.maskedPaths", i), _abs(p, jpath("linux.maskedPaths", i))))
    prop = linux.get("rootfsPropagation")
    if prop:  # last: binds of read-only paths fail under an unbindable /
        steps.append(("rootprop", "linux.rootfsPropagation", ROOTFS_PROPAGATION[prop]))
    return steps


def _abs(path, where):
    if not path.startswith("/"):
        raise OcirtError(f'"{path}" must be an absolute path', where)
    return normpath(path)
