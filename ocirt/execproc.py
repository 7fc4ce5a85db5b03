"""`ocirt exec`: run a new process in a running container. It joins every
namespace and the cgroup of the container's init and gets the container's
seccomp filter, capabilities, rlimits and noNewPrivileges unless the
process says otherwise. Detached, it ends up a child of our caller (conmon,
the shim), since the helper that cloned it exits."""
import os

from ocirt import jsonio
from ocirt.errors import OcirtError
from ocirt.state import Container


def cmd_exec(g, flags, args):
    from ocirt.cli import UsageError
    if not args:
        raise UsageError('"exec" requires a container id')
    c = Container(g.root, args[0]).load()
    status = c.status()
    if status == "stopped":
        raise OcirtError("cannot exec in a stopped container")
    if status == "paused" and not flags["ignore-paused"]:
        raise OcirtError("cannot exec in a paused container (use --ignore-paused)")
    proc = _process(c, flags, args[1:])
    return Exec(g, c, proc, flags).run()


def _process(c, flags, argv):
    """The process to run: --process FILE as is, else the container's
    process with the command line's changes (what runc does)."""
    if flags["process"]:
        try:
            data = jsonio.read_file(flags["process"])
            proc = jsonio.loads(data)
        except OSError as e:
            raise OcirtError(f"--process {flags['process']}: {e.strerror.lower()}") from None
        except ValueError as e:
            raise OcirtError(f"--process {flags['process']}: invalid JSON: {e}") from None
        from ocirt.validate import check_strings, validate_process
        validate_process(proc)
        check_strings(proc, data, "process.json")
        if not proc.get("args"):
            raise OcirtError("must name the program to run", "process.args", "process.json")
        return proc
    if not argv:
        raise OcirtError("exec: no command given")
    proc = dict(c.state["config"]["process"])
    proc["args"] = list(argv)
    proc["terminal"] = flags["tty"]
    if flags["cwd"]:
        proc["cwd"] = flags["cwd"]
    if flags["env"]:
        proc["env"] = list(proc.get("env") or []) + flags["env"]
    if flags["user"] or flags["additional-gids"]:
        proc["user"] = _user(flags, dict(proc.get("user") or {}))
    if flags["cap"]:
        caps = {k: list(v) for k, v in (proc.get("capabilities") or {}).items()}
        for s in ("bounding", "effective", "permitted", "ambient"):
            caps[s] = caps.get(s, []) + flags["cap"]
        proc["capabilities"] = caps
    if flags["no-new-privs"]:
        proc["noNewPrivileges"] = True
    if flags["apparmor"]:
        proc["apparmorProfile"] = flags["apparmor"]
    if flags["process-label"]:
        proc["selinuxLabel"] = flags["process-label"]
    return proc


def _user(flags, user):
    if flags["user"]:
        uid, _, gid = flags["user"].partition(":")
        try:
            user["uid"] = int(uid)
            if gid:  # else the container's gid stays, as with runc
                user["gid"] = int(gid)
        except ValueError:
            raise OcirtError(f'--user "{flags["user"]}": give numeric uid[:gid]') from None
    if flags["additional-gids"]:
        try:
            user["additionalGids"] = list(user.get("additionalGids") or []) + \
                [int(x) for x in flags["additional-gids"]]
        except ValueError:
            raise OcirtError("--additional-gids: give numeric group ids") from None
    return user


# exec's flags and the process fields they set
FLAG_FIELDS = (("cwd", "process.cwd"), ("user", "process.user"), ("additional-gids", "process.user"),
               ("env", "process.env"), ("cap", "process.capabilities"),
               ("apparmor", "process.apparmorProfile"), ("process-label", "process.selinuxLabel"))


class Exec:
    def __init__(self, g, c, proc, flags):
        self.g, self.c, self.proc, self.flags = g, c, proc, flags
        self.detach = flags["detach"]
        self.console_ours = None

    def run(self):
        from ocirt.plan.build import exec_plan
        from ocirt.spawn import Session
        console_fd = self._console()
        ctx = self._context(console_fd)
        try:
            steps = exec_plan(self._namespaces(), self.proc, ctx)
        except OcirtError as e:
            raise self._blame(e) from None
        from ocirt.container import ungranted_caps
        for w in ungranted_caps(self.proc):
            self.g.log.warn(str(self._blame(w)))
        forwarder = None
        if not self.detach:
            from ocirt.foreground import Forwarder
            forwarder = Forwarder()
        self.g.log.debug(f"exec {self.c.id}: {self.proc['args'][0]}, a plan of {len(steps)} steps")
        try:
            session = Session(steps, keep_fds=[console_fd] if console_fd is not None else [],
                              preserve_fds=self.flags["preserve-fds"], log=self.g.log)
        finally:
            if console_fd is not None:
                os.close(console_fd)
        self.c.unlock()
        pid = self._started(session)
        self.g.log.debug(f"exec {self.c.id}: the program runs, pid {pid}")
        if self.flags["pid-file"]:
            from ocirt.container import write_pid_file
            write_pid_file(self.flags["pid-file"], pid)
        if self.detach:
            session.reap()
            return 0
        master = None
        if self.console_ours is not None:
            from ocirt.console import recv_master
            master = recv_master(self.console_ours)
        from ocirt.foreground import wait_for
        return wait_for(session, pid, master, forwarder)

    def _started(self, session):
        pid = None
        while True:
            msg = session.recv()
            if msg[0] == "pid":
                pid = msg[1]
            elif msg[0] == "ready":
                try:
                    session.wait_exec()
                except OcirtError as e:
                    raise self._blame(e) from None
                return pid
            elif msg[0] == "error":
                session.reap()
                raise self._blame(OcirtError(msg[2], msg[1] or None))
            else:
                session.reap()
                raise OcirtError("the exec'd process ended before it could start")

    def _blame(self, e):
        """Name where the faulty value came from: process.json, the flag that
        set the field, the command (args), or else config.json."""
        if self.flags["process"]:
            e.source = "process.json"
            return e
        w = e.where or ""
        if w.startswith("process.args"):
            e.where = None  # the message names the program
            return e
        for flag, field in FLAG_FIELDS:
            if self.flags[flag] and (w == field or w.startswith((field + ".", field + "["))):
                e.source, e.where = f"--{flag}", ""
                break
        return e

    def _namespaces(self):
        from ocirt.plan.namespaces import PROC_NS
        pid = self.c.state["pid"]
        types = [ns["type"] for ns in self.c.state["config"]["linux"].get("namespaces") or []]
        return [(t, f"/proc/{pid}/ns/{PROC_NS[t]}") for t in types]

    def _context(self, console_fd):
        from ocirt import cgroups
        from ocirt.container import compiled_seccomp
        cg = cgroups.from_state(self.c.state["cgroup"])
        if self.flags["cgroup"]:
            from ocirt.cgroups.paths import parse_sub_cgroups
            cg = cg.sub(parse_sub_cgroups(self.flags["cgroup"]))
        files, v2 = cg.clone_join()
        return {"cgroup_files": files, "cgroup_v2_dir": v2, "console_fd": console_fd,
                "cgroup_leave": () if self.detach else cgroups.own_procs(cg),
                "rdt_tasks": (self.c.state.get("intelRdt") or {}).get("tasks", ()),
                "preserve_fds": self.flags["preserve-fds"], "wait": not self.detach,
                "seccomp": compiled_seccomp(self.g, self.c.state["config"]["linux"]), "create_cwd": False,
                "id": self.c.id, "no_new_keyring": self.c.state.get("noNewKeyring", False)}

    def _console(self):
        if not self.proc.get("terminal"):
            return None
        if self.flags["console-socket"]:
            from ocirt.console import connect
            return connect(self.flags["console-socket"])
        if not self.detach:
            from ocirt.console import pair
            self.console_ours, theirs = pair(self.proc)
            return theirs
        raise OcirtError("cannot allocate tty if ocirt will detach without setting console socket")
