"""linux.intelRdt: the container's group in the resctrl filesystem
(config-linux.md, IntelRdt). Loaded only for a config that has intelRdt.

The group is <mount>/<closID>, or <mount>/<container id> without a closID;
enableMonitoring adds the monitoring group <group>/mon_groups/<container id>.
The helper joins them before it clones (it writes 0, "this task", to their
tasks files, the same step as a cgroup v1 join), so the init and every
exec'd process are born in them. Only directories made here are removed
again: a closID group that existed belongs to whoever made it."""
import os

from ocirt.cgroups.paths import unescape
from ocirt.errors import OcirtError, jpath

WHERE = "linux.intelRdt"
MOUNTINFO = "/proc/self/mountinfo"
# Names the kernel keeps at the top of the mount: not groups to make or join.
_RESERVED = {".", "..", "info", "mon_groups", "mon_data"}


def mount_point():
    """Where resctrl is mounted in our mount namespace (first mount wins)."""
    with open(MOUNTINFO) as f:
        for line in f:
            fields, _, fs = line.partition(" - ")
            if fs.split(" ", 1)[0] == "resctrl":
                return unescape(fields.split(" ")[4])
    from ocirt.plan.host import NO_RESCTRL
    raise OcirtError(NO_RESCTRL, WHERE)


def set_up(rdt, cid):
    """Make, check or join the group as the spec's rules say. Returns what
    state.json keeps: {"tasks": files the helper joins, "created": the
    directories to remove at delete, outermost first}."""
    mnt, group = _group(rdt, cid)
    clos = rdt.get("closID")
    lines = schema_lines(rdt)
    created = []
    try:
        if clos and os.path.isdir(group):
            if lines:
                check_matches(group, lines)
        elif clos and not lines:
            raise OcirtError(f"there is no resctrl group {group}: a closID without schemata joins "
                             "a group made beforehand", jpath(WHERE, "closID"))
        else:
            _mkdir(mnt, group, created, jpath(WHERE, "closID") if clos else WHERE)
            for where, line in lines:
                _write_schemata(mnt, group, line, where)
        tasks = [os.path.join(group, "tasks")]
        if rdt.get("enableMonitoring"):
            mon = os.path.join(group, "mon_groups", cid)
            _mkdir(mnt, mon, created, jpath(WHERE, "enableMonitoring"))
            tasks.append(os.path.join(mon, "tasks"))
    except BaseException:
        remove({"created": created})
        raise
    return {"tasks": tasks, "created": created}


def _group(rdt, cid):
    """(the resctrl mount, the container's group in it)."""
    mnt = mount_point()
    clos = rdt.get("closID")
    if clos and (clos in _RESERVED or "/" in clos):
        raise OcirtError(f'"{clos}" cannot name a resctrl group (no "/", not "." or a name the kernel keeps)',
                         jpath(WHERE, "closID"))
    return mnt, os.path.join(mnt, clos or cid)


def to_make(rdt, cid):
    """What remove() is to take away should set_up be cut short: the groups
    it would make, outermost first (create records them before it starts)."""
    group = _group(rdt, cid)[1]
    dirs = [group, os.path.join(group, "mon_groups", cid)] if rdt.get("enableMonitoring") else [group]
    return {"tasks": [], "created": [d for d in dirs if not os.path.isdir(d)]}


def remove(state):
    """rmdir the groups set_up made, innermost first (the kernel hands any
    task still in one back to its parent group)."""
    for d in reversed(state["created"]):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OcirtError(f"cannot remove resctrl group {d}: {e.strerror.lower()}") from None


def update(state, rdt, l3, mb):
    """`update --l3-cache-schema/--mem-bw-schema`: write them to the group this
    container made (not to a closID group others may share). -> the new
    linux.intelRdt."""
    group = os.path.dirname(state["tasks"][0]) if state else None
    if group is None or group not in state["created"]:
        why = "has no Intel RDT group" if group is None else f"joined the resctrl group {group}, not made it"
        raise OcirtError(f"the container {why}: its schemata cannot be updated")
    rdt = dict(rdt, **{k: v for k, v in (("l3CacheSchema", l3), ("memBwSchema", mb)) if v})
    flag = {"l3CacheSchema": "--l3-cache-schema", "memBwSchema": "--mem-bw-schema"}
    for where, line in schema_lines({k: v for k, v in rdt.items() if k in flag}):
        try:
            _write_schemata(os.path.dirname(group), group, line, where)
        except OcirtError as e:
            raise OcirtError(f"{flag[where.rsplit('.', 1)[1]]}: {e.msg}") from None
    return rdt


def schema_lines(rdt):
    """[(field, line)] in the order they are written: l3CacheSchema's lines
    (less any MB: line when memBwSchema gives one), memBwSchema, then the
    schemata lines, last so that theirs win."""
    mb = rdt.get("memBwSchema")
    out = [(jpath(WHERE, "l3CacheSchema"), line) for line in _lines(rdt.get("l3CacheSchema"))
           if not (mb and line.startswith("MB:"))]
    if mb:
        out.append((jpath(WHERE, "memBwSchema"), mb.strip()))
    out += [(jpath(jpath(WHERE, "schemata"), i), line.strip())
            for i, line in enumerate(rdt.get("schemata") or []) if line.strip()]
    return out


def check_matches(group, lines):
    """An existing closID group must already hold what the config asks for:
    each resource and domain a line names, with the value the group has
    (the kernel pads values when it prints them: compare numbers)."""
    try:
        with open(os.path.join(group, "schemata")) as f:
            have_lines = _lines(f.read())
    except OSError as e:
        raise OcirtError(f"reading the schemata of {group}: {e.strerror.lower()}", jpath(WHERE, "closID")) from None
    have = {}
    for line in have_lines:
        have.update((key, (value, line)) for key, value in parse_line(line, jpath(WHERE, "closID")).items())
    want = {}
    for where, line in lines:
        want.update((key, (value, where, line)) for key, value in parse_line(line, where).items())
    for key, (value, where, line) in want.items():
        if key not in have or have[key][0] != value:
            held = f'"{have[key][1]}"' if key in have else f"no {key[0]} domain {key[1]}"
            raise OcirtError(f'the existing resctrl group {group} has {held}, not "{line}"', where)


def parse_line(line, where):
    """"L3:0=7f0;1=1f" -> {("L3", 0): 0x7f0, ("L3", 1): 0x1f}. Values are read
    as hex: right for the cache bitmasks, and still exact equality for the
    decimal bandwidths of MB."""
    name, sep, doms = line.partition(":")
    toks = [tok.partition("=") for tok in doms.split(";") if tok.strip()]
    if not (sep and name.strip() and toks and all(eq for _, eq, _ in toks)):
        raise OcirtError(f'"{line}" is not a schemata line (RESOURCE:ID=VALUE;ID=VALUE...)', where)
    return {(name.strip(), _number(dom, 10)): _number(value, 16) for dom, _, value in toks}


def _number(text, base):
    try:
        return int(text, base)
    except ValueError:
        return text.strip()


def _lines(text):
    return [line.strip() for line in (text or "").split("\n") if line.strip()]


def _mkdir(mnt, path, created, where):
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        raise OcirtError(f"resctrl group {path} exists already", where) from None
    except OSError as e:
        raise OcirtError(f"making resctrl group {path}: {e.strerror.lower()}{_why(mnt)}", where) from None
    created.append(path)


def _write_schemata(mnt, group, line, where):
    """One line per write: a single write may not name a domain twice, and
    the kernel's complaint then belongs to one field."""
    try:
        fd = os.open(os.path.join(group, "schemata"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError as e:
        raise OcirtError(f'writing "{line}" to the schemata of {group}: {e.strerror.lower()}{_why(mnt)}',
                         where) from None


def _why(mnt):
    """The kernel's own reason for the last failed resctrl operation."""
    try:
        with open(os.path.join(mnt, "info", "last_cmd_status")) as f:
            status = " ".join(f.read().split())
    except OSError:
        return ""
    return f" ({status})" if status and status != "ok" else ""
