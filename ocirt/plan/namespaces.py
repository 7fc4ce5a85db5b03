"""linux.namespaces, uidMappings/gidMappings and timeOffsets."""
from ocirt.errors import OcirtError, jpath

CLONE_FLAGS = {
    "mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000,
    "pid": 0x20000000, "network": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080,
}
# /proc/PID/ns/ file names, for exec.
PROC_NS = {
    "user": "user", "mount": "mnt", "pid": "pid", "network": "net", "ipc": "ipc",
    "uts": "uts", "cgroup": "cgroup", "time": "time",
}
# Joining order: the user namespace first (it owns the others), mount last
# but one so paths of the others are still opened in the host's view.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def namespaces(linux):
    """{type: path or None} from linux.namespaces, checked."""
    seen = {}
    for i, ns in enumerate(linux.get("namespaces") or []):
        where = jpath(jpath("linux.namespaces", i), "type")
        t = ns.get("type")
        if t not in CLONE_FLAGS:
            raise OcirtError(f'unknown namespace "{t}"', where)
        if t in seen:
            raise OcirtError(f'duplicate namespace "{t}"', where)
        seen[t] = ns.get("path") or None
    return seen


def helper_steps(linux, ns):
    """Steps run by the helper before and right after clone."""
    steps = []
    for t in JOIN_ORDER:
        if ns.get(t):
            steps.append(("setns", "linux.namespaces", ns[t], t))
    if "time" in ns and not ns["time"]:
        steps.append(("timens", "linux.timeOffsets", _time_offsets(linux)))
    elif linux.get("timeOffsets"):
        raise OcirtError("requires a new time namespace", "linux.timeOffsets")
    flags = 0
    for t, path in ns.items():
        if path is None and t != "time":
            flags |= CLONE_FLAGS[t]
    return steps, flags


# The setuid helpers (Debian's uidmap) that write what an unprivileged caller may not.
ID_TOOLS = {"uidMappings": "newuidmap", "gidMappings": "newgidmap"}


def id_map_steps(linux, ns, host):
    """uid_map/gid_map writes, done by the helper for a new user namespace:
    through newuidmap/newgidmap where the caller may not write them itself."""
    has_maps = linux.get("uidMappings") or linux.get("gidMappings")
    if "user" not in ns or ns["user"]:
        if has_maps and "user" not in ns:
            raise OcirtError("id mappings need a user namespace", "linux.uidMappings")
        return []
    steps = []
    for key, op in (("uidMappings", "uidmap"), ("gidMappings", "gidmap")):
        text = format_map(linux.get(key) or [])
        if not text:
            raise OcirtError("a new user namespace needs mappings", f"linux.{key}")
        tool = ""
        if needs_id_tool(linux, key, host.ids):
            tool = host.id_tools.get(ID_TOOLS[key])
            if not tool:
                raise OcirtError(f"maps more than the caller's own id: needs {ID_TOOLS[key]} "
                                 "(Debian package uidmap), not found in PATH", f"linux.{key}")
        steps.append((op, f"linux.{key}", text, tool))
    return steps


def needs_id_tool(linux, key, ids):
    """runc's rule: a caller that is not root writes a map of its own id
    alone; any other map (subordinate ranges) is the setuid helper's.
    ids: the caller's (euid, egid)."""
    own = ids[0] if key == "uidMappings" else ids[1]
    entries = linux.get(key) or []
    if ids[0] == 0 or not entries:
        return False
    return not (len(entries) == 1 and entries[0].get("hostID") == own and entries[0].get("size") == 1)


def format_map(entries):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in entries)


def _time_offsets(linux):
    lines = []
    for clock, key in (("monotonic", "monotonic"), ("boottime", "boottime")):
        off = (linux.get("timeOffsets") or {}).get(key)
        if off:
            lines.append(f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n")
    return "".join(lines)

