"""Pure parts of ocirt.cgroups: paths, conversions, resource plans, device
rules (the eBPF program is run by a small interpreter here), stats parsing,
and what `update` and `events` parse."""
import errno
import os
import itertools
import random
import struct

import pytest

from ocirt.cgroups import convert, devices, fs, paths, spec, stats, update, v1plan, v2plan
from ocirt.clicmds import parse_duration
from ocirt.errors import OcirtError

MOUNTINFO = """\
24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw shared:15 - cgroup cgroup rw,cpu,cpuacct
39 33 0:34 /docker/abc /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory
40 33 0:35 / /sys/fs/cgroup/net\\040cls rw shared:17 - cgroup cgroup rw,net_cls,release_agent=/x
"""


def test_v1_mounts_comounted_named_and_escaped():
    m = paths.parse_v1_mounts(MOUNTINFO)
    assert m["cpu"] == m["cpuacct"] == ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert m["name=systemd"] == ("/sys/fs/cgroup/systemd", "/")
    assert m["memory"] == ("/sys/fs/cgroup/memory", "/docker/abc")
    assert m["net_cls"][0] == "/sys/fs/cgroup/net cls"
    assert "" not in m and "xattr" not in m and "rw" not in m


def test_proc_cgroup():
    own = paths.parse_proc_cgroup("12:cpu,cpuacct:/a\n1:name=systemd:/s\n0::/u\n")
    assert own == {"cpu": "/a", "cpuacct": "/a", "name=systemd": "/s", "": "/u"}


@pytest.mark.parametrize("given,want", [
    (None, "ctr"), ("", "ctr"), ("/a/b/../c", "/a/c"), ("a/b", "a/b"),
    ("../../x", "x"), ("/../../x", "/x"), ("a/./b/", "a/b")])
def test_inner_path(given, want):
    assert paths.inner_path(given, "ctr") == want


def test_inner_path_errors_name_the_field():
    for bad in ("system.slice:docker:abc", ".."):
        with pytest.raises(OcirtError) as e:
            paths.inner_path(bad, "x")
        assert e.value.where == "linux.cgroupsPath"


def test_dirs_absolute_relative_and_mount_root():
    assert paths.v1_dir("/m", "/", "/own", "/abs") == "/m/abs"
    assert paths.v1_dir("/m", "/", "/own/x", "ctr") == "/m/own/x/ctr"
    assert paths.v1_dir("/m", "/", "/", "ctr") == "/m/ctr"
    # the mount shows only /docker/abc and below: strip it from our own path
    assert paths.v1_dir("/m", "/docker/abc", "/docker/abc/sub", "ctr") == "/m/sub/ctr"
    assert paths.v2_dir("/u", "/user.slice/session.scope", "ctr", parent_of_own=True) == "/u/user.slice/ctr"
    assert paths.v2_dir("/u", "/a/b", "ctr", parent_of_own=False) == "/u/a/b/ctr"
    assert paths.v2_dir("/u", "/", "ctr", parent_of_own=True) == "/u/ctr"
    assert paths.v2_dir("/u", "/a", "/x/y", parent_of_own=True) == "/u/x/y"



@pytest.mark.parametrize("args,want", [
    (["sub"], {"": "sub"}), (["memory:a"], {"memory": "a"}),
    (["memory,pids:a/b", "cpu:c"], {"memory": "a/b", "pids": "a/b", "cpu": "c"}),
    (["memory:"], {"memory": ""})])
def test_exec_sub_cgroup_arguments(args, want):
    assert paths.parse_sub_cgroups(args) == want


@pytest.mark.parametrize("args,msg", [
    (["a:b:c"], "invalid --cgroup argument: a:b:c"), (["a", "memory:b"], "missing <controller>: prefix"),
    ([":a"], "empty <controller> prefix"), (["memory,:a"], "empty <controller> prefix"),
    (["memory:a", "pids,memory:b"], "controller memory specified multiple times")])
def test_exec_sub_cgroup_argument_errors(args, msg):
    with pytest.raises(OcirtError, match=msg):
        paths.parse_sub_cgroups(args)


def test_exec_sub_cgroup_dirs():
    v1 = {"cpu": "/m/cpu,cpuacct/c", "cpuacct": "/m/cpu,cpuacct/c", "memory": "/m/memory/c", "": "/u/c"}
    assert paths.sub_dirs(v1, {"": "s"}) == {k: v + "/s" for k, v in v1.items()}
    # co-mounted controllers move together; "/x" and "../c/x" are inside too
    assert paths.sub_dirs(v1, {"cpu": "/x", "memory": "../c/x/"}) == dict(
        v1, cpu="/m/cpu,cpuacct/c/x", cpuacct="/m/cpu,cpuacct/c/x", memory="/m/memory/c/x")
    assert paths.sub_dirs({"": "/u/c"}, {"": "a/b"}) == {"": "/u/c/a/b"}
    for subs, msg in (({"memory": ".."}, "not a sub cgroup"), ({"memory": "../c-other"}, "not a sub cgroup"),
                      ({"bogus": "x"}, "unknown controller bogus$"), ({"cpu": "a", "cpuacct": "b"}, "two sub"),
                      ({"": "../../x"}, "not a sub cgroup")):
        with pytest.raises(OcirtError, match=msg):
            paths.sub_dirs(v1, subs)
    with pytest.raises(OcirtError, match="unknown controller memory .on cgroup v2"):
        paths.sub_dirs({"": "/u/c"}, {"memory": "x"})

# --- conversions -------------------------------------------------------------
def test_cpu_shares_to_weight_fixed_points_and_monotonic():
    assert [convert.cpu_shares_to_weight(s) for s in (0, 1, 2, 1024, 262144, 10 ** 6)] == [0, 1, 1, 100, 10000, 10000]
    ws = [convert.cpu_shares_to_weight(s) for s in range(2, 262145, 97)]
    assert ws == sorted(ws) and all(1 <= w <= 10000 for w in ws)
    assert convert.cpu_shares_to_weight(512) == 59 and convert.cpu_shares_to_weight(2048) == 174


def test_blkio_weight_to_io_weight():
    assert [convert.blkio_weight_to_io_weight(w) for w in (0, 10, 500, 1000)] == [0, 1, 4950, 10000]


def test_swap_to_v2():
    assert convert.swap_to_v2(0, -1) == -1
    assert convert.swap_to_v2(-1, 100) == -1
    assert convert.swap_to_v2(None, 100) is None
    assert convert.swap_to_v2(300, 100) == 200
    assert convert.swap_to_v2(100, 100) == 0
    for swap, mem in ((50, 100), (300, None), (300, -1)):
        with pytest.raises(ValueError):
            convert.swap_to_v2(swap, mem)


# --- plans ---------------------------------------------------------------
class V1Host:
    def __init__(self, files=(), ints=None):
        self.files, self.ints = set(files), ints or {}

    def has(self, ctrl, file):
        return file in self.files

    def read_int(self, ctrl, file):
        return self.ints[file]


def files(plan):
    return [(w.file, w.value) for w in plan]


def test_v1_memory_swap_order_follows_current_limit():
    res = {"memory": {"limit": 200, "swap": 400}}
    grow = v1plan.plan(res, "r", V1Host(ints={"memory.limit_in_bytes": 100}))
    assert files(grow)[:2] == [("memory.memsw.limit_in_bytes", "400"), ("memory.limit_in_bytes", "200")]
    shrink = v1plan.plan(res, "r", V1Host(ints={"memory.limit_in_bytes": 1000}))
    assert files(shrink)[:2] == [("memory.limit_in_bytes", "200"), ("memory.memsw.limit_in_bytes", "400")]
    unlimited = v1plan.plan({"memory": {"limit": -1}}, "r", V1Host())
    assert files(unlimited) == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]



class CfsFiles:
    """cpu.cfs_* files as the kernel checks them: quota/period within the
    parent's ratio (0.5 CPU here), burst <= quota."""

    def __init__(self, period, quota, burst=0):
        self.v = {"cpu.cfs_period_us": period, "cpu.cfs_quota_us": quota, "cpu.cfs_burst_us": burst}
        self.log = []

    def write(self, w):
        self.log.append(w.file)
        new = dict(self.v, **{w.file: int(w.value)})
        p, q, b = new["cpu.cfs_period_us"], new["cpu.cfs_quota_us"], new["cpu.cfs_burst_us"]
        if w.file == "cpu.rt_period_us":
            raise fs.WriteError("busy", "x", errno.EBUSY)
        if q > p // 2 or b > q:
            raise fs.WriteError(f"{w.file}: invalid", "x", errno.EINVAL)
        self.v = new


def cfs(period, quota, burst=None):
    return [fs.Write("cpu", f"cpu.cfs_{k}_us", str(v), k) for k, v in
            (("period", period), ("quota", quota), ("burst", burst)) if v is not None]


@pytest.mark.parametrize("old,new", [
    ((100000, 50000), (10000, 5000)),          # period first fails: quota, then period again
    ((10000, 5000), (100000, 50000)),          # plan order works
    ((100000, 50000, 40000), (100000, 20000, 10000)),   # quota below the old burst: burst first
    ((100000, 20000, 10000), (100000, 50000, 40000))])
def test_dependent_cgroup_writes_are_retried_in_the_other_order(old, new):
    files = CfsFiles(*old)
    fs.write_all(cfs(*new), files.write)
    want = dict(zip(["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us"], new + (old[2:] or (0,))))
    assert files.v == want


def test_dependent_cgroup_writes_fail_when_no_order_works():
    files = CfsFiles(100000, 50000)
    with pytest.raises(fs.WriteError, match="cpu.cfs_quota_us: invalid"):
        fs.write_all(cfs(100000, 90000), files.write)        # no partner write to wait for
    with pytest.raises(fs.WriteError, match="cfs_period_us: invalid"):
        fs.write_all(cfs(1000, 800), files.write)            # refused either way, tried twice
    assert files.log[-3:] == ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_period_us"]
    with pytest.raises(fs.WriteError, match="busy"):         # only EINVAL is a matter of order
        fs.write_all([fs.Write("cpu", "cpu.rt_period_us", "1", "x"),
                      fs.Write("cpu", "cpu.rt_runtime_us", "1", "x")], files.write)
    assert files.log[-1] == "cpu.rt_period_us"

def test_v1_plan_files_and_fields():
    res = {"memory": {"reservation": 5, "kernel": 4096, "swappiness": 10, "disableOOMKiller": True,
                      "useHierarchy": True},
           "cpu": {"shares": 512, "quota": 5000, "period": 10000, "burst": 100, "realtimeRuntime": 5,
                   "realtimePeriod": 10, "cpus": "0-1", "mems": "0", "idle": 1},
           "pids": {"limit": -1}, "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 20}],
                                             "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 99}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
           "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 3}]},
           "rdma": {"mlx5_0": {"hcaHandles": 3}}}
    plan = v1plan.plan(res, "linux.resources", V1Host(files={"blkio.bfq.weight"}))
    got = {(w.ctrl, w.file): (w.value, w.where) for w in plan}
    assert got[("cpuset", "cpuset.cpus")] == ("0-1", "linux.resources.cpu.cpus")
    assert got[("cpu", "cpu.cfs_quota_us")] == ("5000", "linux.resources.cpu.quota")
    assert got[("pids", "pids.max")] == ("max", "linux.resources.pids.limit")
    assert got[("blkio", "blkio.bfq.weight")][0] == "300"          # no blkio.weight on this host
    assert got[("blkio", "blkio.bfq.weight_device")][0] == "8:0 20"
    assert got[("blkio", "blkio.throttle.read_bps_device")] == ("8:0 99", "linux.resources.blockIO.throttleReadBpsDevice[0].rate")
    assert got[("hugetlb", "hugetlb.2MB.limit_in_bytes")][0] == "4194304"
    assert got[("net_prio", "net_prio.ifpriomap")][0] == "eth0 3"
    assert got[("rdma", "rdma.max")][0] == "mlx5_0 hca_handle=3"
    assert got[("memory", "memory.oom_control")][0] == "1"
    order = [w.file for w in plan]
    assert order.index("cpu.cfs_period_us") < order.index("cpu.cfs_quota_us") < order.index("cpu.cfs_burst_us")
    assert order.index("cpu.rt_period_us") < order.index("cpu.rt_runtime_us")
    assert [w.check for w in plan if w.file == "cpu.shares"] == [True]
    assert not any("kmem" in w.file for w in plan)    # ignored, with a warning


@pytest.mark.parametrize("plan", [v1plan.plan, v2plan.plan])
def test_kernel_memory_limits_are_warned_of_and_ignored(plan):
    res = {"memory": {"limit": 1 << 20, "kernel": 4096, "kernelTCP": -1}}
    host = V1Host() if plan is v1plan.plan else V2Host()
    assert [w.file for w in plan(res, "r", host)] in (["memory.limit_in_bytes"], ["memory.max"])
    assert [w.where for w in spec.ignored(res, "r")] == ["r.memory.kernel", "r.memory.kernelTCP"]
    assert spec.ignored({"memory": {"limit": 1}}) == [] and spec.ignored(None) == []


@pytest.mark.parametrize("res,where", [
    ({"unified": {"memory.max": "1"}}, "r.unified"),
    ({"memory": {"swappiness": 101}}, "r.memory.swappiness"),
    ({"memory": {"limit": "1G"}}, "r.memory.limit"),
    ({"blockIO": {"weight": 5}}, "r.blockIO.weight"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}}, "r.blockIO.throttleReadBpsDevice[0].minor"),
    ({"hugepageLimits": [{"limit": 1}]}, "r.hugepageLimits[0].pageSize"),
])
def test_v1_plan_errors_name_the_field(res, where):
    with pytest.raises(OcirtError) as e:
        v1plan.plan(res, "r", V1Host())
    assert e.value.where == where


def test_check_before_update_refuses_limit_below_usage():
    res = {"memory": {"limit": 100, "checkBeforeUpdate": True}}
    with pytest.raises(OcirtError) as e:
        v1plan.plan(res, "r", V1Host(ints={"memory.usage_in_bytes": 500}), updating=True)
    assert e.value.where == "r.memory.limit"
    assert v1plan.plan(res, "r", V1Host(ints={"memory.usage_in_bytes": 50, "memory.limit_in_bytes": 0}), updating=True)
    with pytest.raises(OcirtError):
        v2plan.plan(res, "r", V2Host(ints={"memory.current": 500}), updating=True)


class V2Host:
    def __init__(self, files=(), ints=None):
        self.files, self.ints = set(files), ints or {}

    def has(self, file):
        return file in self.files

    def read_int(self, file):
        return self.ints[file]


RULES = [{"allow": False, "access": "rwm"}]


@pytest.mark.parametrize("res", [{}, {"devices": RULES}, {"devices": None, "memory": None, "cpu": None}])
def test_resources_without_writes_plan_none(res):
    """The drivers skip their plan modules for what fs.no_writes answers
    True: both plans are empty for it, whatever the host has."""
    assert fs.no_writes(res)
    assert v1plan.plan(res, "r", V1Host(files={"blkio.bfq.weight"})) == []
    assert v2plan.plan(res, "r", V2Host(files={"memory.swap.max"})) == []


@pytest.mark.parametrize("res", [None, [], {"memory": {}}, {"unified": {}}, {"devices": RULES, "pids": {"limit": 5}}])
def test_resources_that_may_write_go_through_the_plans(res):
    assert not fs.no_writes(res)


def test_v2_plan_conversions():
    res = {"memory": {"limit": 100, "swap": 300, "reservation": 50},
           "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "burst": 10, "idle": 0},
           "pids": {"limit": 9},
           "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 7}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
           "unified": {"memory.high": "1000"}}
    got = files(v2plan.plan(res, "r", V2Host(files={"memory.swap.max"})))
    assert ("memory.swap.max", "200") in got and ("memory.max", "100") in got and ("memory.low", "50") in got
    assert ("cpu.weight", "100") in got and ("cpu.max", "20000 100000") in got and ("cpu.max.burst", "10") in got
    assert ("io.weight", "4950") in got and ("io.max", "254:0 wiops=7") in got
    assert ("hugetlb.2MB.max", "2097152") in got and ("pids.max", "9") in got and ("memory.high", "1000") in got
    assert ("io.bfq.weight", "500") in files(v2plan.plan({"blockIO": {"weight": 500}}, "r", V2Host(files={"io.bfq.weight"})))
    assert files(v2plan.plan({"cpu": {"period": 5000}}, "r", V2Host())) == [("cpu.max", "max 5000")]
    assert files(v2plan.plan({"cpu": {"quota": -1}}, "r", V2Host())) == [("cpu.max", "max")]
    assert files(v2plan.plan({"memory": {"limit": -1}}, "r", V2Host(files={"memory.swap.max"}))) == \
        [("memory.swap.max", "max"), ("memory.max", "max")]


@pytest.mark.parametrize("res,where", [
    ({"memory": {"swappiness": 1}}, "r.memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "r.memory.disableOOMKiller"),
    ({"memory": {"useHierarchy": False}}, "r.memory.useHierarchy"),
    ({"memory": {"swap": 50, "limit": 100}}, "r.memory.swap"),
    ({"memory": {"swap": 500, "limit": 100}}, "r.memory.swap"),     # no swap accounting on V2Host()
    ({"cpu": {"realtimeRuntime": 1}}, "r.cpu.realtimeRuntime"),
    ({"network": {"classID": 1}}, "r.network.classID"),
    ({"blockIO": {"leafWeight": 100}}, "r.blockIO.leafWeight"),
    ({"unified": {"../x": "1"}}, "r.unified.../x"),
    ({"unified": {"cgroup.procs": "1"}}, "r.unified.cgroup.procs"),
    ({"unified": {"memory.max": 5}}, "r.unified.memory.max"),
])
def test_v2_plan_errors_name_the_field(res, where):
    with pytest.raises(OcirtError) as e:
        v2plan.plan(res, "r", V2Host())
    assert e.value.where == where


# --- devices -----------------------------------------------------------------
def test_device_rules_v1_lines_and_defaults():
    rs = devices.rules([{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": -1, "access": "wr"}], "d")
    lines = devices.v1_lines(rs)
    assert lines[:3] == [("devices.deny", "a"), ("devices.deny", "a"), ("devices.allow", "c 10:* rw")]
    assert ("devices.allow", "c 1:3 rwm") in lines and ("devices.allow", "c 136:* rwm") in lines
    assert len(lines) == 3 + len(devices.DEFAULT_ALLOWED)


def test_device_rules_deny_by_default():
    """No rules in the config: everything but the defaults is denied."""
    lines = devices.v1_lines(devices.rules(None, "d"))
    assert lines == [("devices.deny", "a")] + devices.v1_lines(devices.rules([], "d"))[1:]
    assert ("devices.allow", "c 10:229 rwm") not in lines and len(lines) == 1 + len(devices.DEFAULT_ALLOWED)


@pytest.mark.parametrize("rule,where", [
    ({"type": "c"}, "d[0].allow"), ({"allow": True, "type": "x"}, "d[0].type"),
    ({"allow": True, "access": "rx"}, "d[0].access"), ({"allow": True, "major": "1"}, "d[0].major")])
def test_device_rule_errors(rule, where):
    with pytest.raises(OcirtError) as e:
        devices.rules([rule], "d")
    assert e.value.where == where


def run_bpf(prog, typ, major, minor, access):
    """Interpret the few eBPF instructions devices.bpf_program emits."""
    acc = sum({"m": 1, "r": 2, "w": 4}[c] for c in access)
    ctx = struct.pack("<III", (acc << 16) | {"b": 1, "c": 2}[typ], major, minor)
    regs = [0] * 11
    pc, insns = 0, [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    m64 = (1 << 64) - 1
    while True:
        code, regs_, off, imm = insns[pc]
        dst, src = regs_ & 15, regs_ >> 4
        pc += 1
        if code == 0x61:
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x57:
            regs[dst] &= imm & m64
        elif code == 0x77:
            regs[dst] >>= imm
        elif code == 0xb7:
            regs[dst] = imm & m64
        elif code == 0xbf:
            regs[dst] = regs[src]
        elif code == 0x05:
            pc += off
        elif code in (0x55, 0x15):
            if (regs[dst] != imm & m64) == (code == 0x55):
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def v1_model(rs, typ, major, minor, access):
    """What a v1 devices cgroup decides after the rules are written in order:
    a whitelist or blacklist of exceptions, per access bit."""
    allowed = {c: True for c in access}
    for r in rs:
        hit = r.type == "a" or (r.type == typ and r.major in (None, major) and r.minor in (None, minor))
        if hit:
            for c in access:
                if r.type == "a" or c in r.access:
                    allowed[c] = r.allow
    return all(allowed.values())


def test_bpf_program_matches_v1_semantics():
    rnd = random.Random(5)
    cands = [{"allow": a, "type": t, "major": ma, "minor": mi, "access": acc}
             for a in (True, False) for t in ("a", "b", "c") for ma in (None, 1, 5) for mi in (None, 3)
             for acc in ("r", "w", "m", "rw", "rwm")]
    requests = list(itertools.product("bc", (1, 5, 7), (3, 4), ("r", "w", "m", "rw", "rwm")))
    for _ in range(300):
        rs = [devices._rule(d, "x") for d in rnd.sample(cands, rnd.randint(0, 6))]
        prog = devices.bpf_program(rs)
        for req in requests:
            want = v1_model(rs, *req)
            assert run_bpf(prog, *req) == int(want), (rs, req)


def test_bpf_program_typical_config():
    prog = devices.bpf_program(devices.rules([{"allow": False, "access": "rwm"}], "d"))
    assert run_bpf(prog, "c", 1, 3, "rw") == 1          # /dev/null, a default rule
    assert run_bpf(prog, "b", 8, 0, "r") == 0           # a disk
    assert run_bpf(prog, "b", 8, 0, "m") == 1           # mknod is allowed
    assert run_bpf(prog, "c", 136, 9, "rw") == 1        # a pty


def test_bpf_program_without_rules_denies_all_but_the_defaults():
    prog = devices.bpf_program(devices.rules(None, "d"))
    assert run_bpf(prog, "c", 10, 229, "rw") == 0       # /dev/fuse, shipped in an image
    assert run_bpf(prog, "c", 1, 3, "rw") == 1 and run_bpf(prog, "b", 8, 0, "m") == 1


# --- stats -------------------------------------------------------------------
def test_list_and_sizes():
    assert stats.parse_list("0-2,4,6-7") == [0, 1, 2, 4, 6, 7]
    assert stats.parse_list("") == []
    assert [stats.size_name(k) for k in (64, 2048, 1048576, 1536)] == ["64KB", "2MB", "1GB", "1536KB"]


def write_files(d, content):
    for name, text in content.items():
        (d / name).write_text(text)


def test_v2_stats_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(stats, "HUGEPAGES", str(tmp_path / "hp"))
    (tmp_path / "hp").mkdir()
    (tmp_path / "hp" / "hugepages-2048kB").mkdir()
    write_files(tmp_path, {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.stat": "anon 10\nfile 20\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "memory.swap.current": "0\n",
        "memory.swap.max": "max\n", "pids.current": "2\n", "pids.max": "max\n",
        "io.stat": "254:0 rbytes=100 wbytes=0 rios=2 wios=0 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 2\n"})
    s = stats.v2(str(tmp_path))
    assert s["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 7000}}
    assert s["memory"]["usage"] == {"limit": (1 << 64) - 1, "usage": 4096, "failcnt": 3}
    assert s["memory"]["cache"] == 20 and s["memory"]["raw"] == {"anon": 10, "file": 20}
    assert s["memory"]["swap"]["usage"] == 4096
    assert s["pids"] == {"current": 2}
    assert s["blkio"] == {"ioServiceBytesRecursive": [{"major": 254, "op": "Read", "value": 100},
                                                      {"major": 254, "op": "Write"}, {"major": 254, "op": "Discard"}],
                          "ioServicedRecursive": [{"major": 254, "op": "Read", "value": 2},
                                                  {"major": 254, "op": "Write"}, {"major": 254, "op": "Discard"}]}
    assert s["hugetlb"] == {"2MB": {"failcnt": 2}}
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]


# --- update: flags, JSON, merge (ocirt.cgroups.update) ------------------------


@pytest.mark.parametrize("text,want", [("1048576", 1 << 20), ("64m", 64 << 20), ("64M", 64 << 20),
                                       ("64mb", 64 << 20), ("64MiB", 64 << 20), ("64 m", 64 << 20),
                                       ("1.5g", 3 << 29), ("2k", 2048), ("1t", 1 << 40), ("10b", 10)])
def test_ram_in_bytes_as_go_units(text, want):
    assert update.ram_in_bytes(text) == want


@pytest.mark.parametrize("text", ["", "m", "abc", "1.2.3", "1e3", "-5", "64x", "64  m", " 64"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(ValueError, match="invalid size"):
        update.ram_in_bytes(text)


def _flags(**kw):
    flags = {k: "" for k in ("resources", "blkio-weight", "cpu-period", "cpu-quota", "cpu-share",
                             "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems",
                             "kernel-memory", "kernel-memory-tcp", "memory", "memory-reservation",
                             "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema")}
    flags.update({k.replace("_", "-"): v for k, v in kw.items()})
    return flags


def test_update_flags_to_resources():
    warnings = []
    r = update.from_flags(_flags(memory="64m", memory_swap="-1", memory_reservation="1g", cpu_share="512",
                                 cpu_quota="-1", cpu_period="100000", cpuset_cpus="0-1", pids_limit="0x10",
                                 blkio_weight="300", kernel_memory="1m"), warnings.append)
    assert r == {"memory": {"limit": 64 << 20, "swap": -1, "reservation": 1 << 30},
                 "cpu": {"cpus": "0-1", "period": 100000, "shares": 512, "quota": -1},
                 "pids": {"limit": 16}, "blockIO": {"weight": 300}}
    assert warnings == ["Setting --kernel-memory is ignored and will be removed"]
    assert update.from_flags(_flags(pids_limit="0", blkio_weight="0"), None) == {}   # 0: unchanged


@pytest.mark.parametrize("flag,value,msg", [
    ("memory", "lots", "invalid value for memory: invalid size: 'lots'"),
    ("cpu_share", "-2", 'invalid value for cpu-share: strconv.ParseUint: parsing "-2": invalid syntax'),
    ("cpu_quota", "1.5", 'invalid value for cpu-quota: strconv.ParseInt: parsing "1.5": invalid syntax'),
    ("pids_limit", "x", 'invalid value "x" for flag -pids-limit: parse error')])
def test_update_flag_errors(flag, value, msg):
    with pytest.raises(OcirtError) as e:
        update.from_flags(_flags(**{flag: value}), None)
    assert str(e.value) == msg


def test_update_json_keeps_what_runc_updates():
    doc = {"memory": {"limit": 1, "swap": None, "kernel": 5}, "cpu": {"quota": 2, "cpus": "0"},
           "pids": {"limit": 3}, "blockIO": {"weight": 10, "weightDevice": [{}]},
           "devices": [{"allow": False}], "hugepageLimits": [{}], "unified": {"memory.high": "1G"}}
    assert update.from_json(doc, "f.json") == {"memory": {"limit": 1}, "cpu": {"quota": 2, "cpus": "0"},
                                               "pids": {"limit": 3}, "blockIO": {"weight": 10},
                                               "unified": {"memory.high": "1G"}}
    for bad, where in (([], ""), ({"memory": 5}, "memory")):
        with pytest.raises(OcirtError) as e:
            update.from_json(bad, "f.json")
        assert e.value.source == "f.json" and e.value.where == where


def test_update_merge_records_and_completes_pairs():
    recorded = {"memory": {"limit": 64, "swap": 128, "checkBeforeUpdate": True},
                "cpu": {"quota": 5, "period": 10, "shares": 2}, "devices": [{"allow": False}]}
    merged, apply = update.merge(recorded, {"memory": {"limit": 100}, "cpu": {"period": 20}, "pids": {"limit": 7}})
    assert merged == {"memory": {"limit": 100, "swap": 128, "checkBeforeUpdate": True},
                      "cpu": {"quota": 5, "period": 20, "shares": 2}, "devices": [{"allow": False}],
                      "pids": {"limit": 7}}
    assert apply == {"memory": {"limit": 100, "swap": 128, "checkBeforeUpdate": True},
                     "cpu": {"period": 20, "quota": 5}, "pids": {"limit": 7}}
    assert recorded["memory"]["limit"] == 64                       # not changed in place
    assert update.merge(recorded, {"cpu": {"shares": 4}})[1] == {"cpu": {"shares": 4}}
    # unlimited memory without a swap value means unlimited swap too (runc)
    merged, apply = update.merge(recorded, {"memory": {"limit": -1}})
    assert apply["memory"]["swap"] == -1 and merged["memory"]["swap"] == -1
    assert update.merge(None, {"pids": {"limit": 1}}) == ({"pids": {"limit": 1}}, {"pids": {"limit": 1}})


# --- events --interval ----------------------------------------------
@pytest.mark.parametrize("text,want", [("5s", 5.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5h", 5400.0),
                                       ("0", 0.0), ("-2s", -2.0), ("10us", 1e-5), ("3\u00b5s", 3e-6)])
def test_go_durations(text, want):
    assert parse_duration(text, "interval") == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "5", "s", "1.2.3s", "5 s", "5d", "1s2", "--1s"])
def test_go_duration_errors(text):
    with pytest.raises(OcirtError, match=f'invalid value "{text}" for flag -interval: parse error'):
        parse_duration(text, "interval")


def test_lengths_the_kernel_cannot_name_are_refused_naming_the_field():
    paths.check_lengths(["/sys/fs/cgroup/cpu/" + "a" * 255, "/m" + "/x" * 1900])
    for bad, msg in ((["/m/" + "a" * 256], "255"), (["/m/ok", "/m" + "/x" * 2100], "4096"),
                     (["/m/" + "é" * 128], "256 bytes")):
        with pytest.raises(OcirtError) as e:
            paths.check_lengths(bad)
        assert e.value.where == "linux.cgroupsPath" and msg in str(e.value)


def test_remove_tree_ends_what_joined_before_it_retries(tmp_path, monkeypatch):
    """A task that joins between delete's kill and the rmdir keeps the
    cgroup busy until on_busy ends it (a create killed part way)."""
    d = tmp_path / "cg"
    d.mkdir()
    busy, ended = [True], []
    real_rmdir = os.rmdir

    def rmdir(p):
        if busy[0]:
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_rmdir(p)
    monkeypatch.setattr(fs.posix, "rmdir", rmdir)
    monkeypatch.setattr(fs.time, "sleep", lambda s: None)
    fs.remove_tree(str(d), on_busy=lambda p: (ended.append(p), busy.__setitem__(0, False)))
    assert ended == [str(d)] and not d.exists()
    d.mkdir()
    busy[0] = True
    with pytest.raises(OcirtError, match="cannot remove cgroup .*busy"):
        fs.remove_tree(str(d), tries=3)   # nothing given to end it: it says so


def test_v1_cpuset_ancestors_left_empty_get_their_parents_values(tmp_path, monkeypatch):
    """Outermost first, each file read once: a set value is kept and is
    what the cgroups below it get."""
    from ocirt.cgroups.v1 import V1
    reads, read = [], fs.read
    monkeypatch.setattr(fs, "read", lambda path: reads.append(path) or read(path))
    files = {"a": ("0-3", "0"), "a/b": ("", "1"), "a/b/c": ("", ""), "a/b/c/d": ("", "")}
    for d, (cpus, mems) in files.items():
        (tmp_path / d).mkdir()
        (tmp_path / d / "cpuset.cpus").write_text(cpus + "\n" if cpus else "")
        (tmp_path / d / "cpuset.mems").write_text(mems + "\n" if mems else "")
    V1({"cpuset": str(tmp_path / "a/b/c/d")})._prepare([])
    got = {d: ((tmp_path / d / "cpuset.cpus").read_text().strip(), (tmp_path / d / "cpuset.mems").read_text().strip())
           for d in files}
    assert got == {"a": ("0-3", "0"), "a/b": ("0-3", "1"), "a/b/c": ("0-3", "1"), "a/b/c/d": ("0-3", "1")}
    assert len(reads) == len(set(reads)) == 8, reads


def test_fs_errno_values_are_errnos():
    for name in ("EPERM", "ENOENT", "EACCES", "EBUSY", "ENOTDIR", "EINVAL", "EROFS", "ENOTEMPTY"):
        assert getattr(fs, name) == getattr(errno, name), name
