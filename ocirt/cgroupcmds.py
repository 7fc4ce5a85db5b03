"""The commands that act on a running container's cgroup: update, pause,
resume, ps, events. Flags, output and errors as runc 1.1's."""
import os
import sys
import time

from ocirt import jsonio
from ocirt.cli import need_id
from ocirt.errors import OcirtError
from ocirt.state import Container

LIVENESS = 1.0          # seconds between looks at the cgroup while streaming events


def _cgroup(c):
    from ocirt import cgroups
    return cgroups.from_state(c.state["cgroup"])


# ---- update ----------------------------------------------------------------

def cmd_update(g, flags, args):
    from ocirt.cgroups import update
    c = Container(g.root, need_id(args, "update")).load()
    if c.status() == "stopped":
        raise OcirtError("container not running")
    source = _source(flags["resources"]) if flags["resources"] else "update"
    if flags["resources"]:
        new = update.from_json(_read_json(flags["resources"]), source)
    else:
        new = update.from_flags(flags, g.log.warn)
    linux = c.state["config"].setdefault("linux", {})
    if flags.get("l3-cache-schema") or flags.get("mem-bw-schema"):
        from ocirt import intelrdt
        linux["intelRdt"] = intelrdt.update(c.state.get("intelRdt"), linux.get("intelRdt"),
                                            flags.get("l3-cache-schema"), flags.get("mem-bw-schema"))
    merged, apply = update.merge(linux.get("resources"), new)
    g.log.debug(f"update {c.id}: applying {jsonio.dumps(apply)}")
    try:
        _cgroup(c).update(apply, where="")
    except OcirtError as e:
        e.source = source      # the field is in the update, not in config.json
        raise
    linux["resources"] = merged
    c.save()
    return 0


def _read_json(path):
    try:
        if path == "-":
            data = jsonio.read_bounded(sys.stdin.buffer, "standard input")
        else:
            data = jsonio.read_file(path)
    except OSError as e:
        raise OcirtError(f"open {path}: {e.strerror.lower()}") from None
    try:
        return jsonio.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise OcirtError(f"{_source(path)}: {e}") from None


def _source(path):
    return "standard input" if path == "-" else path


# ---- pause / resume --------------------------------------------------------

def cmd_pause(g, flags, args):
    c = Container(g.root, need_id(args, "pause")).load()
    if c.status() not in ("running", "created"):
        raise OcirtError("container not running")
    _cgroup(c).freeze()
    return 0


def cmd_resume(g, flags, args):
    c = Container(g.root, need_id(args, "resume")).load()
    if c.status() != "paused":
        raise OcirtError("container not paused")
    _cgroup(c).thaw()
    return 0


# ---- ps --------------------------------------------------------------------

def cmd_ps(g, flags, args):
    """json: the host pids (containerd's Top); table: `ps` (default -ef)
    filtered to the container's processes."""
    cid = need_id(args, "ps", extra=len(args))
    c = Container(g.root, cid).load(lock=False)
    pids = _cgroup(c).pids()
    fmt = flags["format"]
    if fmt == "json":
        # Go's encoder writes an empty pid list (a nil slice) as null
        sys.stdout.write((jsonio.dumps(pids) if pids else "null") + "\n")
        return 0
    if fmt != "table":
        raise OcirtError("invalid format option")
    _ps_table(pids, args[1:] or ["-ef"])
    return 0


def _ps_table(pids, ps_args):
    import subprocess
    try:
        r = subprocess.run(["ps"] + ps_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise OcirtError(f"ps: {e.strerror.lower()}") from None
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise OcirtError(f"exit status {r.returncode}: {out.strip()}")
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirtError("couldn't find PID field in ps output")
    col, wanted = header.index("PID"), set(pids)
    keep = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            keep.append(line)
    sys.stdout.write("\n".join(keep) + "\n")


# ---- events ----------------------------------------------------------------

def cmd_events(g, flags, args):
    c = Container(g.root, need_id(args, "events")).load(lock=False)
    interval = parse_duration(flags["interval"], "interval")
    if interval <= 0:
        raise OcirtError("duration interval must be greater than 0")
    if c.status() == "stopped":
        raise OcirtError(f"container with id {c.id} is not running")
    cg = _cgroup(c)
    if flags["stats"]:
        _emit("stats", c.id, cg.stats())
        return 0
    _stream(c.id, cg, interval, c.state["pid"])
    return 0


def _emit(kind, cid, data=None):
    e = {"type": kind, "id": cid}
    if data is not None:
        e["data"] = data
    sys.stdout.write(jsonio.dumps(e) + "\n")
    sys.stdout.flush()


def _stream(cid, cg, interval, init_pid):
    """Stats every interval and one "oom" event per OOM kill, until the
    cgroup has no process left (or is gone: the container was deleted).
    Woken by the memory controller's OOM notification and by the init's
    exit; the cgroup is looked at anyway every LIVENESS seconds."""
    import select
    p = select.poll()
    notifier = cg.oom_notifier()
    if notifier is not None:
        p.register(notifier[0], notifier[1])
    try:
        init = os.pidfd_open(init_pid)
        p.register(init, select.POLLIN)
    except ProcessLookupError:
        init = None
    ooms = cg.oom_count()
    due = time.monotonic() + interval
    while True:
        alive = bool(cg.pids())
        n = cg.oom_count()
        for _ in range(n - ooms):
            _emit("oom", cid)
        ooms = max(ooms, n)
        if not alive:
            return
        now = time.monotonic()
        if now >= due:
            _emit("stats", cid, cg.stats())
            due = max(due + interval, now)
        for fd, _ in p.poll(1000 * max(0.0, min(LIVENESS, due - time.monotonic()))):
            if fd == init:
                p.unregister(init)  # it stays readable: once is enough
            elif notifier is not None and fd == notifier[0]:
                notifier[2]()


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                   "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text, flag):
    """Seconds from a Go duration ("5s", "1m30s", "250ms", "1.5h", "0")."""
    bad = OcirtError(f'invalid value "{text}" for flag -{flag}: parse error')
    s = text[1:] if text[:1] in "+-" else text
    sign = -1 if text[:1] == "-" else 1
    if s == "0":
        return 0.0
    if not s:
        raise bad
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        num, unit = s[i:j], s[j:k]
        if num in ("", ".") or num.count(".") > 1 or unit not in _DURATION_UNITS:
            raise bad
        total += float(num) * _DURATION_UNITS[unit]
        i = k
    return sign * total
