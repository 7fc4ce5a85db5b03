"""The cgroup v2 driver for real. On a pure cgroup v2 host (the VM of
tests/vm/run-v2-tests.sh) everything is tested; on a hybrid host, what its
cgroup2 mount at /sys/fs/cgroup/unified allows without controllers
(create, cgroup.procs, cgroup.events, cgroup.freeze, cgroup.kill, the eBPF
device filter, hugetlb if the host enabled it), and that resources needing
a missing controller are refused, naming the field."""
import errno
import json
import os
import signal
import stat

import pytest

import ocirt.cgroups as cgroups
from ocirt.cgroups import bpf, fs, paths
from ocirt.cgroups.v2 import V2
from ocirt.errors import OcirtError
from test_cgroups_common import (PARENT, check_freeze, check_kill_all, check_oom, check_pids_limit,
                                 needs_root, say, spawn, stats_while_running)

PURE = paths.is_unified()
HYBRID = not PURE and paths.is_unified(paths.HYBRID_UNIFIED)
ROOT = paths.ROOT if PURE else paths.HYBRID_UNIFIED
pytestmark = [needs_root, pytest.mark.skipif(not (PURE or HYBRID), reason="no cgroup2 hierarchy on this host")]
pure_only = pytest.mark.skipif(not PURE, reason="needs controllers: runs on a pure cgroup v2 host (tests/vm/run-v2-tests.sh)")


@pytest.fixture(scope="module", autouse=True)
def parent(request):
    top = f"{ROOT}/{PARENT}"
    assert not os.path.exists(top)
    where = ("a pure cgroup v2 host (/sys/fs/cgroup is cgroup2)" if PURE else
             f"this hybrid host's cgroup2 mount {paths.HYBRID_UNIFIED} (no controllers)")
    say(request, f"cgroup v2 driver: running on {where}, under {top}")
    yield
    fs.remove_tree(top)


@pytest.fixture
def make():
    made = []

    def make(resources=None, name="c"):
        cg = cgroups.for_container(f"/{PARENT}/{name}", "x") if PURE else V2({"": f"{ROOT}/{PARENT}/{name}"})
        made.append(cg)
        cg.create(resources)
        return cg
    yield make
    for cg in made:
        cg.kill_all(signal.SIGKILL)
        cg.destroy()


def read(cg, file):
    return fs.read(f"{cg.v2_dir()}/{file}")


def test_create_join_events_and_state(make):
    cg = make()
    assert cg.version == 2 and cg.join_files() == [cg.v2_dir() + "/cgroup.procs"]
    assert cgroups.from_state(json.loads(json.dumps(cg.to_state()))).dirs == cg.dirs
    assert fs.read_keyed(cg.v2_dir() + "/cgroup.events")["populated"] == 0
    p = spawn(cg, "import time; print('in', flush=True); time.sleep(30)")
    assert p.stdout.readline() == "in\n"
    assert cg.pids() == [p.pid] and read(cg, "cgroup.procs") == str(p.pid)
    assert fs.read_keyed(cg.v2_dir() + "/cgroup.events")["populated"] == 1
    cg.kill_all(signal.SIGKILL)
    p.wait()
    assert fs.wait_for(lambda: fs.read_keyed(cg.v2_dir() + "/cgroup.events")["populated"] == 0, 10)


def test_add_moves_a_running_process(make):
    cg = make()
    p = spawn(make(name="other"), "import time; time.sleep(30)")
    try:
        cg.add(p.pid)
        assert cg.pids() == [p.pid]
    finally:
        p.kill()
        p.wait()


def test_freeze_and_thaw_a_counting_process(make, tmp_path):
    check_freeze(make(), tmp_path, settle=0.3 if HYBRID else 2)


def test_kill_all_with_cgroup_kill_and_with_signals(make):
    cg = make()
    assert os.path.exists(cg.v2_dir() + "/cgroup.kill")
    check_kill_all(cg, signal.SIGKILL)
    check_kill_all(make(name="term"), signal.SIGTERM)


def opens(cg, node, flags):
    """errno of open(node, flags) by a process in cg (0: it opened)."""
    p = spawn(cg, f"import os\ntry:\n os.close(os.open({node!r}, {flags}))\n print(0)\n"
                  f"except OSError as e:\n print(e.errno)")
    out, err = p.communicate(timeout=60)
    return int(out)


@pytest.fixture
def loop_node(tmp_path):
    """A block device node b 7:0 on a file system that honours device nodes."""
    d = next(d for d in (str(tmp_path), "/dev") if not os.statvfs(d).f_flag & os.ST_NODEV)
    node = f"{d}/{PARENT}-loop"
    os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    yield node
    os.unlink(node)


def test_ebpf_device_filter(make, loop_node):
    node = loop_node
    cg = make({"devices": [{"allow": True, "type": "b", "major": 7, "minor": 0, "access": "rw"},
                           {"allow": False, "type": "b", "major": 7, "minor": 0, "access": "w"}]})
    assert bpf.attached_count(cg.v2_dir()) == 1
    assert opens(cg, node, os.O_WRONLY) == errno.EPERM            # denied bit
    assert opens(cg, node, os.O_RDONLY) != errno.EPERM            # read not named by the deny rule
    cg.update({"devices": []})                                    # denied by default
    assert bpf.attached_count(cg.v2_dir()) == 1                   # the old program was replaced
    assert opens(cg, node, os.O_RDONLY) == errno.EPERM
    assert opens(cg, "/dev/null", os.O_WRONLY) == 0               # runc's default rules follow


def test_hugetlb_limit_or_reason(make, request):
    sizes = [s for s in os.listdir("/sys/kernel/mm/hugepages")]
    if not sizes:
        pytest.skip("no huge page sizes on this kernel")
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}
    try:
        cg = make(res, name="huge")
    except OcirtError as e:
        assert not PURE, str(e)
        assert e.where == "linux.resources.hugepageLimits[0].limit" and "hugetlb controller is not enabled" in e.msg
        say(request, "cgroup v2 hugetlb: not enabled below this host's cgroup2 root (left as the host set it); "
                     "refused, naming the field")
        return
    assert read(cg, "hugetlb.2MB.max") == str(4 << 20)
    assert "2MB" in cg.stats()["hugetlb"]


@pytest.mark.skipif(PURE, reason="on a pure v2 host the controllers are there")
def test_missing_controller_is_an_error_naming_the_field(make):
    for res, where in (({"memory": {"limit": 1 << 30}}, "linux.resources.memory.limit"),
                       ({"pids": {"limit": 10}}, "linux.resources.pids.limit"),
                       ({"unified": {"memory.high": "1G"}}, "linux.resources.unified.memory.high")):
        with pytest.raises(OcirtError) as e:
            make(res, name="nomem")
        assert e.value.where == where and "controller is not enabled" in e.value.msg
        assert not os.path.exists(f"{ROOT}/{PARENT}/nomem")


@pure_only
def test_resources_written_and_read_back(make):
    res = {"memory": {"limit": 64 << 20, "reservation": 16 << 20},
           "cpu": {"shares": 2048, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 33},
           "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}]},
           "unified": {"memory.high": "50M"}}
    cg = make(res)
    assert "memory" in fs.read(f"{ROOT}/{PARENT}/cgroup.subtree_control").split()   # enabled by the driver
    assert read(cg, "memory.max") == str(64 << 20) and read(cg, "memory.low") == str(16 << 20)
    assert read(cg, "memory.high") == str(50 << 20)
    assert read(cg, "cpu.weight") == "174"             # runc 1.3's conversion of 2048 shares
    assert read(cg, "cpu.max") == "20000 100000"
    assert read(cg, "cpuset.cpus") == "0" and read(cg, "pids.max") == "33"
    assert read(cg, "io.max").startswith("254:0 rbps=2097152 ")
    cg.update({"memory": {"limit": 128 << 20}, "pids": {"limit": 0}})
    assert read(cg, "memory.max") == str(128 << 20) and read(cg, "pids.max") == "max"
    with pytest.raises(OcirtError) as e:
        cg.update({"memory": {"limit": 4096, "checkBeforeUpdate": True}}) if fs.read_int(
            cg.v2_dir() + "/memory.current") > 4096 else cg.update({"memory": {"swappiness": 1}})
    assert e.value.where.startswith("linux.resources.memory.")
    cg.update({"memory": {"kernel": 1, "kernelTCP": 1}})    # ignored, as by runc


@pure_only
def test_pids_limit_makes_fork_fail(make):
    check_pids_limit(make({"pids": {"limit": 4}}), 4)


@pure_only
def test_memory_limit_oom_kills_and_is_counted(make):
    cg = make({"memory": {"limit": 48 << 20, "swap": 48 << 20}})
    check_oom(cg)
    assert cg.stats()["memory"]["usage"]["failcnt"] > 0


@pure_only
def test_stats_in_runc_shape(make):
    cg = make({"pids": {"limit": 50}})
    s = stats_while_running(cg, "import time\nx = b'y' * (8 << 20)\nprint('ok', flush=True)\ntime.sleep(30)")
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["cpu"]["usage"]["total"] > 0
    assert s["memory"]["usage"]["usage"] >= 8 << 20 and s["memory"]["raw"]["anon"] >= 8 << 20
