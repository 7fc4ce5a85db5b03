"""The container state machine: create, start, run, kill, delete, state,
list. Each command locks the container's directory for its whole run."""
import os
import select

from ocirt import SPEC_VERSION, jsonio
from ocirt.errors import OcirtError
from ocirt.state import Container, check_id, list_ids, now_rfc3339, proc_start_time

SIGKILL = 9


class Options:
    """What the command line gives create/run (runc's flags)."""

    def __init__(self, **kw):
        self.bundle = kw.get("bundle") or "."
        self.pid_file = kw.get("pid_file")
        self.console_socket = kw.get("console_socket")
        self.no_pivot = kw.get("no_pivot", False)
        self.no_new_keyring = kw.get("no_new_keyring", False)
        self.preserve_fds = kw.get("preserve_fds", 0)
        self.detach = kw.get("detach", False)
        self.keep = kw.get("keep", False)


# ---- create --------------------------------------------------------------

class Creation:
    """One `create` in progress: what it made, so a failure can undo it all."""

    def __init__(self, g, cid, opts, foreground=False):
        from ocirt import bundle
        check_id(cid)
        self.g, self.opts, self.foreground = g, opts, foreground
        self.spec, self.rootfs = bundle.load(opts.bundle)
        self.bundle = os.path.abspath(opts.bundle)
        self.c = Container(g.root, cid)
        self.cgroup = None
        self.rdt = None  # the resctrl group intelrdt.set_up made or joined
        self.session = None
        self.console_ours = None  # our end of a foreground terminal
        self.master = None
        self.listen_fds = _listen_fds()

    def run(self):
        self.c.create_dir()
        try:
            self._create()
        except BaseException:
            self.abort()
            raise

    def _create(self):
        from ocirt import cgroups
        from ocirt.plan.build import create_plan, ignored_without_mount_ns
        from ocirt.spawn import Session
        linux = self.spec["linux"]
        cgroup = cgroups.for_container(linux.get("cgroupsPath"), self.c.id, self.g.systemd_cgroup)
        self._record_intent(cgroup)
        found = cgroup.create(linux.get("resources"))   # undoes itself if it fails
        self.cgroup = cgroup
        self.g.log.debug(f"create {self.c.id}: cgroup {' '.join(cgroup.unique_dirs())}")
        if found:
            self.g.log.warn(str(OcirtError(f"the container's cgroup is not empty: {found} process(es) found",
                                           "linux.cgroupsPath")))
        for w in getattr(cgroup, "warnings", ()):   # the systemd driver's: rules systemd cannot hold
            self.g.log.warn(str(OcirtError(w, "linux.resources.devices")))
        from ocirt.cgroups.spec import ignored
        for w in ignored(linux.get("resources")):
            self.g.log.warn(str(w))
        if linux.get("intelRdt") is not None:
            from ocirt import intelrdt
            self.rdt = intelrdt.set_up(linux["intelRdt"], self.c.id)
        if not self.foreground:
            os.mkfifo(self.c.fifo, 0o622)
            os.chmod(self.c.fifo, 0o622)  # past our umask: any container uid writes it
        console_fd = self._console()
        ctx = self._context(console_fd)
        spec = self.spec
        if self.listen_fds:  # told in the environment of the process, not kept in the state
            proc = spec["process"]
            env = [*(proc.get("env") or []), f"LISTEN_FDS={self.listen_fds}", "LISTEN_PID=1"]
            spec = dict(spec, process=dict(proc, env=env))
        steps = create_plan(spec, ctx)
        for where, why in ignored_without_mount_ns(spec):
            self.g.log.warn(str(OcirtError(why, where)))
        for w in ungranted_caps(spec["process"]):
            self.g.log.warn(str(w))
        try:
            self.g.log.debug(f"create {self.c.id}: a plan of {len(steps)} steps for the helper")
            self.session = Session(steps, keep_fds=[console_fd] if console_fd is not None else [],
                                   preserve_fds=ctx["preserve_fds"], log=self.g.log)
        finally:
            if console_fd is not None:
                os.close(console_fd)
        self._converse()

    def _record_intent(self, cgroup):
        """Before anything is made, what will be: the cgroup directories
        (parents included) and the resctrl groups. The helper and the init
        need no record: the helper joins the cgroup before it can block on
        anything, and the init is born in it."""
        cgroup.plan_made()
        record = {"cgroup": cgroup.to_state()}
        if self.spec["linux"].get("intelRdt") is not None:
            from ocirt import intelrdt
            record["intelRdt"] = intelrdt.to_make(self.spec["linux"]["intelRdt"], self.c.id)
        self.c.record_intent(record)

    def _context(self, console_fd):
        files, v2 = self.cgroup.clone_join()
        return {
            "rootfs": self.rootfs, "bundle": self.bundle,
            "cgroup_files": files, "cgroup_v2_dir": v2, "rdt_tasks": self.rdt["tasks"] if self.rdt else (),
            "cgroup_leave": self.cgroup.helper_leaves() if self.foreground else (),
            "cgroup_hold": self.cgroup.holds_helper,
            "cgroup_dirs": [(_mount_name(k), d) for k, d in self.cgroup.dirs.items()],
            "cgroup2_host": self.cgroup.version == 2,
            "fifo": None if self.foreground else self.c.fifo,
            "console_fd": console_fd, "preserve_fds": self.listen_fds + self.opts.preserve_fds,
            "no_pivot": self.opts.no_pivot, "no_new_keyring": self.opts.no_new_keyring,
            "wait": self.foreground,
            "seccomp": compiled_seccomp(self.g, self.spec["linux"]), "id": self.c.id,
        }

    def _console(self):
        if not (self.spec["process"].get("terminal")):
            return None
        if self.opts.console_socket:
            from ocirt.console import connect
            return connect(self.opts.console_socket)
        if self.foreground:
            from ocirt.console import pair
            self.console_ours, theirs = pair(self.spec["process"])
            return theirs
        raise OcirtError("cannot allocate tty if ocirt will detach without setting console socket",
                         "process.terminal")

    def _converse(self):
        """Follow the helper and init until the init is ready."""
        s = self.session
        while True:
            msg = s.recv()
            if msg[0] == "pid":
                self._record(msg[1])
            elif msg[0] == "hooks":
                self._hooks()
            elif msg[0] == "hold":
                self._start_cgroup()
            elif msg[0] == "ready":
                self.g.log.debug(f"create {self.c.id}: the init is ready")
                break
            elif msg[0] == "error":
                raise OcirtError(msg[2], msg[1] or None)
            else:
                raise self._died()
        if self.console_ours is not None:
            from ocirt.console import recv_master
            self.master = recv_master(self.console_ours)
        if not self.foreground:
            s.reap()
        if self.opts.pid_file:
            write_pid_file(self.opts.pid_file, self.c.state["pid"])

    def _died(self):
        """Why the init died without a word: the OOM killer, when the
        memory limit is below what it needs (the limit is set before it
        joins, so the write itself cannot fail as it does in runc)."""
        if self.cgroup.oom_count():
            mem = (self.spec["linux"].get("resources") or {}).get("memory") or {}
            field = next((k for k in ("limit", "swap") if k in mem), None)
            value = f" ({mem[field]} bytes)" if field else ""
            return OcirtError(f"the memory limit{value} is below what the container's init needs: "
                              "the OOM killer ended it before it was ready",
                              "linux.resources.memory" + (f".{field}" if field else ""))
        return OcirtError("container init exited before it was ready")

    def _record(self, pid):
        self.g.log.debug(f"create {self.c.id}: init pid {pid}")
        start, _ = proc_start_time(pid)
        proc = self.spec["process"]
        self.c.state = {
            "ociVersion": SPEC_VERSION, "id": self.c.id, "pid": pid, "pidStart": start,
            "bundle": self.bundle, "rootfs": self.rootfs, "created": now_rfc3339(),
            "owner": "", "cgroup": self.cgroup.to_state(), "intelRdt": self.rdt, "config": self.spec,
            "terminal": bool(proc.get("terminal")),
            "noNewKeyring": self.opts.no_new_keyring,  # for exec, as runc's state records it
        }
        self.c.save()

    def _start_cgroup(self):
        """The helper waits, before its clone, for its cgroup to be made around it."""
        try:
            self.cgroup.start_around(self.session.pid, self.c.id)
        except OcirtError as e:
            try:
                self.session.send("E" + str(e))
            except OSError:
                pass  # the stopped scope took the helper with it
            raise
        self.session.send("go")

    def _hooks(self):
        """The init waits in its namespaces: linux.netDevices are moved in,
        then prestart and createRuntime run here, in the runtime's
        namespaces; the init then runs createContainer itself and continues."""
        from ocirt import hooks
        state = dict(self.c.oci_state(), status="creating")
        hs = self.spec.get("hooks") or {}
        devices = self.spec["linux"].get("netDevices")
        self.g.log.debug(f"create {self.c.id}: the init waits for the runtime's hooks")
        try:
            if devices:
                from ocirt import netdevices
                netdevices.move(devices, self.c.state["pid"])
            hooks.run(hs, "prestart", state, log=self.g.log)
            hooks.run(hs, "createRuntime", state, log=self.g.log)
        except OcirtError as e:
            self.session.send("E" + str(e))
            raise
        self.session.send_long("go", hooks.container_side(state))

    def abort(self):
        """Undo everything: the process, the cgroup, the state dir (that
        last whatever failed before it: the id must stay free for reuse)."""
        try:
            if self.c.state and self.c.state.get("pid"):
                kill_and_wait(self.c.state["pid"])
            if self.session is not None:
                self.session.reap()
            if self.cgroup is not None:
                self.cgroup.kill_all(SIGKILL)
                self.cgroup.destroy()
            if self.rdt is not None:
                from ocirt import intelrdt
                intelrdt.remove(self.rdt)
            if self.c.state:
                # runtime.md: a failed create continues the lifecycle at poststop.
                _poststop(self.g, self.spec, self.c)
        finally:
            self.c.remove()


def _listen_fds():
    """How many sockets systemd passed us (socket activation): they go on
    to the container at fds 3..., before the --preserve-fds ones, as runc's do."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return 0
    n = os.environ.get("LISTEN_FDS", "")
    return int(n) if n.isdigit() else 0


def compiled_seccomp(g, linux):
    """linux.seccomp as BPF, cached under the state root (None if absent)."""
    sec = linux.get("seccomp")
    if not sec:
        return None
    from ocirt.plan.seccomp import compile_seccomp
    return compile_seccomp(sec, cache_dir=os.path.join(g.root, ".seccomp-cache"))


def ungranted_caps(proc):
    """Warnings for the capabilities of proc this runtime cannot grant."""
    from ocirt.plan.host import bounding_set
    from ocirt.plan.process import ungranted
    return ungranted(proc.get("capabilities"), bounding_set())


def _mount_name(ctrl):
    """Directory under /sys/fs/cgroup for a hierarchy's bind mount."""
    if not ctrl:
        return "unified"
    return ctrl.split("=", 1)[1] if ctrl.startswith("name=") else ctrl


def write_pid_file(path, pid):
    """Digits only, no newline (containerd's shim parses it strictly)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    os.write(fd, str(pid).encode())
    os.close(fd)
    os.replace(tmp, path)


def kill_and_wait(pid, timeout=10.0):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, SIGKILL)
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.poll(int(timeout * 1000))
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
    try:  # ours to reap only when we are its parent (run, or a subreaper)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def create(g, cid, opts):
    Creation(g, cid, opts).run()
    return 0


# ---- start, state, kill, delete, list ------------------------------------

def start(g, cid):
    c = Container(g.root, cid).load()
    status = c.status()
    if status != "created":
        if status == "stopped":
            raise OcirtError("cannot start a container that has stopped")
        raise OcirtError("cannot start an already running container")
    g.log.debug(f"start {cid}: releasing the init (pid {c.state['pid']})")
    _release(c)
    g.log.debug(f"start {cid}: the program runs")
    _poststart(g, c)
    return 0


def _release(c):
    """Open exec.fifo for reading: the blocked init writes "0", and the
    fifo ends when its program runs (execve closes it) or after the error
    that stopped it."""
    fd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        data = _read_fifo(c, fd)
    finally:
        os.close(fd)
        os.unlink(c.fifo)
    if data[:1] != b"0":
        raise OcirtError("container init died before it could be started")
    if data[1:2] == b"E":  # a startContainer hook or the execve failed: init says why, and exits
        where, _, msg = data[2:].decode(errors="replace").partition("\t")
        raise OcirtError(msg, where or None, "config.json")
    why = _died_before_exec(c.state)
    if why:
        raise OcirtError(why, "process", "config.json")


def _read_fifo(c, fd):
    """All the init writes, up to the end of the fifo (or its death before
    it opened the fifo)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    data = b""
    while True:
        if p.poll(100):
            chunk = os.read(fd, 4096)
            if not chunk and (data or not c.init_alive()):
                return data
            data += chunk
        elif not data and not c.init_alive():
            return data


def _died_before_exec(st):
    """Why the init died before its execve without a word (say, seccomp
    killed it at execve), while it is a zombie still named ocirt-init
    (execve renames a process)."""
    try:
        with open(f"/proc/{st['pid']}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index(b"(") + 1:data.rindex(b")")]
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] != b"Z" or comm != b"ocirt-init" or int(fields[19]) != st.get("pidStart"):
        return None
    code = int(fields[49])  # exit_code, as waitpid reports it
    if code & 0x7F:
        import signal
        return f"killed by signal {code & 0x7F} ({signal.Signals(code & 0x7F).name}) before its program ran"
    return f"exited with status {code >> 8} before its program ran"


def _poststart(g, c):
    """A failing poststart hook fails the operation and stops the container
    (runtime.md, step 11)."""
    hs = (c.state.get("config") or {}).get("hooks") or {}
    if hs.get("poststart"):
        from ocirt import hooks
        try:
            hooks.run(hs, "poststart", c.oci_state(), log=g.log)
        except OcirtError:
            kill_and_wait(c.state["pid"])
            raise


def state(g, cid):
    c = Container(g.root, cid).load(lock=False)
    print(jsonio.dumps_indent(c.oci_state()))
    return 0


def kill(g, cid, sig, all_=False):
    c = Container(g.root, cid).load()
    # --all still reaches a stopped container's cgroup: without a pid namespace
    # of its own, its processes outlive init (runc's shim relies on this)
    if c.status() == "stopped" and not all_:
        raise OcirtError("container not running")
    g.log.debug(f"kill {cid}: signal {sig} to {'every process of the cgroup' if all_ else c.state['pid']}")
    if all_:
        from ocirt import cgroups
        cgroups.from_state(c.state["cgroup"]).kill_all(sig)
    else:
        try:
            os.kill(c.state["pid"], sig)
        except ProcessLookupError:
            raise OcirtError("container not running") from None
    return 0


def delete(g, cid, force=False):
    c = Container(g.root, cid)
    try:
        c.load()
    except OcirtError as e:
        corrupt = os.path.exists(os.path.join(c.dir, "state.json"))
        if corrupt and not force:
            raise
        if corrupt:  # nothing to act on
            g.log.warn(f"{e}: removing its state; its processes and cgroup, if any, are left")
            c.remove()
        else:  # a create that died before the init was known (the lock says it is gone)
            _undo_aborted_create(g, c)
        if not force:
            raise  # as runc: the debris goes, and the container still did not exist
        return 0
    status = c.status()
    if status in ("running", "paused") and not force:
        raise OcirtError(f'cannot delete container "{cid}" that is not stopped: {status}')
    destroy(g, c)
    return 0


def _undo_aborted_create(g, c):
    """Remove what a create that died recorded it would make, and its directory."""
    c.state = c.load_intent()
    if c.state:
        destroy(g, c)
    elif os.path.isdir(c.dir):
        c.remove()


def destroy(g, c):
    """Kill what is left, remove the cgroup, run poststop, remove the state."""
    from ocirt import cgroups
    cg = cgroups.from_state(c.state["cgroup"])
    cg.kill_all(SIGKILL)   # first: it thaws a paused container, whose init could not die before
    if c.state.get("pid") and c.init_alive():
        kill_and_wait(c.state["pid"])
    cg.destroy()
    g.log.debug(f"delete {c.id}: processes killed, cgroup removed")
    if c.state.get("intelRdt"):
        from ocirt import intelrdt
        intelrdt.remove(c.state["intelRdt"])
    _poststop(g, c.state.get("config") or {}, c)
    c.remove()


def _poststop(g, spec, c):
    """Poststop hooks; their failures are warnings (runtime.md), whatever
    raised them: nothing may keep a container from being deleted."""
    hs = spec.get("hooks") or {}
    if not hs.get("poststop"):
        return
    from ocirt import hooks
    try:
        hooks.run(hs, "poststop", dict(c.oci_state(), status="stopped"), warn=g.log.warn, log=g.log)
    except Exception as e:  # OcirtErrors were warned of; this is any other
        g.log.warn(f"poststop hooks: {e}")


def list_(g, fmt="table", quiet=False):
    states = []
    for cid in list_ids(g.root):
        try:
            states.append(Container(g.root, cid).load(lock=False).oci_state())
        except OcirtError:
            continue
    if quiet:
        for s in states:
            print(s["id"])
    elif fmt == "json":
        print(jsonio.dumps(states) if states else "null")
    elif fmt == "table":
        _table(states)
    else:
        raise OcirtError(f'invalid format option "{fmt}"')
    return 0


def _table(states):
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states]
    widths = [max(12, 3 + max(len(r[i]) for r in rows)) for i in range(5)]
    for r in rows:
        print("".join(v.ljust(w) for v, w in zip(r, widths)) + r[5])


# ---- run -------------------------------------------------------------------

def run(g, cid, opts):
    """create + start (+ wait, forwarding signals, then delete)."""
    if opts.detach:
        cr = Creation(g, cid, opts)
        cr.run()
        _release(cr.c)
        _poststart(g, cr.c)
        return 0
    from ocirt.foreground import Forwarder, wait_for
    forwarder = Forwarder()
    cr = Creation(g, cid, opts, foreground=True)
    cr.run()
    try:
        cr.session.wait_exec()
        _poststart(g, cr.c)
        cr.c.unlock()  # while it runs, others may exec, kill, pause or delete it
        code = wait_for(cr.session, cr.c.state["pid"], cr.master, forwarder)
    finally:
        if not opts.keep:
            _destroy_if_ours(g, cr.c)
    return code


def _destroy_if_ours(g, c):
    """After a foreground run, unless a `delete` came first (the id may
    even be another container's by now)."""
    ours = c.state
    try:
        c.load()
    except OcirtError:
        return
    if (c.state.get("pid"), c.state.get("pidStart")) == (ours["pid"], ours["pidStart"]):
        destroy(g, c)
