"""The command line of exec (on its hot path, apart from clicmds.py):
runc's flags turned into a runtime-spec process for ocirt.api's exec."""
from ocirt import jsonio
from ocirt.cli import UsageError
from ocirt.errors import OcirtError


# exec's flags and the process fields they set
FLAG_FIELDS = (("cwd", "process.cwd"), ("user", "process.user"), ("additional-gids", "process.user"),
               ("env", "process.env"), ("cap", "process.capabilities"),
               ("apparmor", "process.apparmorProfile"), ("process-label", "process.selinuxLabel"))


def cmd_exec(rt, flags, args):
    if not args:
        raise UsageError('"exec" requires a container id')
    proc = _process_file(flags["process"]) if flags["process"] else _process(rt, args[0], flags, args[1:])
    status = rt.exec(args[0], proc, detach=flags["detach"], console_socket=flags["console-socket"],
                     pid_file=flags["pid-file"], preserve_fds=flags["preserve-fds"], cgroup=flags["cgroup"],
                     ignore_paused=flags["ignore-paused"], validate=bool(flags["process"]),
                     blame=lambda e: _blame(e, flags))
    return 0 if status is None else status.code


def _process_file(path):
    """--process FILE, as is."""
    try:
        data = jsonio.read_file(path)
        proc = jsonio.loads(data)
    except OSError as e:
        raise OcirtError(f"--process {path}: {e.strerror.lower()}") from None
    except ValueError as e:
        raise OcirtError(f"--process {path}: invalid JSON: {e}") from None
    from ocirt.validate import check_strings
    check_strings(proc, data, "process.json")
    return proc


def _process(rt, cid, flags, argv):
    """The container's process with the command line's changes (what runc does)."""
    base = rt.config(cid)["process"]
    if not argv:
        raise OcirtError("exec: no command given")
    proc = dict(base)
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


def _blame(e, flags):
    """Name where the faulty value came from: process.json, the flag that
    set the field, the command (args), or else config.json."""
    if flags["process"]:
        e.source = "process.json"
        return e
    if e.source == "process":  # the process is the container's, changed by the flags
        e.source = "config.json"
    w = e.where or ""
    if w.startswith("process.args"):
        e.where = None  # the message names the program
        return e
    for flag, field in FLAG_FIELDS:
        if flags[flag] and (w == field or w.startswith((field + ".", field + "["))):
            e.source, e.where = f"--{flag}", ""
            break
    return e
