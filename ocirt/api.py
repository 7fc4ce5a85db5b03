"""ocirt from Python: run OCI containers without the command line.

    from ocirt.api import Runtime
    rt = Runtime()                               # runc's global flags and defaults
    with open("out.txt", "w+") as out:
        status = rt.run("demo", "bundles/busybox", stdout=out)  # create, start, wait, delete
    rt.create("web", "/srv/web"); rt.start("web")
    rt.state("web").status                       # "running"
    rt.exec("web", dict(rt.config("web")["process"], args=["ps"]))
    rt.kill("web", "KILL"); rt.delete("web")

A Runtime is one state root (runc's --root) with runc's other global flags
(--systemd-cgroup, --log, --log-format, --debug, --rootless). Its methods
are runc's commands and do what they do, without printing: create, start,
run, state, list, kill, delete, exec, pause, resume, update, ps, stats,
events (an iterator), and config (the config.json a container was created
with); features() is the runtime's features document.

Results are plain objects: State (the runtime-spec state and runc's extra
fields), ExitStatus, Event. Errors are OcirtError and its subclasses
(NotFound, Exists, WrongStatus, ConfigError, which names the field at
fault in `where` and its document in `source`). A failed create leaves
nothing behind. Warnings go to the log (stderr unless log_file is given).

Foreground run() and exec() wait for the process; meanwhile, in the main
thread, signals sent to this process are forwarded to it (as runc does),
and a terminal process is proxied to this process's own terminal. Every
method takes and releases the container's lock: runs of ocirt, in this
process or others, act one at a time on a container.

This module is the command line's hot path too (`ocirt state` is
Runtime.state): it imports only what its callers import anyway, and
posix rather than os (see pathops)."""
import posix

from ocirt.errors import (ConfigError, Exists, NotFound, OcirtError,  # noqa: F401 (the API's errors)
                          WrongStatus, typed)
from ocirt.pathops import exists, join
from ocirt.record import Record
from ocirt.state import Container, list_ids

__all__ = ["Runtime", "State", "ExitStatus", "Event", "features", "OcirtError", "NotFound", "Exists",
           "WrongStatus", "ConfigError"]


class State(Record):
    """A container's state (runtime.md's fields, and runc's rootfs, created
    and owner). status: "created", "running", "paused" or "stopped"; pid is
    0 once stopped; created is RFC 3339."""
    __slots__ = ("oci_version", "id", "status", "pid", "bundle", "rootfs", "created", "owner", "annotations")
    _JSON = ("ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner", "annotations")

    def __init__(self, oci_version: str, id: str, status: str, pid: int, bundle: str, rootfs: str = "",
                 created: str = "", owner: str = "", annotations: dict | None = None):
        self.oci_version, self.id, self.status, self.pid = oci_version, id, status, pid
        self.bundle, self.rootfs, self.created, self.owner = bundle, rootfs, created, owner
        self.annotations = annotations or {}

    @classmethod
    def from_dict(cls, d):
        """From the state document (runc's JSON, as `ocirt state` prints)."""
        return cls(*(d.get(k) for k in cls._JSON[:5]), *(d.get(k, "") for k in cls._JSON[5:8]),
                   d.get("annotations"))

    def to_dict(self):
        """The state document, keyed and ordered as runc prints it."""
        out = {"ociVersion": self.oci_version, "id": self.id, "pid": self.pid, "status": self.status,
               "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created, "owner": self.owner}
        if self.annotations:
            out["annotations"] = self.annotations
        return out


class ExitStatus(Record):
    """How a foreground process ended: code is its exit status, or 128 + N
    when signal N killed it (as a shell reports it)."""
    __slots__ = ("code",)

    def __init__(self, code: int):
        self.code = code

    @property
    def ok(self):
        return self.code == 0


class Event(Record):
    """One of events(): type "stats" (data: runc's stats document) or
    "oom" (an OOM kill in the container's cgroup; data None)."""
    __slots__ = ("type", "id", "data")

    def __init__(self, type: str, id: str, data: dict | None = None):
        self.type, self.id, self.data = type, id, data

    def to_dict(self):
        """As `ocirt events` prints it (one JSON object a line)."""
        out = {"type": self.type, "id": self.id}
        if self.data is not None:
            out["data"] = self.data
        return out


def features():
    """The runtime-spec features document (features.md) as a dict."""
    from ocirt.features import features as document
    return document()


class Runtime:
    """One state root and runc's global flags.

    root: where containers' state lives (runc's --root); systemd_cgroup: the
    systemd cgroup driver (cgroupsPath "slice:prefix:name"); log_file,
    log_format ("text" or "json"), debug: where warnings and, with debug,
    each stage go (runc's --log, --log-format, --debug); rootless: runc's
    --rootless, "true", "false" or "auto" (rootless when not root, or root
    of a user namespace only): a rootless container goes without a cgroup
    it has no permission for, when it asks for no limits. root None: as
    runc, $XDG_RUNTIME_DIR/ocirt for a caller that is not root (made 01700),
    else /run/ocirt."""

    def __init__(self, root=None, *, systemd_cgroup=False, log_file="", log_format="text",
                 debug=False, rootless="auto", criu="criu"):
        from ocirt.log import Log
        self.log = Log(log_file, log_format, debug)
        self._rootless_flag, self._rootless = rootless, None
        if not root:
            from ocirt import rootless as rl
            root, xdg = rl.default_root()
            if xdg:
                rl.make_xdg_root(root)
        self.root = root
        self.criu = criu
        self.systemd_cgroup = systemd_cgroup

    @property
    def rootless(self):
        """Whether containers are made rootless (ocirt.rootless.is_rootless),
        decided when a command first asks: as runc, a bad --rootless value
        fails create and run, not state, list or delete."""
        if self._rootless is None:
            from ocirt.rootless import is_rootless
            self._rootless = is_rootless(self._rootless_flag)
        return self._rootless

    # ---- the state root ------------------------------------------------------

    def state(self, id) -> State:
        """The container's state. NotFound if there is none of that id."""
        return State.from_dict(Container(self.root, id).load(lock=False).oci_state())

    def list(self) -> list:
        """The states of all containers of the root, by id; owner: the user
        who owns the container's state directory (runc's list), by name."""
        out = []
        for cid in list_ids(self.root):
            try:
                st = self.state(cid)
                st.owner = _user_name(posix.stat(join(self.root, cid)).st_uid)
            except (OcirtError, FileNotFoundError):
                continue  # deleted meanwhile, or not readable: as runc, not listed
            out.append(st)
        return out

    def config(self, id) -> dict:
        """The config.json the container was created with (its process is
        where an exec's process usually starts from)."""
        return Container(self.root, id).load(lock=False).state["config"]

    # ---- the lifecycle -------------------------------------------------------

    def create(self, id, bundle=".", *, console_socket=None, pid_file=None, no_pivot=False,
               no_new_keyring=False, preserve_fds=0, stdin=None, stdout=None, stderr=None) -> State:
        """Create the container of the bundle (a directory with config.json):
        its init waits for start(). runc's create flags by name; stdin,
        stdout, stderr (a file or an fd; default this process's) are the
        init's. ConfigError names a config field at fault; a failed create
        leaves nothing behind."""
        placement = _warm_cgroups()
        from ocirt.create import Creation
        with _Stdio(stdin, stdout, stderr) as stdio:
            opts = _options(bundle, console_socket, pid_file, no_pivot, no_new_keyring, preserve_fds, stdio,
                            placement)
            try:
                cr = Creation(self, id, opts)
                try:
                    cr.run()
                finally:
                    cr.c.unlock()
            except OcirtError as e:
                raise typed(e) from None
        return State.from_dict(cr.c.oci_state("created"))

    def start(self, id):
        """Run the program of a created container (WrongStatus if it is not)."""
        c = Container(self.root, id).load()
        try:
            status = c.status()
            if status != "created":
                if status == "stopped":
                    raise WrongStatus("cannot start a container that has stopped")
                raise WrongStatus("cannot start an already running container")
            self.log.debug(f"start {id}: releasing the init (pid {c.state['pid']})")
            c.release()
            self.log.debug(f"start {id}: the program runs")
            hs = (c.state.get("config") or {}).get("hooks")
            if hs and hs.get("poststart"):
                from ocirt.create import poststart
                poststart(self.log, c)
        finally:
            c.unlock()

    def run(self, id, bundle=".", *, detach=False, keep=False, console_socket=None, pid_file=None,
            no_pivot=False, no_new_keyring=False, preserve_fds=0, stdin=None, stdout=None,
            stderr=None):
        """create + start, then (unless detach) wait for the program and
        delete the container (unless keep): -> ExitStatus, None detached."""
        placement = _warm_cgroups()
        from ocirt import create
        with _Stdio(stdin, stdout, stderr) as stdio:
            opts = _options(bundle, console_socket, pid_file, no_pivot, no_new_keyring, preserve_fds, stdio,
                            placement)
            try:
                code = create.run(self, id, opts, detach, keep)
            except OcirtError as e:
                raise typed(e) from None
        return None if code is None else ExitStatus(code)

    def kill(self, id, signal="SIGTERM", *, all_processes=False):
        """Send signal (a number or a name: "KILL", "SIGUSR1", "RTMIN+2") to
        the init, or with all_processes to every process of its cgroup
        (which reaches them even once the init has stopped)."""
        if not isinstance(signal, int):
            from ocirt.signals import parse_signal
            signal = parse_signal(signal)
        c = Container(self.root, id).load()
        try:
            if c.status() == "stopped" and not all_processes:
                raise WrongStatus("container not running")
            self.log.debug(f"kill {id}: signal {signal} to "
                           f"{'every process of the cgroup' if all_processes else c.state['pid']}")
            if all_processes:
                self._cgroup(c, "kill --all").kill_all(signal)
            else:
                try:
                    posix.kill(c.state["pid"], signal)
                except ProcessLookupError:
                    raise WrongStatus("container not running") from None
        finally:
            c.unlock()

    def delete(self, id, force=False):
        """Remove a stopped container: what is left of its processes, its
        cgroup, its state. force: a running or paused one too (killed)."""
        from ocirt import teardown
        c = Container(self.root, id)
        try:
            try:
                c.load()
            except OcirtError as e:
                self._delete_unreadable(c, e, force)
                return
            status = c.status()
            if status in ("running", "paused") and not force:
                raise WrongStatus(f'cannot delete container "{id}" that is not stopped: {status}')
            teardown.destroy(self.log, c)
        finally:
            c.unlock()

    def _delete_unreadable(self, c, e, force):
        """A corrupt state.json, or a create that died before the init was
        known (the lock says it is gone): the debris goes, and (as runc)
        the container still did not exist unless force."""
        from ocirt import teardown
        corrupt = exists(f"{c.dir}/state.json")
        if corrupt and not force:
            raise e
        if corrupt:  # nothing to act on
            self.log.warn(f"{e}: removing its state; its processes and cgroup, if any, are left")
            c.remove()
        else:
            teardown.undo_aborted_create(self.log, c)
        if not force:
            raise e

    def exec(self, id, process, *, detach=False, console_socket=None, pid_file=None, preserve_fds=0,
             cgroup=None, ignore_paused=False, stdin=None, stdout=None, stderr=None, validate=True,
             blame=None):
        """Run process (a runtime-spec process object: args, env, cwd,
        user...) in the running container: -> its ExitStatus, None detached.
        cgroup: runc's --cgroup values ("sub" or "controller:sub"). Errors
        and warnings about the process name it as their source "process";
        blame, if given, is called on each instead and returns it, with the
        source and where it should name (the command line names the flag
        that set a field). validate: check the process against the
        runtime-spec schema first (the command line skips that, ~1.5 ms,
        for a process made from the container's own, which create checked)."""
        from ocirt.execproc import Exec
        with _Stdio(stdin, stdout, stderr) as stdio:
            c = Container(self.root, id).load()
            try:
                status = c.status()
                if status == "stopped":
                    raise WrongStatus("cannot exec in a stopped container")
                if status == "paused" and not ignore_paused:
                    raise WrongStatus("cannot exec in a paused container (use --ignore-paused)")
                code = Exec(self, c, process, detach=detach, console_socket=console_socket,
                            pid_file=pid_file, preserve_fds=preserve_fds, cgroup=cgroup or (),
                            stdio=stdio, validate=validate, blame=blame).run()
            except OcirtError as e:
                raise typed(e) from None
            finally:
                c.unlock()
        return None if code is None else ExitStatus(code)

    # ---- checkpoint and restore (CRIU) ------------------------------------------

    def checkpoint(self, id, **flags):
        """Dump the running container's processes with CRIU: runc's
        checkpoint flags by name (image_path, leave_running, pre_dump...,
        see ocirt.checkpoint.Options). Unless it leaves the container
        running (leave_running, pre_dump), the container is deleted after."""
        from ocirt import checkpoint, criu, teardown
        opts = checkpoint.Options(**flags)
        criu.use(self.criu)
        with self._locked(id) as c:
            if c.status() not in ("running", "paused"):
                raise WrongStatus("container is not running")
            checkpoint.checkpoint(self.log, c, opts)
            if not (opts.leave_running or opts.pre_dump):
                teardown.destroy(self.log, c)

    def restore(self, id, **flags):
        """A container of the bundle whose processes CRIU restores from a
        checkpoint: runc's restore flags by name (bundle, detach, pid_file,
        image_path..., see ocirt.restore.Options). Its state is running.
        Unless detach, wait for its init: -> ExitStatus, and delete it."""
        from ocirt import criu, restore
        opts = restore.Options(**flags)
        criu.use(self.criu)
        forwarder = None
        if not opts.detach:   # as run: signals that come while CRIU works are kept for the init
            from ocirt.foreground import Forwarder
            forwarder = Forwarder()
        try:
            r = restore.Restoration(self, id, opts)
            pid = r.run()
            if opts.detach:
                return None
            from ocirt.foreground import wait_child
            try:
                return ExitStatus(wait_child(pid, r.master, forwarder))
            finally:
                if r.master is not None:
                    posix.close(r.master)
                try:
                    self.delete(id, force=True)
                except NotFound:
                    pass   # a `delete` came first
        except OcirtError as e:
            raise typed(e) from None
        finally:
            if forwarder is not None:
                forwarder.restore()

    # ---- the cgroup ----------------------------------------------------------

    def pause(self, id):
        """Freeze every process of the container."""
        with self._locked(id) as c:
            if c.status() not in ("running", "created"):
                raise WrongStatus("container not running")
            self._cgroup(c).freeze()

    def resume(self, id):
        """Thaw a paused container."""
        with self._locked(id) as c:
            if c.status() != "paused":
                raise WrongStatus("container not paused")
            self._cgroup(c).thaw()

    def update(self, id, resources=None, *, l3_cache_schema=None, mem_bw_schema=None, source="resources"):
        """Change a running container's resources: resources is a
        LinuxResources object (config.md), laid over the recorded one;
        l3_cache_schema, mem_bw_schema: its linux.intelRdt. source names the
        document in errors (a file name, say)."""
        from ocirt.cgroups import update
        with self._locked(id) as c:
            if c.status() == "stopped":
                raise WrongStatus("container not running")
            try:
                new = update.from_json(resources or {}, source)
            except OcirtError as e:
                raise typed(e) from None
            linux = c.state["config"].setdefault("linux", {})
            if l3_cache_schema or mem_bw_schema:
                from ocirt import intelrdt
                linux["intelRdt"] = intelrdt.update(c.state.get("intelRdt"), linux.get("intelRdt"),
                                                    l3_cache_schema, mem_bw_schema)
            merged, apply = update.merge(linux.get("resources"), new)
            from ocirt import jsonio
            self.log.debug(f"update {c.id}: applying {jsonio.dumps(apply)}")
            try:
                self._cgroup(c).update(apply, where="")
            except OcirtError as e:
                e.source = source      # the field is in the update, not in config.json
                raise typed(e) from None
            linux["resources"] = merged
            c.save()

    def ps(self, id) -> list:
        """The host pids of the container's processes."""
        return self._cgroup(Container(self.root, id).load(lock=False), "ps").pids()

    def stats(self, id) -> dict:
        """runc's stats document of the container's cgroup (cpu, memory, pids...)."""
        return self._running_cgroup(Container(self.root, id).load(lock=False)).stats()

    def events(self, id, interval=5.0):
        """An iterator of Events: stats every interval seconds and one "oom"
        per OOM kill, until the container has no process left."""
        if interval <= 0:
            raise OcirtError("duration interval must be greater than 0")
        c = Container(self.root, id).load(lock=False)
        cg = self._running_cgroup(c)
        from ocirt.events import stream
        return (Event(kind, id, data) for kind, data in stream(cg, interval, c.state["pid"]))

    def _running_cgroup(self, c):
        if c.status() == "stopped":
            raise WrongStatus(f"container with id {c.id} is not running")
        return self._cgroup(c, "stats and events")

    def _locked(self, id):
        return _Locked(Container(self.root, id))

    @staticmethod
    def _cgroup(c, needed_by=None):
        """The container's cgroup; if needed_by (a command that only a
        cgroup can serve), a rootless container's lack of one is an error."""
        from ocirt import cgroups
        cg = cgroups.from_state(c.state["cgroup"])
        if needed_by and cg.skipped:
            from ocirt.cgroups.none import WHY
            raise OcirtError(f"{needed_by}: {WHY}")
        return cg


class _Locked:
    """`with`: the container loaded under its lock, and unlocked after."""

    def __init__(self, c):
        self.c = c

    def __enter__(self):
        return self.c.load()

    def __exit__(self, *_):
        self.c.unlock()


class _Stdio:
    """`with`: the fds a process gets as 0, 1, 2 (None: ours), each a copy
    above 2, so that one given as another's number (stderr=1) survives."""

    def __init__(self, *files):
        self.files, self.fds = files, None

    def __enter__(self):
        if all(f is None for f in self.files):
            return None
        import fcntl
        self.fds = [fcntl.fcntl(i if f is None else f if isinstance(f, int) else f.fileno(),
                                fcntl.F_DUPFD_CLOEXEC, 3) for i, f in enumerate(self.files)]
        return self.fds

    def __exit__(self, *_):
        for fd in self.fds or ():
            posix.close(fd)


def _warm_cgroups():
    """Start the cgroup warm-up: -> the cgroups.Placement it read, for the
    create to reuse (None if it could not be read: the create will say why)."""
    from ocirt.cgroups import Placement, warm
    try:
        placement = Placement()
    except OSError:
        return None
    warm.start(placement)
    return placement


def _options(bundle, console_socket, pid_file, no_pivot, no_new_keyring, preserve_fds, stdio, placement):
    from ocirt.create import Options
    return Options(bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds, stdio, placement)


def _user_name(uid):
    """The name of uid, or "#uid" without one (runc's)."""
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"
