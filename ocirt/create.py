"""`create` (and `run`, which is create + start + wait): the cgroup and the
resctrl group made, the intent recorded, the plan handed to the helper
through the launch path, the hooks run while the init waits, state.json
written once its pid is known; and on any failure, all of it undone."""
import posix

from ocirt import SPEC_VERSION
from ocirt.errors import OcirtError
from ocirt.launch import Launch, check_terminal, compiled_seccomp
from ocirt.pathops import abspath
from ocirt.rootless import getenv
from ocirt.state import Container, check_id, now_rfc3339, proc_start_time


class Options:
    """What create/run take besides the id (runc's flags); placement: the
    runtime's cgroups.Placement, if read already (by the warm-up)."""

    def __init__(self, bundle=".", pid_file=None, console_socket=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, stdio=None, placement=None):
        self.bundle = bundle or "."
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.stdio = stdio
        self.placement = placement


class Creation:
    """One `create` in progress: what it made, so a failure can undo it all.
    rt: the ocirt.api.Runtime (its root, log and cgroup driver)."""

    def __init__(self, rt, cid, opts, foreground=False):
        from ocirt import bundle
        check_id(cid)
        self.rt, self.log, self.opts, self.foreground = rt, rt.log, opts, foreground
        self.rootless = rt.rootless   # first: a bad --rootless fails before anything is read or made
        self.spec, self.rootfs = bundle.load(opts.bundle)
        self.bundle = abspath(opts.bundle)
        self.c = Container(rt.root, cid)
        self.cgroup = None
        self.rdt = None  # the resctrl group intelrdt.set_up made or joined
        check_terminal(self.spec["process"].get("terminal"), not foreground, opts.console_socket,
                       "process.terminal")
        self.launch = Launch(self.log, self.spec["process"], opts.console_socket, foreground, opts.stdio)
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
        from ocirt.plan.process import ungranted
        linux = self.spec["linux"]
        cgroup = cgroups.for_container(linux.get("cgroupsPath"), self.c.id, self.rt.systemd_cgroup, self.rootless,
                                       self.opts.placement)
        self._record_intent(cgroup)
        if self.rootless and not linux.get("cgroupsPath") and not self.rt.systemd_cgroup:
            from ocirt.cgroups.none import create_rootless
            own_pidns = any(n.get("type") == "pid" and not n.get("path") for n in linux.get("namespaces") or [])
            cgroup, found = create_rootless(cgroup, linux.get("resources"), self.log, own_pidns)
        else:
            found = cgroup.create(linux.get("resources"))   # undoes itself if it fails
        self.cgroup = cgroup
        self.log.debug(f"create {self.c.id}: cgroup {' '.join(cgroup.unique_dirs())}")
        if found:
            self.log.warn(str(OcirtError(f"the container's cgroup is not empty: {found} process(es) found",
                                         "linux.cgroupsPath")))
        for w in getattr(cgroup, "warnings", ()):   # the systemd driver's: rules systemd cannot hold
            self.log.warn(str(OcirtError(w, "linux.resources.devices")))
        if (linux.get("resources") or {}).get("memory"):  # kernel memory limits: see spec.ignored
            from ocirt.cgroups.spec import ignored
            for w in ignored(linux["resources"]):
                self.log.warn(str(w))
        if linux.get("intelRdt") is not None:
            from ocirt import intelrdt
            self.rdt = intelrdt.set_up(linux["intelRdt"], self.c.id)
        if not self.foreground:
            posix.mkfifo(self.c.fifo, 0o622)
            posix.chmod(self.c.fifo, 0o622)  # past our umask: any container uid writes it
        console_fd = self.launch.console()
        ctx = self._context(console_fd)
        spec = self.spec
        if self.listen_fds:  # told in the environment of the process, not kept in the state
            proc = spec["process"]
            env = [*(proc.get("env") or []), f"LISTEN_FDS={self.listen_fds}", "LISTEN_PID=1"]
            spec = dict(spec, process=dict(proc, env=env))
        steps = create_plan(spec, ctx)
        for where, why in ignored_without_mount_ns(spec):
            self.log.warn(str(OcirtError(why, where)))
        for w in ungranted(spec["process"].get("capabilities"), ctx.host.bounding):
            self.log.warn(str(w))
        self.log.debug(f"create {self.c.id}: a plan of {len(steps)} steps for the helper")
        self.launch.spawn(steps, ctx.preserve_fds)
        self.launch.converse(self._died, {"pid": self._record, "hooks": self._hooks, "hold": self._start_cgroup})
        self.log.debug(f"create {self.c.id}: the init is ready")
        self.launch.ready(self.opts.pid_file)

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
        from ocirt import hostfacts
        from ocirt.plan.context import Context
        files, v2 = self.cgroup.clone_join()
        return Context(
            rootfs=self.rootfs, bundle=self.bundle, id=self.c.id,
            cgroup_files=files, cgroup_v2_dir=v2, rdt_tasks=self.rdt["tasks"] if self.rdt else (),
            cgroup_leave=self.cgroup.helper_leaves(self.opts.placement) if self.foreground else (),
            cgroup_hold=self.cgroup.holds_helper,
            cgroup_dirs=[(_mount_name(k), d) for k, d in self.cgroup.dirs.items()],
            cgroup2_host=self.cgroup.version == 2,
            fifo=None if self.foreground else self.c.fifo,
            console_fd=console_fd, preserve_fds=self.listen_fds + self.opts.preserve_fds,
            no_pivot=self.opts.no_pivot, no_new_keyring=self.opts.no_new_keyring, wait=self.foreground,
            seccomp=compiled_seccomp(self.rt.root, self.spec["linux"]),
            host=hostfacts.gather(self.spec, self.bundle))

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
        self.log.debug(f"create {self.c.id}: init pid {pid}")
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
        session = self.launch.session
        try:
            self.cgroup.start_around(session.pid, self.c.id)
        except OcirtError as e:
            try:
                session.send("E" + str(e))
            except OSError:
                pass  # the stopped scope took the helper with it
            raise
        session.send("go")

    def _hooks(self):
        """The init waits in its namespaces: linux.netDevices are moved in,
        then prestart and createRuntime run here, in the runtime's
        namespaces; the init then runs createContainer itself and continues."""
        from ocirt import hooks
        state = self.c.oci_state("creating")
        hs = self.spec.get("hooks") or {}
        devices = self.spec["linux"].get("netDevices")
        self.log.debug(f"create {self.c.id}: the init waits for the runtime's hooks")
        try:
            if devices:
                from ocirt import netdevices
                netdevices.move(devices, self.c.state["pid"])
            hooks.run(hs, "prestart", state, log=self.log)
            hooks.run(hs, "createRuntime", state, log=self.log)
        except OcirtError as e:
            self.launch.session.send("E" + str(e))
            raise
        self.launch.session.send_long("go", hooks.container_side(state))

    def abort(self):
        """Undo everything: the process, the cgroup, the state dir (that
        last whatever failed before it: the id must stay free for reuse)."""
        try:
            from ocirt.signals import SIGKILL, kill_and_wait
            if self.c.state and self.c.state.get("pid"):
                kill_and_wait(self.c.state["pid"])
            if self.launch.session is not None:
                self.launch.session.reap()
            if self.cgroup is not None:
                self.cgroup.kill_all(SIGKILL)
                self.cgroup.destroy()
            if self.rdt is not None:
                from ocirt import intelrdt
                intelrdt.remove(self.rdt)
            if self.c.state:
                # runtime.md: a failed create continues the lifecycle at poststop.
                from ocirt.teardown import poststop
                poststop(self.log, self.spec, self.c)
        finally:
            self.launch.close()
            self.c.remove()


def _listen_fds():
    """How many sockets systemd passed us (socket activation): they go on
    to the container at fds 3..., before the --preserve-fds ones, as runc's do."""
    if getenv("LISTEN_PID") != str(posix.getpid()):
        return 0
    n = getenv("LISTEN_FDS") or ""
    return int(n) if n.isdigit() else 0


def _mount_name(ctrl):
    """Directory under /sys/fs/cgroup for a hierarchy's bind mount."""
    if not ctrl:
        return "unified"
    return ctrl.split("=", 1)[1] if ctrl.startswith("name=") else ctrl


def poststart(log, c):
    """A failing poststart hook fails the operation and stops the container
    (runtime.md, step 11)."""
    hs = (c.state.get("config") or {}).get("hooks") or {}
    if hs.get("poststart"):
        from ocirt import hooks
        try:
            hooks.run(hs, "poststart", c.oci_state(), log=log)
        except OcirtError:
            from ocirt.signals import kill_and_wait
            kill_and_wait(c.state["pid"])
            raise


def run(rt, cid, opts, detach=False, keep=False):
    """create + start, and in the foreground wait (forwarding signals),
    then delete unless keep: -> the exit status (None detached)."""
    cr = Creation(rt, cid, opts, foreground=not detach)
    cr.run()
    if detach:
        try:
            cr.c.release()
            poststart(rt.log, cr.c)
        finally:
            cr.c.unlock()
        return None
    try:
        cr.launch.session.wait_exec()
        poststart(rt.log, cr.c)
        cr.c.unlock()  # while it runs, others may exec, kill, pause or delete it
        return cr.launch.wait()
    finally:
        try:
            if not keep:
                _destroy_if_ours(rt.log, cr.c)
        finally:
            cr.launch.close()  # only now: a signal must not cut the delete short


def _destroy_if_ours(log, c):
    """After a foreground run, unless a `delete` came first (the id may
    even be another container's by now)."""
    ours = c.state
    c.unlock()  # still ours if the program never ran
    try:
        c.load()
    except OcirtError:
        return
    try:
        if (c.state.get("pid"), c.state.get("pidStart")) == (ours["pid"], ours["pidStart"]):
            from ocirt.teardown import destroy
            destroy(log, c)
    finally:
        c.unlock()
