"""The command line of pause, resume, ps, events, update, features,
checkpoint and restore (off the hot path): runc's flags turned into
ocirt.api arguments, and the API's results printed as runc prints them."""
import sys

from ocirt import jsonio
from ocirt.cli import need_id, no_args
from ocirt.errors import OcirtError

# ---- pause / resume ----------------------------------------------------------

def cmd_pause(rt, flags, args):
    rt.pause(need_id(args, "pause"))
    return 0


def cmd_resume(rt, flags, args):
    rt.resume(need_id(args, "resume"))
    return 0


# ---- update ----------------------------------------------------------------

def cmd_update(rt, flags, args):
    cid = need_id(args, "update")
    path = flags["resources"]
    if path:
        source = "standard input" if path == "-" else path
        resources = _read_json(path, source)
    else:
        from ocirt.cgroups import update
        source, resources = "update", update.from_flags(flags, rt.log.warn)
    rt.update(cid, resources, l3_cache_schema=flags["l3-cache-schema"], mem_bw_schema=flags["mem-bw-schema"],
              source=source)
    return 0


def _read_json(path, source):
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
        raise OcirtError(f"{source}: {e}") from None


# ---- ps --------------------------------------------------------------------

def cmd_ps(rt, flags, args):
    """json: the host pids (containerd's Top); table: `ps` (default -ef)
    filtered to the container's processes."""
    pids = rt.ps(need_id(args, "ps", extra=len(args)))
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

def cmd_events(rt, flags, args):
    cid = need_id(args, "events")
    interval = parse_duration(flags["interval"], "interval")
    if flags["stats"] and interval > 0:
        from ocirt.api import Event
        _emit(Event("stats", cid, rt.stats(cid)))
        return 0
    for event in rt.events(cid, interval):
        _emit(event)
    return 0


def _emit(event):
    sys.stdout.write(jsonio.dumps(event.to_dict()) + "\n")
    sys.stdout.flush()


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


# ---- features --------------------------------------------------------------

def cmd_features(rt, flags, args):
    from ocirt.api import features
    no_args(args, "features")
    print(jsonio.dumps_indent(features()))
    return 0


# ---- checkpoint / restore ------------------------------------------------------

def cmd_checkpoint(rt, flags, args):
    rt.checkpoint(need_id(args, "checkpoint"), **{k.replace("-", "_"): v for k, v in flags.items()})
    return 0


def cmd_restore(rt, flags, args):
    code = rt.restore(need_id(args, "restore"), **{k.replace("-", "_"): v for k, v in flags.items()})
    return 0 if code is None else code.code
