"""The cgroupfs v1 driver for real, on this (v1 or hybrid) host. Everything
happens under /<controller>/ocirt-test-<pid>, created and removed here."""
import glob
import json
import os
import signal

import pytest

import ocirt.cgroups as cgroups
from ocirt.cgroups import paths
from ocirt.errors import OcirtError
from test_cgroups_common import (PARENT, check_freeze, check_kill_all, check_oom, check_pids_limit,
                                 needs_root, say, spawn, stats_while_running)

pytestmark = [needs_root, pytest.mark.skipif(paths.is_unified(), reason="host is pure cgroup v2: no v1 driver")]


@pytest.fixture(scope="module", autouse=True)
def parent(request):
    assert not glob.glob(f"/sys/fs/cgroup/*/{PARENT}")
    say(request, f"cgroup v1 driver: on this host's v1 hierarchies, under /sys/fs/cgroup/*/{PARENT}")
    yield
    for d in glob.glob(f"/sys/fs/cgroup/*/{PARENT}"):
        os.rmdir(d)


@pytest.fixture
def make():
    made = []

    def make(resources=None, name="c"):
        cg = cgroups.for_container(f"/{PARENT}/{name}", "ignored")
        made.append(cg)
        cg.create(resources)
        return cg
    yield make
    for cg in made:
        cg.kill_all(signal.SIGKILL)
        cg.destroy()


def read(cg, ctrl, file):
    with open(f"{cg.dirs[ctrl]}/{file}") as f:
        return f.read().strip()


def test_driver_and_state_round_trip(make):
    cg = make()
    assert cg.version == 1 and cg.dirs["memory"] == f"/sys/fs/cgroup/memory/{PARENT}/c"
    assert cg.v2_dir() == (f"{paths.HYBRID_UNIFIED}/{PARENT}/c" if "" in cg.dirs else None)
    again = cgroups.from_state(json.loads(json.dumps(cg.to_state())))
    assert again.dirs == cg.dirs and type(again) is type(cg)
    for d in cg.unique_dirs():
        assert os.path.isdir(d)


def test_resources_written_and_read_back(make):
    cpus = read(make(name="probe"), "cpuset", "cpuset.cpus")     # copied from the parent
    res = {"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20, "swappiness": 20,
                      "disableOOMKiller": False, "useHierarchy": True},
           "cpu": {"shares": 512, "quota": 25000, "period": 100000, "burst": 1000, "cpus": cpus.split("-")[0],
                   "mems": "0", "idle": 0},
           "pids": {"limit": 17},
           "devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}
    # blkio.weight needs the BFQ/CFQ I/O scheduler; without it, it is refused naming the field
    weight = next((f for f in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"/sys/fs/cgroup/blkio/{f}")), None)
    if weight:
        res["blockIO"] = {"weight": 300}
    else:
        with pytest.raises(OcirtError, match="blockIO.weight: not supported by this host"):
            make({"blockIO": {"weight": 300}}, name="refused")
    cg = make(res)
    assert read(cg, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert read(cg, "memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert read(cg, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(cg, "memory", "memory.swappiness") == "20"
    assert read(cg, "cpu", "cpu.shares") == "512"
    assert read(cg, "cpu", "cpu.cfs_quota_us") == "25000"
    assert read(cg, "cpu", "cpu.cfs_burst_us") == "1000"
    assert read(cg, "cpuset", "cpuset.cpus") == cpus.split("-")[0]
    assert read(cg, "pids", "pids.max") == "17"
    if weight:
        assert read(cg, "blkio", weight).split()[-1] == "300"
    devs = read(cg, "devices", "devices.list").splitlines()
    assert "b 7:0 r" in devs and "c 1:3 rwm" in devs and "a *:* rwm" not in devs
    # update: grow memory past the old memsw limit (memsw must be raised first)
    cg.update({"memory": {"limit": 128 << 20, "swap": 256 << 20}, "pids": {"limit": -1}})
    assert read(cg, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert read(cg, "pids", "pids.max") == "max"
    assert "b 7:0 r" in read(cg, "devices", "devices.list").splitlines()   # update without devices keeps them


def test_pids_limit_makes_fork_fail(make):
    check_pids_limit(make({"pids": {"limit": 5}}), 5)


def test_memory_limit_oom_kills_and_is_counted(make):
    cg = make({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    check_oom(cg)
    assert cg.stats()["memory"]["usage"]["max"] == 32 << 20      # the peak reached the limit


def test_freeze_and_thaw_a_counting_process(make, tmp_path):
    check_freeze(make(), tmp_path)


def test_pids_and_kill_all(make):
    check_kill_all(make(), signal.SIGKILL)
    check_kill_all(make(name="term"), signal.SIGTERM)


def test_stats_in_runc_shape(make):
    cg = make({"pids": {"limit": 50}, "memory": {"limit": 100 << 20}})
    s = stats_while_running(cg, "import time\nx = b'y' * (8 << 20)\nsum(range(3000000))\nprint('ok', flush=True)\ntime.sleep(30)")
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["cpu"]["usage"]["total"] > 0 and len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert s["memory"]["usage"]["limit"] == 100 << 20 and s["memory"]["usage"]["usage"] >= 8 << 20
    assert s["memory"]["raw"]["total_rss"] + s["memory"]["raw"]["total_cache"] > 0
    assert s["cpuset"]["cpus"] and "sched_load_balance" in s["cpuset"]


def test_destroy_leaves_nothing_and_missing_is_fine(make):
    cg = make()
    p = spawn(cg, "import time; time.sleep(30)")
    cg.kill_all(signal.SIGKILL)
    p.wait()
    cg.destroy()
    cg.destroy()
    assert not [d for d in cg.unique_dirs() if os.path.exists(d)]


@pytest.mark.parametrize("res,where", [
    ({"memory": {"limit": 1 << 20, "swap": 1 << 19}}, "linux.resources.memory.swap"),   # kernel: memsw < memory
    ({"memory": {"swappiness": 200}}, "linux.resources.memory.swappiness"),
    ({"memory": {"useHierarchy": False}}, "linux.resources.memory.useHierarchy"),         # kernel forces it on
    ({"cpu": {"cpus": "4096"}}, "linux.resources.cpu.cpus"),
    ({"unified": {"memory.max": "1"}}, "linux.resources.unified"),
    ({"devices": [{"allow": True, "type": "z"}]}, "linux.resources.devices[0].type"),
])
def test_failed_create_names_the_field_and_leaves_nothing(res, where):
    cg = cgroups.for_container(f"/{PARENT}/bad", "x")
    with pytest.raises(OcirtError) as e:
        cg.create(res)
    assert e.value.where == where, str(e.value)
    assert not [d for d in cg.unique_dirs() if os.path.exists(d)]


def host_lacks(cg, ctrl):
    return ctrl not in cg.dirs


def test_what_the_host_lacks_is_an_error_not_a_skip():
    cg = cgroups.for_container(f"/{PARENT}/lack", "x")
    lacking = {"net_cls": ({"network": {"classID": 1}}, "linux.resources.network.classID"),
               "rdma": ({"rdma": {"mlx5_0": {"hcaHandles": 1}}}, "linux.resources.rdma.mlx5_0")}
    tried = 0
    for ctrl, (res, where) in lacking.items():
        if host_lacks(cg, ctrl):
            tried += 1
            with pytest.raises(OcirtError) as e:
                cg.create(res)
            assert e.value.where == where and "not supported by this host" in str(e.value)
            assert not [d for d in cg.unique_dirs() if os.path.exists(d)]
    if not tried:
        pytest.skip("this host has net_cls and rdma")


def test_kernel_memory_is_ignored():
    """Not written (the container warns of it): kernels ignore the file."""
    cg = cgroups.for_container(f"/{PARENT}/kmem", "x")
    cg.create({"memory": {"kernel": 64 << 20, "kernelTCP": 32 << 20}})
    try:
        for f in ("memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes"):
            if os.path.exists(os.path.join(cg.dirs["memory"], f)):
                assert read(cg, "memory", f) not in (str(64 << 20), str(32 << 20))
    finally:
        cg.destroy()


def test_hugetlb_on_hybrid_uses_cgroup2_or_says_why(request):
    cg = cgroups.for_container(f"/{PARENT}/huge", "x")
    if "hugetlb" in cg.dirs or "" not in cg.dirs:
        pytest.skip("hugetlb is a v1 controller here, not on the cgroup2 side")
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}
    try:
        cg.create(res)
    except OcirtError as e:
        # the host keeps hugetlb out of the unified root's subtree_control,
        # which the tests must not change
        assert e.where == "linux.resources.hugepageLimits[0].limit" and "hugetlb controller is not enabled" in str(e)
        say(request, "hybrid hugetlb: not enabled below the cgroup2 root; refused with the field named")
        return
    try:
        assert open(f"{cg.v2_dir()}/hugetlb.2MB.max").read().strip() == str(4 << 20)
        say(request, "hybrid hugetlb: limit set in the cgroup2 hierarchy")
    finally:
        cg.destroy()


def test_the_warm_up_writes_the_runtimes_own_cgroup_and_moves_nothing():
    """cgroups.warm moves this process to where it is, in a thread: each
    path own_v1_procs names lists this process, and after the warm-up
    /proc/self/cgroup is as it was."""
    from ocirt.cgroups import Placement, own_v1_procs, warm
    placement = Placement()
    procs = own_v1_procs(placement)
    assert procs and procs == own_v1_procs()  # read again: the same
    for path in procs.values():
        with open(path) as f:
            assert str(os.getpid()) in f.read().split(), path
    with open("/proc/self/cgroup") as f:
        before = f.read()
    done = warm.start(placement)
    assert done is not None and done.acquire(timeout=10)
    with open("/proc/self/cgroup") as f:
        assert f.read() == before
