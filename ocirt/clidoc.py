"""What each flag of the command table (ocirt.cli) does, and what is made
from the two: `COMMAND --help`, the man pages and the bash completion, so
that none of them can drift from the flags the parser takes. Loaded only
for help and by `make man` / `make completion`, never on a container's path.

    python -m ocirt.clidoc man DIR          ocirt.8 and ocirt-COMMAND.8 in DIR
    python -m ocirt.clidoc completion FILE  the bash completion script"""
import os
import sys

from ocirt import SPEC_VERSION, __version__
from ocirt.cli import COMMANDS, GLOBAL_FLAGS

# (command, flag) first, then the flag alone: most flags mean one thing everywhere.
HELP = {
    "debug": "enable debug logging: each stage, the helper's included, to the log",
    "log": "set the log file to write ocirt logs to (default: stderr)",
    "log-format": "set the log format ('text' (default), or 'json')",
    "root": "root directory for storage of container state (default: \"/run/ocirt\"; for a caller "
            "that is not root: \"$XDG_RUNTIME_DIR/ocirt\")",
    "criu": "path to the criu binary used for checkpoint and restore (default: \"criu\", from PATH)",
    "systemd-cgroup": "use the systemd cgroup driver (cgroup v2; cgroupsPath slice:prefix:name)",
    "rootless": "ignore cgroup permission errors ('true', 'false', or 'auto': rootless when not root "
                "or root of a user namespace only)",
    "help": "show help",
    "version": "print the version",
    "bundle": "path to the root of the bundle directory, defaults to the current directory",
    "console-socket": "path to an AF_UNIX socket which will receive a file descriptor referencing "
                      "the master end of the console's pseudoterminal",
    "pid-file": "specify the file to write the process id to",
    "no-pivot": "do not use pivot root to jail process inside rootfs (the host's mounts are detached)",
    "no-new-keyring": "do not create a new session keyring for the container",
    "preserve-fds": "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)",
    "detach": "detach from the container's process",
    "keep": "do not delete the container after it exits",
    "all": "send the specified signal to all processes inside the container",
    "force": "forcibly delete the container if it is still running (uses SIGKILL)",
    ("list", "format"): "select one of: table or json (default: \"table\")",
    "quiet": "display only container IDs",
    ("spec", "bundle"): "path to the root of the bundle directory",
    ("spec", "rootless"): "generate a configuration for a rootless container",
    "cwd": "current working directory in the container",
    "env": "set environment variables (repeatable)",
    "tty": "allocate a pseudo-TTY",
    "user": "UID (format: <uid>[:<gid>])",
    "additional-gids": "additional gids (repeatable)",
    "process": "path to the process.json",
    "process-label": "set the asm process label for the process commonly used with selinux",
    "apparmor": "set the apparmor profile for the process",
    "no-new-privs": "set the no new privileges value for the process",
    "cap": "add a capability to the bounding set for the process (repeatable)",
    "ignore-paused": "allow exec in a paused container",
    "cgroup": "run the process in an (existing) sub-cgroup(s): [CONTROLLER[,CONTROLLER]:]PATH (repeatable)",
    ("ps", "format"): "select one of: table or json (default: \"table\")",
    "interval": "set the stats collection interval (default: 5s)",
    "stats": "display the container's stats then exit",
    "resources": "path to the file containing the resources to update or '-' to read from the standard input",
    "blkio-weight": "specifies per cgroup weight, range is from 10 to 1000",
    "cpu-period": "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
    "cpu-quota": "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    "cpu-share": "CPU shares (relative weight vs. other containers)",
    "cpu-rt-period": "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default",
    "cpu-rt-runtime": "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period",
    "cpuset-cpus": "CPU(s) to use",
    "cpuset-mems": "memory node(s) to use",
    "kernel-memory": "kernel memory limit (warned of and ignored: no current kernel honours it)",
    "kernel-memory-tcp": "kernel memory limit for tcp buffer (warned of and ignored)",
    "memory": "memory limit (in bytes)",
    "memory-reservation": "memory reservation or soft_limit (in bytes)",
    "memory-swap": "total memory usage (memory + swap); set '-1' to enable unlimited swap",
    "pids-limit": "maximum number of pids allowed in the container",
    "l3-cache-schema": "the string of Intel RDT/CAT L3 cache schema",
    "mem-bw-schema": "the string of Intel RDT/MBA memory bandwidth schema",
    "image-path": "path for saving criu image files (default: ./checkpoint)",
    "work-path": "path for saving work files and logs (default: the image path)",
    "parent-path": "path for previous criu image files in pre-dump, relative to the image path",
    "leave-running": "leave the process running after checkpointing",
    "tcp-established": "allow open tcp connections",
    "ext-unix-sk": "allow external unix sockets",
    "shell-job": "allow shell jobs",
    "lazy-pages": "use userfaultfd to lazily restore memory pages",
    "status-fd": "criu writes \\0 to this FD once lazy-pages is ready (with --lazy-pages only)",
    "page-server": "ADDRESS:PORT of the page server",
    "file-locks": "handle file locks, for safety",
    "pre-dump": "dump the container's memory information only, leave the container running after this",
    "manage-cgroups-mode": "cgroups mode: soft, full, strict or ignore (default: criu's, soft)",
    "empty-ns": "create a namespace, but do not restore its properties (network only; repeatable)",
    "auto-dedup": "enable auto deduplication of memory images",
    "no-subreaper": "disable the use of the subreaper used to reap reparented processes (accepted: "
                    "the restored init is ocirt's own child)",
    ("restore", "no-pivot"): "accepted and unused: CRIU restores the container's mount namespace",
    ("restore", "detach"): "detach from the container's process",
    ("restore", "image-path"): "path to criu image files for restoring (default: ./checkpoint)",
    ("restore", "work-path"): "path for saving work files and logs (default: the image path)",
    ("restore", "empty-ns"): "create a namespace, but do not restore its properties (network only)",
    "lsm-profile": "restore the LSM profile with this value (TYPE:NAME)",
    "lsm-mount-context": "mount context for the restored mounts (refused: not supported by ocirt)",
}


def flag_help(command, name):
    return HELP.get((command, name)) or HELP[name]


def flag_names(name, spec):
    """`--name value, -n value` as urfave/cli (runc's) prints it."""
    short, kind = spec[0], spec[1]
    value = "" if kind == "bool" else " value"
    return f"--{name}{value}" + (f", -{short}{value}" if short else "")


def command_help(name):
    """`ocirt COMMAND --help`: runc's layout."""
    flags, pos, summary = COMMANDS[name][2:5]
    lines = [f"NAME:\n   ocirt {name} - {summary}\n", f"USAGE:\n   ocirt {name} [command options] {pos}".rstrip()]
    if flags:
        rows = [(flag_names(f, s), flag_help(name, f)) for f, s in flags.items()]
        width = max(len(r[0]) for r in rows) + 2
        lines += ["", "OPTIONS:"] + [f"   {a.ljust(width)}{b}" for a, b in rows]
    return "\n".join(lines)


def global_help_rows():
    return [(flag_names(f, s), flag_help("", f)) for f, s in GLOBAL_FLAGS.items()]


# ---- man pages ---------------------------------------------------------------

def _roff(text):
    return text.replace("\\", "\\e").replace("-", "\\-").replace("'", "\\(aq")


def _flags_roff(command, flags):
    out = []
    for f, s in flags.items():
        out += [".TP", f"\\fB{_roff(flag_names(f, s))}\\fR", _roff(flag_help(command, f))]
    return out


def man_pages():
    """{file name: roff text}: ocirt(8), and ocirt-COMMAND(8) for each command."""
    head = f'.TH {{name}} 8 "" "ocirt {__version__}" "ocirt manual"'
    pages = {"ocirt.8": "\n".join([
        head.format(name="OCIRT"), ".SH NAME", "ocirt \\- a low\\-level OCI container runtime (runc\\-compatible)",
        ".SH SYNOPSIS", "\\fBocirt\\fR [\\fIglobal options\\fR] \\fIcommand\\fR [\\fIcommand options\\fR] "
        "[\\fIarguments\\fR...]", ".SH DESCRIPTION",
        f"Runs containers from OCI bundles (runtime\\-spec {SPEC_VERSION}), with runc's commands, flags, "
        "output and exit statuses.", ".SH GLOBAL OPTIONS", *_flags_roff("", GLOBAL_FLAGS), ".SH COMMANDS",
        *[line for n, c in COMMANDS.items() for line in (".TP", f"\\fB{n}\\fR", f"{_roff(c[4])}: ocirt\\-{n}(8)")],
    ]) + "\n"}
    for n, (_, _, flags, pos, summary) in COMMANDS.items():
        lines = [head.format(name=f"OCIRT-{n.upper()}"), ".SH NAME", f"ocirt\\-{n} \\- {_roff(summary)}",
                 ".SH SYNOPSIS", f"\\fBocirt {n}\\fR [\\fIcommand options\\fR] {_roff(pos)}".rstrip()]
        if flags:
            lines += [".SH OPTIONS", *_flags_roff(n, flags)]
        lines += [".SH SEE ALSO", "ocirt(8)"]
        pages[f"ocirt-{n}.8"] = "\n".join(lines) + "\n"
    return pages


# ---- bash completion ----------------------------------------------------------

def completion():
    """A bash completion script: commands, then each command's flags."""
    def words(flags):
        return " ".join(w for f, s in flags.items() for w in (f"--{f}", *([f"-{s[0]}"] if s[0] else [])))
    cases = "\n".join(f"        {n}) opts=\"{words(c[2])}\" ;;" for n, c in COMMANDS.items())
    valued = "|".join(f"--{f}" for f, s in GLOBAL_FLAGS.items() if s[1] != "bool")
    return f"""# bash completion for ocirt, generated from its command table (ocirt.clidoc)
_ocirt() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmd="" opts i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in {valued}) ((i++)) ;; -*) ;; *) cmd=${{COMP_WORDS[i]}}; break ;; esac
    done
    case $cmd in
        "") opts="{" ".join(COMMANDS)} {words(GLOBAL_FLAGS)}" ;;
{cases}
        *) opts="" ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _ocirt ocirt
"""


def main(argv):
    if len(argv) == 2 and argv[0] == "man":
        os.makedirs(argv[1], exist_ok=True)
        for name, text in man_pages().items():
            with open(os.path.join(argv[1], name), "w") as f:
                f.write(text)
    elif len(argv) == 2 and argv[0] == "completion":
        with open(argv[1], "w") as f:
            f.write(completion())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
