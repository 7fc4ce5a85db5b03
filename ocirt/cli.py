"""runc-compatible command line: the same commands, flags, defaults, output
and exit codes. Table-driven and dependency-free: argparse alone would add
~5 ms to every call. A thin layer over ocirt.api: it parses the flags,
calls the Runtime and prints what runc prints. The hot commands are here;
exec is in cliexec.py; pause, resume, ps, events, update, features, checkpoint
and restore in clicmds.py."""
import sys

from ocirt import SPEC_VERSION, __version__
from ocirt.errors import OcirtError

# flag name -> (short alias, kind, default); kinds: bool, str, int, list
GLOBAL_FLAGS = {
    "debug": (None, "bool", False), "log": (None, "str", ""), "log-format": (None, "str", "text"),
    "root": (None, "str", ""), "criu": (None, "str", "criu"),
    "systemd-cgroup": (None, "bool", False), "rootless": (None, "str", "auto"),
    "help": ("h", "bool", False), "version": ("v", "bool", False),
}
_CREATE = {
    "bundle": ("b", "str", "."), "console-socket": (None, "str", ""), "pid-file": (None, "str", ""),
    "no-pivot": (None, "bool", False), "no-new-keyring": (None, "bool", False),
    "preserve-fds": (None, "int", 0),
}
_EXEC = {
    "console-socket": (None, "str", ""), "cwd": (None, "str", ""), "env": ("e", "list", []),
    "tty": ("t", "bool", False), "user": ("u", "str", ""), "additional-gids": ("g", "list", []),
    "process": ("p", "str", ""), "detach": ("d", "bool", False), "pid-file": (None, "str", ""),
    "process-label": (None, "str", ""), "apparmor": (None, "str", ""),
    "no-new-privs": (None, "bool", False), "cap": ("c", "list", []),
    "preserve-fds": (None, "int", 0), "ignore-paused": (None, "bool", False),
    "cgroup": (None, "list", []),
}
_UPDATE = {
    "resources": ("r", "str", ""), "blkio-weight": (None, "str", ""), "cpu-period": (None, "str", ""),
    "cpu-quota": (None, "str", ""), "cpu-share": (None, "str", ""), "cpu-rt-period": (None, "str", ""),
    "cpu-rt-runtime": (None, "str", ""), "cpuset-cpus": (None, "str", ""),
    "cpuset-mems": (None, "str", ""), "kernel-memory": (None, "str", ""),
    "kernel-memory-tcp": (None, "str", ""), "memory": (None, "str", ""),
    "memory-reservation": (None, "str", ""), "memory-swap": (None, "str", ""),
    "pids-limit": (None, "str", ""), "l3-cache-schema": (None, "str", ""),
    "mem-bw-schema": (None, "str", ""),
}
_CHECKPOINT = {
    "image-path": (None, "str", ""), "work-path": (None, "str", ""), "parent-path": (None, "str", ""),
    "leave-running": (None, "bool", False), "tcp-established": (None, "bool", False),
    "ext-unix-sk": (None, "bool", False), "shell-job": (None, "bool", False),
    "lazy-pages": (None, "bool", False), "status-fd": (None, "int", -1), "page-server": (None, "str", ""),
    "file-locks": (None, "bool", False), "pre-dump": (None, "bool", False),
    "manage-cgroups-mode": (None, "str", ""), "empty-ns": (None, "list", []),
    "auto-dedup": (None, "bool", False),
}
_RESTORE = {
    "bundle": ("b", "str", ""), "detach": ("d", "bool", False), "pid-file": (None, "str", ""),
    "console-socket": (None, "str", ""), "no-subreaper": (None, "bool", False),
    "no-pivot": (None, "bool", False), "image-path": (None, "str", ""), "work-path": (None, "str", ""),
    "tcp-established": (None, "bool", False), "ext-unix-sk": (None, "bool", False),
    "shell-job": (None, "bool", False), "file-locks": (None, "bool", False),
    "manage-cgroups-mode": (None, "str", ""), "empty-ns": (None, "list", []),
    "auto-dedup": (None, "bool", False), "lazy-pages": (None, "bool", False),
    "lsm-profile": (None, "str", ""), "lsm-mount-context": (None, "str", ""),
}
# command -> (module, function, flags, positional args usage, summary)
COMMANDS = {
    "create": ("ocirt.cli", "cmd_create", _CREATE, "<container-id>", "create a container"),
    "run": ("ocirt.cli", "cmd_run", dict(_CREATE, detach=("d", "bool", False), keep=(None, "bool", False)),
            "<container-id>", "create and run a container"),
    "start": ("ocirt.cli", "cmd_start", {}, "<container-id>", "executes the user defined process in a created container"),
    "state": ("ocirt.cli", "cmd_state", {}, "<container-id>", "output the state of a container"),
    "kill": ("ocirt.cli", "cmd_kill", {"all": ("a", "bool", False)}, "<container-id> [signal]",
             "kill sends the specified signal (default: SIGTERM) to the container's init process"),
    "delete": ("ocirt.cli", "cmd_delete", {"force": ("f", "bool", False)}, "<container-id>",
               "delete any resources held by the container"),
    "list": ("ocirt.cli", "cmd_list", {"format": ("f", "str", "table"), "quiet": ("q", "bool", False)},
             "", "lists containers started by ocirt with the given root"),
    "spec": ("ocirt.specgen", "cmd_spec", {"bundle": ("b", "str", ""), "rootless": (None, "bool", False)},
             "", "create a new specification file"),
    "exec": ("ocirt.cliexec", "cmd_exec", _EXEC, "<container-id> <command> [command options]",
             "execute new process inside the container"),
    "pause": ("ocirt.clicmds", "cmd_pause", {}, "<container-id>", "pause suspends all processes inside the container"),
    "resume": ("ocirt.clicmds", "cmd_resume", {}, "<container-id>", "resumes all processes that have been previously paused"),
    "ps": ("ocirt.clicmds", "cmd_ps", {"format": ("f", "str", "table")}, "<container-id> [ps options]",
           "ps displays the processes running inside a container"),
    "events": ("ocirt.clicmds", "cmd_events", {"interval": (None, "str", "5s"), "stats": (None, "bool", False)},
               "<container-id>", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ("ocirt.clicmds", "cmd_update", _UPDATE, "<container-id>", "update container resource constraints"),
    "features": ("ocirt.clicmds", "cmd_features", {}, "", "show the enabled features"),
    "checkpoint": ("ocirt.clicmds", "cmd_checkpoint", _CHECKPOINT, "<container-id>", "checkpoint a running container"),
    "restore": ("ocirt.clicmds", "cmd_restore", _RESTORE, "<container-id>", "restore a container from a previous checkpoint"),
}


def runtime(flags):
    """The ocirt.api.Runtime of the global flags."""
    from ocirt.api import Runtime
    return Runtime(flags["root"], systemd_cgroup=flags["systemd-cgroup"], log_file=flags["log"],
                   log_format=flags["log-format"], debug=flags["debug"], rootless=flags["rootless"],
                   criu=flags["criu"])


class UsageError(OcirtError):
    """The command line is wrong: exit 1 (3 for an unknown command), as runc."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


def parse_flags(argv, spec, reorder=False):
    """-> (values, rest). Accepts --name value, --name=value, -n value,
    and bools as --name or --name=true|false. Without `reorder` the flags
    end at the first argument (global flags; exec and ps, whose arguments
    are a command line); with it, as runc's other commands, the command's
    flags may also follow the arguments (`kill ID 9 --all`) up to `--`, and
    past the first argument what is not one of its flags is an argument."""
    vals = {k: (list(v[2]) if v[1] == "list" else v[2]) for k, v in spec.items()}
    short = {v[0]: k for k, v in spec.items() if v[0]}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return vals, rest + argv[i + 1:]
        name, eq, value = a.lstrip("-").partition("=")
        name = short.get(name, name) if not a.startswith("--") else name
        if not a.startswith("-") or a == "-" or (rest and name not in spec):
            if not reorder:
                return vals, argv[i:]
            rest.append(a)
            i += 1
            continue
        if name not in spec:
            raise UsageError(f"flag provided but not defined: -{a.lstrip('-').split('=')[0]}")
        kind = spec[name][1]
        if kind == "bool":
            vals[name] = value.lower() not in ("false", "0") if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {a}")
                value = argv[i]
            if kind == "int":
                try:
                    vals[name] = int(value)
                except ValueError:
                    raise UsageError(f'invalid value "{value}" for flag {a}: must be an integer') from None
            elif kind == "list":
                vals[name].append(value)
            else:
                vals[name] = value
        i += 1
    return vals, rest


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    log = None
    command = []  # the command, once known (exec's failures exit 255)
    try:
        gflags, rest = parse_flags(argv, GLOBAL_FLAGS)
        if gflags["version"]:
            print(f"ocirt version {__version__}\ncommit: {_commit()}\nspec: {SPEC_VERSION}\n"
                  f"python: {sys.version.split()[0]}")
            return 0
        if gflags["help"] or not rest:
            print(usage())
            return 0
        rt = runtime(gflags)
        log = rt.log
        return dispatch(rt, rest[0], rest[1:], command)
    except UsageError as e:
        _report(log, str(e))
        return e.code
    except (OcirtError, ValueError) as e:  # ValueError: bad --log-format
        _report(log, str(e))
        return _failure(command)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as e:
        die_if_stdout_closed()
        _report(log, str(e.strerror).lower())
        return _failure(command)
    except OSError as e:
        if log is not None and log.debug_on:
            raise
        _report(log, f"{e.filename + ': ' if e.filename else ''}{(e.strerror or str(e)).lower()}")
        return _failure(command)


def _commit():
    """The build's git commit, which setup.py records (runc's commit: line)."""
    from ocirt.pathops import read_text  # not os (see pathops)
    try:
        return read_text(__file__.rpartition("/")[0] + "/COMMIT").strip() or "unknown"
    except (OSError, UnicodeDecodeError):
        return "unknown"


def _failure(command):
    """The exit status of a failure of the runtime's own: 255 for exec, so
    that its caller tells it from the program's status (as runc), else 1."""
    return 255 if command == ["exec"] else 1


def die_if_stdout_closed():
    """Our reader went away (`ocirt list | head -1`): end by SIGPIPE, quietly,
    as a C tool or runc would. Only for stdout: EPIPE on the runtime's own
    pipes and sockets (the helper, a console socket) stays an error."""
    import os
    import select
    p = select.poll()
    p.register(1, 0)
    if any(ev & select.POLLERR for _, ev in p.poll(0)):
        import _signal
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGPIPE)


def _report(log, msg):
    if log is None:
        from ocirt.log import one_line
        sys.stderr.write(f"ocirt: {one_line(msg)}\n")
    else:
        log.error(msg)


def dispatch(rt, name, args, command=None):
    """Run command `name` with its arguments on rt, an ocirt.api.Runtime;
    its name is appended to `command` once its flags parsed."""
    if name == "help":
        return cmd_help(args)
    if name not in COMMANDS:
        raise UsageError(f"No help topic for '{name}'", code=3)
    module, func, spec = COMMANDS[name][:3]
    flags, positional = parse_flags(args, dict(spec, help=("h", "bool", False)),
                                    reorder=name not in ("exec", "ps"))
    if flags.pop("help"):
        return cmd_help([name])
    if command is not None:
        command.append(name)
    mod = sys.modules[__name__] if module == __name__ else __import__(module, fromlist=[func])
    return getattr(mod, func)(rt, flags, positional)


def cmd_help(args):
    """`help [COMMAND]`, and `COMMAND --help`."""
    if not args:
        print(usage())
        return 0
    if args[0] not in COMMANDS:
        raise UsageError(f"No help topic for '{args[0]}'", code=3)
    from ocirt.clidoc import command_help
    print(command_help(args[0]))
    return 0


def usage():
    lines = ["NAME:", "   ocirt - a low-level OCI container runtime (runc-compatible)", "",
             "USAGE:", "   ocirt [global options] command [command options] [arguments...]", "",
             f"VERSION:\n   {__version__}\nspec: {SPEC_VERSION}", "", "COMMANDS:"]
    lines += [f"   {n:<10} {c[4]}" for n, c in COMMANDS.items()]
    from ocirt.clidoc import global_help_rows
    rows = global_help_rows()
    width = max(len(a) for a, _ in rows) + 2
    lines += ["", "GLOBAL OPTIONS:"] + [f"   {a.ljust(width)}{b}" for a, b in rows]
    return "\n".join(lines)


def need_id(args, name, extra=0):
    """The container id, checked like runc: exactly one (plus `extra`)."""
    if not args:
        raise UsageError(f'"{name}" requires a container id')
    if len(args) > 1 + extra:
        raise UsageError(f'"{name}" takes at most {1 + extra} argument(s), got {len(args)}')
    return args[0]


def no_args(args, name):
    if args:
        raise UsageError(f'"{name}" takes no arguments, got {len(args)}')


def _create_flags(flags):
    """create's and run's flags as ocirt.api keyword arguments."""
    return dict(bundle=flags["bundle"], pid_file=flags["pid-file"], console_socket=flags["console-socket"],
                no_pivot=flags["no-pivot"], no_new_keyring=flags["no-new-keyring"],
                preserve_fds=flags["preserve-fds"])


def cmd_create(rt, flags, args):
    rt.create(need_id(args, "create"), **_create_flags(flags))
    return 0


def cmd_run(rt, flags, args):
    status = rt.run(need_id(args, "run"), detach=flags["detach"], keep=flags["keep"], **_create_flags(flags))
    return 0 if status is None else status.code


def cmd_start(rt, flags, args):
    rt.start(need_id(args, "start"))
    return 0


def cmd_state(rt, flags, args):
    from ocirt import jsonio
    print(jsonio.dumps_indent(rt.state(need_id(args, "state")).to_dict()))
    return 0


def cmd_kill(rt, flags, args):
    cid = need_id(args, "kill", extra=1)
    rt.kill(cid, args[1] if len(args) > 1 else "SIGTERM", all_processes=flags["all"])
    return 0


def cmd_delete(rt, flags, args):
    rt.delete(need_id(args, "delete"), flags["force"])
    return 0


def cmd_list(rt, flags, args):
    no_args(args, "list")
    fmt, quiet = flags["format"], flags["quiet"]
    states = rt.list()
    if quiet:
        for s in states:
            print(s.id)
    elif fmt == "json":
        from ocirt import jsonio
        print(jsonio.dumps([s.to_dict() for s in states]) if states else "null")
    elif fmt == "table":
        _table(states)
    else:
        raise OcirtError(f'invalid format option "{fmt}"')
    return 0


def _table(states):
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s.id, str(s.pid), s.status, s.bundle, s.created, s.owner) for s in states]
    widths = [max(12, 3 + max(len(r[i]) for r in rows)) for i in range(5)]
    for r in rows:
        print("".join(v.ljust(w) for v, w in zip(r, widths)) + r[5])


if __name__ == "__main__":
    sys.exit(main())
