"""linux.resources -> the cgroup v2 file writes (all in one directory, ctrl "").
v1-era values are converted as runc 1.3 does (see convert.py). Pure: the host
is asked through `host` (has(file), read_int(file))."""
from ..errors import OcirtError
from . import convert
from .fs import Write
from .spec import Section, device, unsupported
from .v1plan import hugetlb_writes, pids_writes, rdma_lines

V2 = "on cgroup v2"


def plan(resources, where, host, updating=False):
    r = Section(resources, where)
    unsupported(r.sub("network"), ["classID", "priorities"], V2 + " (there is no net_cls/net_prio controller)")
    out = []
    for part in (_cpuset, _memory, _cpu, _pids, _io, _hugetlb, _rdma, _unified):
        out += part(r, host, updating)
    return out


def _cpuset(r, host, updating):
    c = r.sub("cpu")
    return [Write("", f"cpuset.{k}", c.str(k), c.at(k)) for k in ("cpus", "mems") if c.str(k)]


def _max(v):
    return "max" if v == -1 else str(v)


def _memory(r, host, updating):
    m = r.sub("memory")
    unsupported(m, ["swappiness"], V2 + " (there is no per-cgroup swappiness)")
    if m.bool("disableOOMKiller"):
        raise OcirtError("not supported " + V2 + " (the OOM killer cannot be disabled per cgroup)", m.at("disableOOMKiller"))
    if m.bool("useHierarchy") is False:
        raise OcirtError("not supported " + V2 + " (memory accounting is always hierarchical)", m.at("useHierarchy"))
    limit, swap = m.int("limit", -1), m.int("swap", -1)
    try:
        swap_v2 = convert.swap_to_v2(swap, limit)
    except ValueError as e:
        raise OcirtError(str(e), m.at("swap")) from None
    if updating and m.bool("checkBeforeUpdate") and limit not in (None, 0, -1):
        usage = host.read_int("memory.current")
        if limit < usage:
            raise OcirtError(f"{limit} is below the current memory usage ({usage})", m.at("limit"))
    out = []
    # runc writes swap before memory.max; the two are independent on v2
    if swap_v2 is not None:
        if swap_v2 and swap_v2 != -1 and not host.has("memory.swap.max"):
            raise OcirtError("not supported by this host: swap accounting is off (no memory.swap.max)", m.at("swap"))
        if host.has("memory.swap.max"):
            out.append(Write("", "memory.swap.max", _max(swap_v2), m.at("swap")))
    if limit:
        out.append(Write("", "memory.max", _max(limit), m.at("limit")))
    if m.int("reservation", -1):
        out.append(Write("", "memory.low", _max(m.int("reservation")), m.at("reservation")))
    return out


def _cpu(r, host, updating):
    c = r.sub("cpu")
    unsupported(c, ["realtimeRuntime", "realtimePeriod"], V2 + " (no realtime group scheduling)")
    out = []
    if c.int("shares", 0):
        out.append(Write("", "cpu.weight", str(convert.cpu_shares_to_weight(c.int("shares"))), c.at("shares")))
    quota, period = c.int("quota"), c.int("period", 0)
    if quota or period:
        value = str(quota) if quota and quota > 0 else "max"
        if period:
            value += f" {period}"
        out.append(Write("", "cpu.max", value, c.at("quota" if quota else "period")))
    if c.int("burst", 0) is not None:
        out.append(Write("", "cpu.max.burst", str(c.int("burst")), c.at("burst")))
    if c.int("idle") is not None:
        out.append(Write("", "cpu.idle", str(c.int("idle")), c.at("idle")))
    return out


def _pids(r, host, updating):
    return pids_writes(r, "")


def _io(r, host, updating):
    b = r.sub("blockIO")
    unsupported(b, ["leafWeight"], V2 + " (there is no leaf weight)")
    bfq = host.has("io.bfq.weight")
    # io.bfq.weight takes the v1 range as is; io.weight needs the conversion
    conv = (lambda w: w) if bfq else convert.blkio_weight_to_io_weight
    file = "io.bfq.weight" if bfq else "io.weight"
    out = []
    if b.int("weight", 10, 1000):
        out.append(Write("", file, str(conv(b.int("weight"))), b.at("weight")))
    for d in b.list("weightDevice"):
        unsupported(d, ["leafWeight"], V2 + " (there is no leaf weight)")
        if d.int("weight", 10, 1000):
            out.append(Write("", file, f"{device(d)} {conv(d.int('weight'))}", d.at("weight")))
    for key, field in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for d in b.list(key):
            rate = d.int("rate", 0) or "max"      # 0 removes the limit, as in v1
            out.append(Write("", "io.max", f"{device(d)} {field}={rate}", d.at("rate")))
    return out


def _hugetlb(r, host, updating):
    return hugetlb_writes(r, "", "max", host.has)


def _rdma(r, host, updating):
    return [Write("", "rdma.max", line, where) for line, where in rdma_lines(r.sub("rdma"))]


_MANAGED = {"cgroup.procs", "cgroup.threads", "cgroup.freeze", "cgroup.kill", "cgroup.subtree_control"}


def _unified(r, host, updating):
    u = r.sub("unified")
    out = []
    for key in u.data:
        value = u.str(key)
        if "/" in key or key.startswith(".") or "." not in key:
            raise OcirtError(f"{key!r} is not a cgroup v2 interface file name", u.at(key))
        if key in _MANAGED:
            raise OcirtError(f"{key} is managed by the runtime", u.at(key))
        out.append(Write("", key, value, u.at(key)))
    return out
