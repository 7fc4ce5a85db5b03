"""`checkpoint`: dump a running container's processes to image files with
CRIU (ocirt.criu), with runc's flags (--page-server sends the pages to a
`criu page-server`; --lazy-pages leaves them with a page server of the
dump's own, for a restore --lazy-pages elsewhere to fetch on demand) and
what runc tells CRIU about the container: its rootfs as root, its bind
mounts and masked files as external mounts (restore binds them again), its
freezer cgroup, and the network and pid namespaces it joined by path as
external namespaces."""
import os

from ocirt.errors import OcirtError

# runc's --manage-cgroups-mode values
CG_MODES = ("soft", "full", "strict", "ignore")
# namespaces joined by path that CRIU is told are external: CRIU's name of each
EXTERNAL_NS = {"network": "net", "pid": "pid"}


class Options:
    """runc's checkpoint flags, by their names with dashes as underscores."""

    def __init__(self, image_path="", work_path="", parent_path="", leave_running=False,
                 tcp_established=False, ext_unix_sk=False, shell_job=False, file_locks=False,
                 pre_dump=False, manage_cgroups_mode="", empty_ns=(), auto_dedup=False,
                 lazy_pages=False, status_fd=-1, page_server=""):
        self.image_path = image_path or os.path.join(os.getcwd(), "checkpoint")
        self.work_path, self.parent_path = work_path, parent_path
        self.leave_running, self.tcp_established = leave_running, tcp_established
        self.ext_unix_sk, self.shell_job, self.file_locks = ext_unix_sk, shell_job, file_locks
        self.pre_dump, self.auto_dedup, self.lazy_pages = pre_dump, auto_dedup, lazy_pages
        self.manage_cgroups_mode, self.empty_ns = manage_cgroups_mode, list(empty_ns)
        self.status_fd, self.page_server = status_fd, page_server
        self.check()

    def check(self):
        if self.manage_cgroups_mode and self.manage_cgroups_mode not in CG_MODES:
            raise OcirtError(f"--manage-cgroups-mode: invalid value {self.manage_cgroups_mode!r}"
                             f" (one of {', '.join(CG_MODES)})")
        from ocirt.plan.namespaces import CLONE_FLAGS
        for ns in self.empty_ns:
            if ns != "network":
                raise OcirtError(f"--empty-ns: {ns!r}: only network is supported" if ns in CLONE_FLAGS
                                 else f"--empty-ns: unknown namespace {ns!r}")
        if self.page_server:
            self.page_server = parse_page_server(self.page_server)
        if self.lazy_pages and self.status_fd != -1:
            _check_status_fd(self.status_fd)


def parse_page_server(value):
    """ "ADDRESS:PORT" (an IPv6 address in brackets) -> criu_page_server_info."""
    address, sep, port = value.rpartition(":")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if not (sep and address and port):
        raise OcirtError(f"--page-server {value!r}: use ADDRESS:PORT to name the page server")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise OcirtError(f"--page-server {value!r}: invalid port number {port!r}")
    return {"address": address, "port": int(port)}


def _check_status_fd(fd):
    """The caller's fd, open for writing: inheritable, as every fd that came
    through our execve is and none that ocirt opens is (launch._check_preserved)."""
    import fcntl
    try:
        theirs, flags = os.get_inheritable(fd), fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as e:
        raise OcirtError(f"--status-fd {fd}: {e.strerror}") from None
    if not theirs:
        raise OcirtError(f"--status-fd {fd}: the fd was not passed to ocirt")
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise OcirtError(f"--status-fd {fd}: not open for writing")


def dump_opts(state, opts, pid_root):
    """The criu_opts of the dump of the container of state (state.json),
    without the fds. pid_root: /proc/PID/root, to tell masked files from
    masked directories (only files are /dev/null bind mounts)."""
    from ocirt.plan.namespaces import CLONE_FLAGS
    config = state.get("config") or {}
    linux = config.get("linux") or {}
    o = {"pid": state["pid"], "log_level": 4, "log_file": "dump.log", "root": state["rootfs"],
         "manage_cgroups": True, "notify_scripts": True, "shell_job": opts.shell_job,
         "leave_running": opts.leave_running or opts.pre_dump,
         "tcp_established": opts.tcp_established, "ext_unix_sk": opts.ext_unix_sk,
         "file_locks": opts.file_locks, "orphan_pts_master": True, "auto_dedup": opts.auto_dedup,
         "empty_ns": sum(CLONE_FLAGS[ns] for ns in opts.empty_ns)}
    if opts.page_server:
        o["ps"] = opts.page_server
    if opts.lazy_pages:
        o["lazy_pages"] = True
    if opts.parent_path:
        o["parent_img"], o["track_mem"] = opts.parent_path, True
    if opts.pre_dump:
        o["track_mem"] = True
    if opts.manage_cgroups_mode:
        from ocirt import criu
        o["manage_cgroups_mode"] = criu.CG_MODES[opts.manage_cgroups_mode]
    freezer = _freezer_dir(state.get("cgroup") or {})
    if freezer:
        o["freeze_cgroup"] = freezer
    external = []
    for ns in linux.get("namespaces") or ():
        if ns.get("path") and ns.get("type") in EXTERNAL_NS:
            key = EXTERNAL_NS[ns["type"]]
            try:
                ino = os.stat(ns["path"]).st_ino
            except OSError as e:
                raise OcirtError(f"checkpoint: the {ns['type']} namespace {ns['path']}: {e.strerror}") from None
            external.append(f"{key}[{ino}]:{external_ns_key(ns['type'])}")
    if not opts.pre_dump:
        external += [f"mnt[{m['destination']}]:{m['destination']}" for m in bind_mounts(config)]
        # masked files are /dev/null bound: one key, which restore binds to its /dev/null
        external += [f"mnt[{p}]:/dev/null" for p in linux.get("maskedPaths") or ()
                     if _is_masked_file(pid_root, p)]
    if external:
        o["external"] = external
    return o


def external_ns_key(ns_type):
    """The key under which the dump names an external namespace and restore hands it in."""
    return f"extRoot{EXTERNAL_NS[ns_type].capitalize()}NS"


def bind_mounts(config):
    """The config's bind mounts: external to CRIU, bound again at restore."""
    return [m for m in config.get("mounts") or ()
            if m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or ())]


def _is_masked_file(pid_root, path):
    try:
        st = os.stat(pid_root + path)
    except OSError:
        return False  # absent: nothing was mounted there
    import stat
    return not stat.S_ISDIR(st.st_mode)


def _freezer_dir(cg):
    dirs = cg.get("dirs") or {}
    return dirs.get("freezer") or dirs.get("") or ""


def checkpoint(log, c, opts):
    """Dump the running container c (an ocirt.state.Container, loaded and
    locked) into opts.image_path; unless it leaves it running, the
    container's processes are gone afterwards (delete removes the rest)."""
    from ocirt import criu
    why = criu.missing()
    if why:
        raise OcirtError(f"checkpoint: {why}")
    if opts.pre_dump:
        _need_feature(criu, "mem_track")
    if opts.lazy_pages:
        _need_feature(criu, "lazy_pages")
    fds = [open_dir(opts.image_path, "--image-path", create=True)]
    try:
        o = dump_opts(c.state, opts, f"/proc/{c.state['pid']}/root")
        o["images_dir_fd"] = fds[0]
        logdir = opts.image_path
        if opts.work_path:
            fds.append(open_dir(opts.work_path, "--work-path", create=True))
            o["work_dir_fd"], logdir = fds[1], opts.work_path
        if not opts.pre_dump:
            from ocirt.restore import write_descriptors
            write_descriptors(opts.image_path, c.state["pid"])
        log.debug(f"checkpoint {c.id}: criu {'pre-dump' if opts.pre_dump else 'dump'} of pid {o['pid']}")
        resp = criu.call(criu.PRE_DUMP if opts.pre_dump else criu.DUMP, o, pass_fds=fds,
                         notify=lambda script, pid, fds: _notified(opts, script))
    finally:
        for fd in fds:
            os.close(fd)
    if not resp.success:
        raise OcirtError(f"checkpoint: criu failed ({criu_error(resp)}): see {logdir}/dump.log")


def _notified(opts, script):
    """A lazy dump's page server is up ("status-ready", CRIU 3.15 on): a
    NUL on --status-fd tells the caller, who may start the restore side."""
    if script == "status-ready" and opts.status_fd != -1:
        try:
            os.write(opts.status_fd, b"\0")
            os.close(opts.status_fd)
        except OSError:
            pass     # the caller closed its end: it is not waiting for the word
        opts.status_fd = -1


def _need_feature(criu, name):
    # a FEATURE_CHECK is one more swrk: only for the flags that need it
    resp = criu.call(criu.FEATURE_CHECK, features={name: True})
    if not resp.features.get(name):
        raise OcirtError(f"checkpoint: criu on this kernel lacks {name.replace('_', ' ')}")


def open_dir(path, flag, create):
    """An fd of the directory of a flag (made first if create), for CRIU."""
    try:
        if create:
            os.makedirs(path, 0o700, exist_ok=True)
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise OcirtError(f"{flag} {path}: {e.strerror}") from None


def criu_error(resp):
    """Why CRIU says it failed."""
    if resp.errmsg:
        return resp.errmsg
    return os.strerror(resp.cr_errno) if resp.cr_errno else "no reason given"
