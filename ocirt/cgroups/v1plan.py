"""linux.resources -> the cgroup v1 file writes, in the order the kernel needs.
Pure: what it must know of the host comes through `host` (has(ctrl, file),
read_int(ctrl, file)), so it is tested without root."""
from ..errors import OcirtError
from .fs import Write
from .spec import Section, device, unsupported


def plan(resources, where, host, updating=False):
    r = Section(resources, where)
    unsupported(r, ["unified"], "on a cgroup v1 host (linux.resources.unified is for cgroup v2)")
    out = []
    for part in (_cpuset, _memory, _cpu, _pids, _blkio, _hugetlb, _network, _rdma):
        out += part(r, host, updating)
    return out


def _cpuset(r, host, updating):
    c = r.sub("cpu")
    return [Write("cpuset", f"cpuset.{k}", c.str(k), c.at(k)) for k in ("cpus", "mems") if c.str(k)]


def _memory(r, host, updating):
    m = r.sub("memory")
    out = []
    limit, swap = m.int("limit", -1), m.int("swap", -1)
    if limit == -1 and not swap:
        swap = -1                      # unlimited memory means unlimited memory+swap (runc)
    if updating and m.bool("checkBeforeUpdate") and limit not in (None, 0, -1):
        usage = host.read_int("memory", "memory.usage_in_bytes")
        if limit < usage:
            raise OcirtError(f"{limit} is below the current memory usage ({usage})", m.at("limit"))
    mem_w = [Write("memory", "memory.limit_in_bytes", str(limit), m.at("limit"))] if limit else []
    if swap:
        swap_w = Write("memory", "memory.memsw.limit_in_bytes", str(swap), m.at("swap"))
        # memory.limit <= memsw.limit at every step: raise memsw first when it grows
        if swap == -1 or host.read_int("memory", "memory.limit_in_bytes") < swap:
            out += [swap_w] + mem_w
        else:
            out += mem_w + [swap_w]
    else:
        out += mem_w
    if m.int("reservation", -1):
        out.append(Write("memory", "memory.soft_limit_in_bytes", str(m.int("reservation")), m.at("reservation")))
    if "swappiness" in m:
        out.append(Write("memory", "memory.swappiness", str(m.int("swappiness", 0, 100)), m.at("swappiness")))
    if m.bool("disableOOMKiller"):
        out.append(Write("memory", "memory.oom_control", "1", m.at("disableOOMKiller")))
    if m.bool("useHierarchy") is not None:
        out.append(Write("memory", "memory.use_hierarchy", str(int(m.bool("useHierarchy"))), m.at("useHierarchy")))
    return out


def _cpu(r, host, updating):
    c = r.sub("cpu")
    out = []
    if c.int("shares", 0):
        out.append(Write("cpu", "cpu.shares", str(c.int("shares")), c.at("shares"), check=True))
    # runc's order: period before quota, burst after quota; rt period before runtime
    for key, file in (("period", "cpu.cfs_period_us"), ("quota", "cpu.cfs_quota_us"),
                      ("burst", "cpu.cfs_burst_us"), ("realtimePeriod", "cpu.rt_period_us"),
                      ("realtimeRuntime", "cpu.rt_runtime_us"), ("idle", "cpu.idle")):
        v = c.int(key)
        if v is not None and (v != 0 or key in ("burst", "idle")):
            out.append(Write("cpu", file, str(v), c.at(key)))
    return out


def _pids(r, host, updating):
    return pids_writes(r, "pids")


def pids_writes(r, ctrl):
    """pids.max is the same file on v1 and v2; ctrl picks the directory."""
    p = r.sub("pids")
    if "limit" not in p:
        return []
    limit = p.int("limit")
    return [Write(ctrl, "pids.max", str(limit) if limit > 0 else "max", p.at("limit"))]


def _blkio(r, host, updating):
    b = r.sub("blockIO")
    out = []
    bfq = not host.has("blkio", "blkio.weight") and host.has("blkio", "blkio.bfq.weight")
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    if b.int("weight", 10, 1000):
        out.append(Write("blkio", weight_file, str(b.int("weight")), b.at("weight")))
    if b.int("leafWeight", 10, 1000):
        out.append(Write("blkio", "blkio.leaf_weight", str(b.int("leafWeight")), b.at("leafWeight")))
    for d in b.list("weightDevice"):
        if d.int("weight", 10, 1000):
            out.append(Write("blkio", weight_file + "_device", f"{device(d)} {d.int('weight')}", d.at("weight")))
        if d.int("leafWeight", 10, 1000):
            out.append(Write("blkio", "blkio.leaf_weight_device", f"{device(d)} {d.int('leafWeight')}", d.at("leafWeight")))
    for key, file in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                      ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
        for d in b.list(key):
            out.append(Write("blkio", "blkio.throttle." + file, f"{device(d)} {d.int('rate', 0)}", d.at("rate")))
    return out


def _hugetlb(r, host, updating):
    return hugetlb_writes(r, "hugetlb", "limit_in_bytes", lambda f: host.has("hugetlb", f))


def hugetlb_writes(r, ctrl, suffix, has):
    """hugepageLimits: hugetlb.SIZE.SUFFIX, and its reservation twin
    hugetlb.SIZE.rsvd.SUFFIX where the host has it (both drivers)."""
    out = []
    for h in r.list("hugepageLimits"):
        size = h.str("pageSize")
        if not size:
            raise OcirtError("a page size is required", h.at("pageSize"))
        out.append(Write(ctrl, f"hugetlb.{size}.{suffix}", str(h.int("limit", 0)), h.at("limit")))
        if has(f"hugetlb.{size}.rsvd.{suffix}"):
            out.append(Write(ctrl, f"hugetlb.{size}.rsvd.{suffix}", str(h.int("limit")), h.at("limit")))
    return out


def _network(r, host, updating):
    n = r.sub("network")
    out = []
    if "classID" in n:
        out.append(Write("net_cls", "net_cls.classid", str(n.int("classID", 0)), n.at("classID")))
    for p in n.list("priorities"):
        out.append(Write("net_prio", "net_prio.ifpriomap", f"{p.str('name')} {p.int('priority', 0)}", p.at("priority")))
    return out


def _rdma(r, host, updating):
    return [Write("rdma", "rdma.max", line, where) for line, where in rdma_lines(r.sub("rdma"))]


def rdma_lines(rd):
    """rdma.max lines ("mlx4_0 hca_handle=2 hca_object=2000"), same on v1 and v2."""
    out = []
    for dev in rd.data:
        e = rd.sub(dev)
        parts = [f"{f}={e.int(k, 0)}" for k, f in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")) if k in e]
        if parts:
            out.append((f"{dev} " + " ".join(parts), e.where))
    return out
