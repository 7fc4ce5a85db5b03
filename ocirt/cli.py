"""runc-compatible command line: the same commands, flags, defaults, output
and exit codes. Table-driven and dependency-free: argparse alone would add
~5 ms to every call."""
import sys

from ocirt import SPEC_VERSION, __version__
from ocirt.errors import OcirtError

# flag name -> (short alias, kind, default); kinds: bool, str, int, list
GLOBAL_FLAGS = {
    "debug": (None, "bool", False), "log": (None, "str", ""), "log-format": (None, "str", "text"),
    "root": (None, "str", "/run/ocirt"), "criu": (None, "str", "criu"),
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
    "exec": ("ocirt.execproc", "cmd_exec", _EXEC, "<container-id> <command> [command options]",
             "execute new process inside the container"),
    "pause": ("ocirt.cgroupcmds", "cmd_pause", {}, "<container-id>", "pause suspends all processes inside the container"),
    "resume": ("ocirt.cgroupcmds", "cmd_resume", {}, "<container-id>", "resumes all processes that have been previously paused"),
    "ps": ("ocirt.cgroupcmds", "cmd_ps", {"format": ("f", "str", "table")}, "<container-id> [ps options]",
           "ps displays the processes running inside a container"),
    "events": ("ocirt.cgroupcmds", "cmd_events", {"interval": (None, "str", "5s"), "stats": (None, "bool", False)},
               "<container-id>", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ("ocirt.cgroupcmds", "cmd_update", _UPDATE, "<container-id>", "update container resource constraints"),
    "features": ("ocirt.features", "cmd_features", {}, "", "show the enabled features"),
}


class Globals:
    def __init__(self, flags):
        from ocirt.log import Log
        self.root = flags["root"]
        self.debug = flags["debug"]
        self.log = Log(flags["log"], flags["log-format"], flags["debug"])
        self.systemd_cgroup = flags["systemd-cgroup"]
        self.command = None
        # runc's --rootless=true ignores cgroup permission errors; ocirt
        # does not (auto and false, as root, are what ocirt does)
        if flags["rootless"].lower() not in ("auto", "", "false", "f", "0"):
            self.log.warn(f"--rootless={flags['rootless']}: ignored: cgroup permission errors are not ignored")


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
    log = g = None
    try:
        gflags, rest = parse_flags(argv, GLOBAL_FLAGS)
        if gflags["version"]:
            print(f"ocirt version {__version__}\ncommit: {_commit()}\nspec: {SPEC_VERSION}\n"
                  f"python: {sys.version.split()[0]}")
            return 0
        if gflags["help"] or not rest:
            print(usage())
            return 0
        g = Globals(gflags)
        log = g.log
        return dispatch(g, rest[0], rest[1:])
    except UsageError as e:
        _report(log, str(e))
        return e.code
    except (OcirtError, ValueError) as e:  # ValueError: bad --log-format
        _report(log, str(e))
        return _failure(g)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as e:
        die_if_stdout_closed()
        _report(log, str(e.strerror).lower())
        return _failure(g)
    except OSError as e:
        if log is not None and log.debug_on:
            raise
        _report(log, f"{e.filename + ': ' if e.filename else ''}{(e.strerror or str(e)).lower()}")
        return _failure(g)


def _commit():
    """The build's git commit, which setup.py records (runc's commit: line)."""
    import os
    try:
        with open(os.path.join(os.path.dirname(__file__), "COMMIT")) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


def _failure(g):
    """The exit status of a failure of the runtime's own: 255 for exec, so
    that its caller tells it from the program's status (as runc), else 1."""
    return 255 if g is not None and g.command == "exec" else 1


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


def dispatch(g, name, args):
    if name == "help":
        return cmd_help(args)
    if name not in COMMANDS:
        raise UsageError(f"No help topic for '{name}'", code=3)
    module, func, spec = COMMANDS[name][:3]
    flags, positional = parse_flags(args, dict(spec, help=("h", "bool", False)),
                                    reorder=name not in ("exec", "ps"))
    if flags.pop("help"):
        return cmd_help([name])
    g.command = name
    mod = sys.modules[__name__] if module == __name__ else __import__(module, fromlist=[func])
    return getattr(mod, func)(g, flags, positional)


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


def _options(flags):
    from ocirt.container import Options
    return Options(bundle=flags["bundle"], pid_file=flags["pid-file"],
                   console_socket=flags["console-socket"], no_pivot=flags["no-pivot"],
                   no_new_keyring=flags["no-new-keyring"], preserve_fds=flags["preserve-fds"],
                   detach=flags.get("detach", False), keep=flags.get("keep", False))


def _container():
    from ocirt import container
    return container


def cmd_create(g, flags, args):
    return _container().create(g, need_id(args, "create"), _options(flags))


def cmd_run(g, flags, args):
    return _container().run(g, need_id(args, "run"), _options(flags))


def cmd_start(g, flags, args):
    return _container().start(g, need_id(args, "start"))


def cmd_state(g, flags, args):
    return _container().state(g, need_id(args, "state"))


def cmd_kill(g, flags, args):
    from ocirt.signals import parse_signal
    cid = need_id(args, "kill", extra=1)
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    return _container().kill(g, cid, sig, flags["all"])


def cmd_delete(g, flags, args):
    return _container().delete(g, need_id(args, "delete"), flags["force"])


def cmd_list(g, flags, args):
    no_args(args, "list")
    return _container().list_(g, flags["format"], flags["quiet"])


if __name__ == "__main__":
    sys.exit(main())
