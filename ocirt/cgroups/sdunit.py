"""The systemd driver's pure half: linux.cgroupsPath "slice:prefix:name" ->
the scope unit and its cgroup, and linux.resources -> the unit properties
systemd manages (as runc 1.1's libcontainer/cgroups/systemd). Properties are
(name, D-Bus signature, value) triples, ready for a(sv)."""
from ..errors import OcirtError
from . import convert

DEFAULT_SLICE = "system.slice"   # runc's default parent for system containers
USER_SLICE = "user.slice"        # and for a rootless one's, in the user's manager
DEFAULT_PREFIX = "ocirt"         # runc names its default scopes after itself too
UINT64_MAX = (1 << 64) - 1       # systemd's "infinity"
_UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
WHERE = "linux.cgroupsPath"


def unit_of(cgroups_path, container_id, default_slice=DEFAULT_SLICE):
    """-> (slice, scope unit name). Empty: the default slice and prefix with
    the container id; otherwise exactly three ":"-separated parts, an empty
    slice meaning the default one."""
    if not cgroups_path:
        return default_slice, f"{DEFAULT_PREFIX}-{container_id}.scope"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise OcirtError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd '
                         f'cgroups, got {cgroups_path!r} instead', WHERE)
    slice_, prefix, name = parts
    if name.endswith(".slice"):
        raise OcirtError(f"{name!r}: a container in a slice of its own is not supported "
                         "(give a scope name)", WHERE)
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if not name or not set(unit) <= _UNIT_CHARS or len(unit) > 255:
        raise OcirtError(f"{unit!r} is not a valid systemd unit name", WHERE)
    slice_ = slice_ or default_slice
    expand_slice(slice_)
    return slice_, unit


def expand_slice(slice_):
    """"a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice" ("-.slice": "/"),
    the cgroup of a nested slice, as systemd (and runc's ExpandSlice) lay it out."""
    if not slice_.endswith(".slice") or slice_ == ".slice" or "/" in slice_:
        raise OcirtError(f"invalid slice name: {slice_!r}", WHERE)
    name = slice_[:-len(".slice")]
    if name == "-":
        return "/"
    path, prefix = "", ""
    for part in name.split("-"):
        if not part:
            raise OcirtError(f"invalid slice name: {slice_!r}", WHERE)
        path += f"/{prefix}{part}.slice"
        prefix += part + "-"
    return path


def unit_properties(slice_, container_id, version=2):
    """What every container scope gets: its slice, Delegate=yes (the runtime
    writes the files systemd does not manage), accounting on (so the
    controllers are enabled; on cgroup v1 the block one is BlockIO), and no
    dependencies on shutdown ordering."""
    block = "IO" if version == 2 else "BlockIO"
    return [("Description", "s", f"ocirt container {container_id}"), ("Slice", "s", slice_),
            ("Delegate", "b", True), ("DefaultDependencies", "b", False),
            *((f"{a}Accounting", "b", True) for a in ("Memory", "CPU", block, "Tasks"))]


def resource_properties(resources, where="linux.resources", version=2):
    """The values systemd itself sets on the cgroup: on a daemon-reload or a
    SetUnitProperties it rewrites them, so they must be its too."""
    if version == 1:
        return v1_resource_properties(resources, where)
    r = resources or {}
    mem, cpu = r.get("memory") or {}, r.get("cpu") or {}
    out = []
    limit, swap = mem.get("limit"), mem.get("swap")
    if limit:
        out.append(("MemoryMax", "t", _uint(limit)))
    if mem.get("reservation"):
        out.append(("MemoryLow", "t", _uint(mem["reservation"])))
    try:
        swap_v2 = convert.swap_to_v2(swap or 0, limit or 0)
    except ValueError as e:
        raise OcirtError(str(e), _at(where, "memory.swap")) from None
    if swap_v2:
        out.append(("MemorySwapMax", "t", _uint(swap_v2)))
    if cpu.get("shares"):
        out.append(("CPUWeight", "t", convert.cpu_shares_to_weight(cpu["shares"])))
    out += cpu_quota(cpu.get("quota") or 0, cpu.get("period") or 0)
    out += _cpuset(cpu, where) + _tasks(r)
    weight = (r.get("blockIO") or {}).get("weight")
    if weight:
        out.append(("IOWeight", "t", convert.blkio_weight_to_io_weight(weight)))
    return out


def v1_resource_properties(resources, where="linux.resources"):
    """On cgroup v1 systemd sets its v1 files: memory.limit_in_bytes
    (MemoryLimit), cpu.shares (CPUShares, the v1 value as is), the CFS
    quota, blkio.weight (BlockIOWeight), pids.max; the set runc's
    genV1ResourcesProperties gives. Swap and reservation stay ours."""
    r = resources or {}
    mem, cpu = r.get("memory") or {}, r.get("cpu") or {}
    out = [("MemoryLimit", "t", _uint(mem["limit"]))] if mem.get("limit") else []
    if cpu.get("shares"):
        out.append(("CPUShares", "t", cpu["shares"]))
    out += cpu_quota(cpu.get("quota") or 0, cpu.get("period") or 0)
    weight = (r.get("blockIO") or {}).get("weight")
    if weight:
        out.append(("BlockIOWeight", "t", weight))
    return out + _tasks(r) + _cpuset(cpu, where)


def _tasks(r):
    pids = (r.get("pids") or {}).get("limit")
    return [("TasksMax", "t", _uint(pids))] if pids and (pids > 0 or pids == -1) else []


def _cpuset(cpu, where):
    """AllowedCPUs/AllowedMemoryNodes (systemd applies them on cgroup v2 only;
    runc sends them on v1 too, and the cpuset files are written after)."""
    return [(prop, "ay", range_to_bits(cpu[key], _at(where, f"cpu.{key}")))
            for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")) if cpu.get(key)]


def _at(where, field):
    return f"{where}.{field}" if where else field   # update's fields have no section


def _uint(v):
    return UINT64_MAX if v == -1 else v


def cpu_quota(quota, period):
    """CPUQuotaPeriodUSec and CPUQuotaPerSecUSec. systemd keeps the quota as
    a whole percentage of a CPU: round up to 10 ms per second (as runc), so
    that the cpu.max written after is not above what systemd allows."""
    out = [("CPUQuotaPeriodUSec", "t", period)] if period else []
    if quota or period:
        per_sec = UINT64_MAX
        if quota > 0:
            per_sec = quota * 1000000 // (period or 100000)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        out.append(("CPUQuotaPerSecUSec", "t", per_sec))
    return out


def range_to_bits(text, where):
    """A cpuset list ("0-2,7") -> the bitmask bytes systemd takes for
    AllowedCPUs/AllowedMemoryNodes: byte 0 holds bits 0-7."""
    bits = 0
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if lo < 0 or lo > hi:
                raise ValueError
            bits |= ((1 << (hi - lo + 1)) - 1) << lo
    except ValueError:
        raise OcirtError(f"{text!r} is not a CPU or memory node list", where) from None
    if not bits:
        raise OcirtError(f"{text!r} names no CPU or memory node", where)
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")
