"""exec: run a new process in a running container, through the launch path
create uses. It joins every namespace and the cgroup of the container's
init and gets the container's seccomp filter; the rest is its process
spec's. Detached, it ends up a child of our caller (conmon, the shim),
since the helper that cloned it exits."""
from ocirt.errors import OcirtError
from ocirt.launch import Launch, check_terminal, compiled_seccomp


class Exec:
    """One exec into container c (loaded and locked) for rt, an ocirt.api.Runtime."""

    def __init__(self, rt, c, proc, detach=False, console_socket=None, pid_file=None, preserve_fds=0,
                 cgroup=(), stdio=None, validate=True, blame=None):
        self.rt, self.c, self.proc, self.blame = rt, c, proc, blame or _blamed
        self._check(validate)  # first: what follows reads the process (a list has no .get)
        self.detach, self.pid_file, self.preserve_fds, self.sub_cgroups = detach, pid_file, preserve_fds, cgroup
        check_terminal(proc.get("terminal"), detach, console_socket)
        self.launch = Launch(rt.log, proc, console_socket, not detach, stdio)

    def run(self):
        """-> the exit status (None detached)."""
        try:
            return self._run()
        finally:
            self.launch.close()

    def _run(self):
        from ocirt.plan.build import exec_plan
        from ocirt.plan.process import ungranted
        launch = self.launch
        ctx = self._context(launch.console())
        try:
            steps = exec_plan(self._namespaces(), self.proc, ctx)
        except OcirtError as e:
            raise self.blame(e) from None
        for w in ungranted(self.proc.get("capabilities"), ctx.host.bounding):
            self.rt.log.warn(str(self.blame(w)))
        self.rt.log.debug(f"exec {self.c.id}: {self.proc['args'][0]}, a plan of {len(steps)} steps")
        launch.spawn(steps, self.preserve_fds)
        self.c.unlock()
        try:
            launch.converse(lambda: OcirtError("the exec'd process ended before it could start"))
            launch.session.wait_exec()
        except OcirtError as e:
            launch.session.reap()
            raise self.blame(e) from None
        self.rt.log.debug(f"exec {self.c.id}: the program runs, pid {launch.pid}")
        launch.ready(self.pid_file)
        return None if self.detach else launch.wait()

    def _check(self, validate):
        try:
            if validate:
                from ocirt.validate import validate_process
                validate_process(self.proc)
            if not self.proc.get("args"):
                raise OcirtError("must name the program to run", "process.args")
        except OcirtError as e:
            e.source = "process"
            raise self.blame(e) from None

    def _namespaces(self):
        from ocirt.plan.namespaces import PROC_NS
        pid = self.c.state["pid"]
        types = [ns["type"] for ns in self.c.state["config"]["linux"].get("namespaces") or []]
        return [(t, f"/proc/{pid}/ns/{PROC_NS[t]}") for t in types]

    def _context(self, console_fd):
        from ocirt import cgroups, hostfacts
        from ocirt.plan.context import Context
        cg = cgroups.from_state(self.c.state["cgroup"])
        if self.sub_cgroups:
            from ocirt.cgroups.paths import parse_sub_cgroups
            cg = cg.sub(parse_sub_cgroups(self.sub_cgroups))
        files, v2 = cg.clone_join()
        return Context(cgroup_files=files, cgroup_v2_dir=v2, console_fd=console_fd,
                       cgroup_leave=() if self.detach else cgroups.own_procs(cg),
                       rdt_tasks=(self.c.state.get("intelRdt") or {}).get("tasks", ()),
                       preserve_fds=self.preserve_fds, wait=not self.detach,
                       seccomp=compiled_seccomp(self.rt.root, self.c.state["config"]["linux"]),
                       create_cwd=False, id=self.c.id, no_new_keyring=self.c.state.get("noNewKeyring", False),
                       host=hostfacts.gather({"process": self.proc}))


def _blamed(e):
    """A process field's error or warning names the process as its document."""
    if (e.where or "").startswith("process"):
        e.source = "process"
    return e
