"""Cgroup statistics in the JSON shape of `runc events --stats` (runc's
types.Stats as runc 1.1 prints it: zero fields with omitempty left out)."""
import os

from .fs import read, read_int, read_keyed

HUGEPAGES = "/sys/kernel/mm/hugepages"
U64_MAX = (1 << 64) - 1


def page_sizes():
    """Huge page sizes as cgroup file names spell them: "2MB", "1GB"."""
    try:
        names = os.listdir(HUGEPAGES)
    except OSError:
        return []
    return sorted((size_name(int(n[len("hugepages-"):-2])) for n in names), key=_bytes)


def size_name(kb):
    units = ["KB", "MB", "GB", "TB"]
    i = 0
    while kb >= 1024 and kb % 1024 == 0 and i < len(units) - 1:
        kb //= 1024
        i += 1
    return f"{kb}{units[i]}"


def _bytes(name):
    return int(name[:-2]) << (10 * ("KMGT".index(name[-2]) + 1))


def omit_zero(d):
    return {k: v for k, v in d.items() if v not in (0, None, [], {})}


def parse_list(s):
    """"0-2,4" -> [0, 1, 2, 4]."""
    out = []
    for part in filter(None, s.split(",")):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def empty():
    return {"cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
            "cpuset": _cpuset_zero(), "memory": {"usage": {"limit": 0, "failcnt": 0},
            "swap": {"limit": 0, "failcnt": 0}, "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0}},
            "pids": {}, "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None}


def _cpuset_zero():
    return {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
            "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
            "sched_load_balance": 0, "sched_relax_domain_level": 0}


def mem_entry(limit, usage, peak, failcnt):
    return {"limit": limit, **omit_zero({"usage": usage, "max": peak}), "failcnt": failcnt}


# --- v1 ----------------------------------------------------------------------
def v1(dirs):
    """dirs: {controller: directory} of the container's cgroup."""
    s = empty()
    if "cpuacct" in dirs:
        s["cpu"]["usage"] = _v1_cpuacct(dirs["cpuacct"])
    if "cpu" in dirs:
        t = read_keyed(dirs["cpu"] + "/cpu.stat")
        s["cpu"]["throttling"] = omit_zero({"periods": t.get("nr_periods"), "throttledPeriods":
                                            t.get("nr_throttled"), "throttledTime": t.get("throttled_time")})
    if "cpuset" in dirs:
        s["cpuset"] = _v1_cpuset(dirs["cpuset"])
    if "memory" in dirs:
        s["memory"] = _v1_memory(dirs["memory"])
    if "pids" in dirs:
        limit = read_int(dirs["pids"] + "/pids.max")
        s["pids"] = omit_zero({"current": read_int(dirs["pids"] + "/pids.current"),
                               "limit": 0 if limit == U64_MAX else limit})
    if "blkio" in dirs:
        s["blkio"] = _v1_blkio(dirs["blkio"])
    if "hugetlb" in dirs:
        d = dirs["hugetlb"]
        s["hugetlb"] = {p: {**omit_zero({"usage": read_int(f"{d}/hugetlb.{p}.usage_in_bytes"),
                                          "max": read_int(f"{d}/hugetlb.{p}.max_usage_in_bytes")}),
                            "failcnt": read_int(f"{d}/hugetlb.{p}.failcnt")} for p in page_sizes()}
    return s


def _ints(path):
    try:
        return [int(x) for x in read(path).split()]
    except OSError:
        return []


def _v1_cpuacct(d):
    ticks = os.sysconf("SC_CLK_TCK")
    st = read_keyed(d + "/cpuacct.stat")
    usage = omit_zero({"total": read_int(d + "/cpuacct.usage"), "percpu": _ints(d + "/cpuacct.usage_percpu"),
                       "percpu_kernel": _ints(d + "/cpuacct.usage_percpu_sys"),
                       "percpu_user": _ints(d + "/cpuacct.usage_percpu_user")})
    usage["kernel"] = st.get("system", 0) * 1_000_000_000 // ticks
    usage["user"] = st.get("user", 0) * 1_000_000_000 // ticks
    return usage


def _v1_cpuset(d):
    out = {}
    for key in ["cpus", "cpu_exclusive", "mems"] + list(_cpuset_zero())[1:]:
        if key in ("cpus", "mems"):
            try:
                out[key] = parse_list(read(f"{d}/cpuset.{key}"))
            except OSError:
                pass
            if not out.get(key):
                out.pop(key, None)
        else:
            out[key] = read_int(f"{d}/cpuset.{key}")
    return out


def _v1_memory(d):
    def entry(prefix):
        return mem_entry(read_int(f"{d}/{prefix}.limit_in_bytes"), read_int(f"{d}/{prefix}.usage_in_bytes"),
                         read_int(f"{d}/{prefix}.max_usage_in_bytes"), read_int(f"{d}/{prefix}.failcnt"))
    raw = read_keyed(d + "/memory.stat")
    out = omit_zero({"cache": raw.get("cache")})
    out.update({"usage": entry("memory"), "swap": entry("memory.memsw"), "kernel": entry("memory.kmem"),
                "kernelTCP": entry("memory.kmem.tcp")})
    if raw:
        out["raw"] = raw
    return out


def _blkio_entries(path):
    out = []
    try:
        text = read(path)
    except OSError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3:
            major, minor = f[0].split(":")
            out.append(omit_zero({"major": int(major), "minor": int(minor), "op": f[1], "value": int(f[2])}))
    return out


def _v1_blkio(d):
    prefix = "blkio.bfq" if os.path.exists(d + "/blkio.bfq.io_service_bytes_recursive") else "blkio.throttle"
    return omit_zero({"ioServiceBytesRecursive": _blkio_entries(f"{d}/{prefix}.io_service_bytes_recursive"),
                      "ioServicedRecursive": _blkio_entries(f"{d}/{prefix}.io_serviced_recursive")})


# --- v2 ----------------------------------------------------------------------
def v2(d):
    s = empty()
    c = read_keyed(d + "/cpu.stat")
    s["cpu"] = {"usage": {**omit_zero({"total": c.get("usage_usec", 0) * 1000}),
                          "kernel": c.get("system_usec", 0) * 1000, "user": c.get("user_usec", 0) * 1000},
                "throttling": omit_zero({"periods": c.get("nr_periods"), "throttledPeriods": c.get("nr_throttled"),
                                         "throttledTime": c.get("throttled_usec", 0) * 1000})}
    if os.path.exists(d + "/memory.current"):
        s["memory"] = _v2_memory(d)
    if os.path.exists(d + "/pids.current"):
        limit = read_int(d + "/pids.max")
        s["pids"] = omit_zero({"current": read_int(d + "/pids.current"), "limit": 0 if limit == U64_MAX else limit})
    if os.path.exists(d + "/io.stat"):
        s["blkio"] = _v2_io(d)
    s["hugetlb"] = v2_hugetlb(d)
    return s


def _v2_memory(d):
    raw = read_keyed(d + "/memory.stat")
    events = read_keyed(d + "/memory.events")
    usage, limit = read_int(d + "/memory.current"), read_int(d + "/memory.max", U64_MAX)
    out = omit_zero({"cache": raw.get("file")})
    out["usage"] = mem_entry(limit, usage, read_int(d + "/memory.peak"), events.get("max", 0))
    # runc reports v2 swap as memory+swap, as v1's memsw
    swap_limit = read_int(d + "/memory.swap.max", U64_MAX)
    if swap_limit != U64_MAX and limit != U64_MAX:
        swap_limit += limit
    out["swap"] = mem_entry(swap_limit, read_int(d + "/memory.swap.current") + usage, 0,
                            read_keyed(d + "/memory.swap.events").get("max", 0))
    out["kernel"] = {"limit": 0, "failcnt": 0}
    out["kernelTCP"] = {"limit": 0, "failcnt": 0}
    if raw:
        out["raw"] = raw
    return out


def _v2_io(d):
    served, bytes_ = [], []
    try:
        text = read(d + "/io.stat")
    except OSError:
        text = ""
    for line in text.splitlines():
        dev, *kvs = line.split()
        major, minor = (int(x) for x in dev.split(":"))
        vals = dict(kv.split("=", 1) for kv in kvs)
        for op, b, n in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios"), ("Discard", "dbytes", "dios")):
            if b in vals:
                bytes_.append(omit_zero({"major": major, "minor": minor, "op": op, "value": int(vals[b])}))
            if n in vals:
                served.append(omit_zero({"major": major, "minor": minor, "op": op, "value": int(vals[n])}))
    return omit_zero({"ioServiceBytesRecursive": bytes_, "ioServicedRecursive": served})


def v2_hugetlb(d):
    out = {}
    for p in page_sizes():
        if os.path.exists(f"{d}/hugetlb.{p}.current"):
            out[p] = {**omit_zero({"usage": read_int(f"{d}/hugetlb.{p}.current")}),
                      "failcnt": read_keyed(f"{d}/hugetlb.{p}.events").get("max", 0)}
    return out
