"""config-linux.md § Control groups: cgroupsPath, resources, the device allow list,
unified, ownership. The driver (v1, or v2 when /sys/fs/cgroup is cgroup2) is
detected at run time; resources are read from the host's cgroup files."""
import os

import pytest

from .harness import SYSTEMD, cgroup_dir, cgroup_driver, cgroup_mounts, leftovers, read, systemd_scope_path

clause = pytest.mark.clause
V2 = cgroup_driver() == "v2"


def cg_file(controller, path, name):
    d = cgroup_dir("" if V2 else controller, path)
    return None if d is None else os.path.join(d, name)


def need(controller, name):
    """Skip (with the reason) when this machine lacks the controller or file."""
    if V2:   # enabled for the root's children: ocirt leaves the root's own setting to the host
        ctrls = read(os.path.join(cgroup_mounts()[""], "cgroup.subtree_control")).split()
        if controller not in ctrls:
            pytest.skip(f"cgroup v2 controller {controller} is not enabled below the root here")
    elif controller not in cgroup_mounts():
        pytest.skip(f"cgroup v1 controller {controller} is not mounted here")


def created(ct, b):
    ct.create(b)
    return ct.rt.state(b.cid)["pid"]


def value(controller, path, name):
    f = cg_file(controller, path, name)
    if not os.path.exists(f):
        pytest.skip(f"{f} does not exist on this kernel")
    return read(f).strip()


cgroupfs_paths = pytest.mark.skipif(SYSTEMD,
                                    reason="gives a cgroupfs path, which --systemd-cgroup refuses")


@clause("linux.cgroupsPath.2")
def test_absolute_cgroups_path_is_under_the_mount_point(ct):
    b = ct.bundle("sleep 30")
    pid = created(ct, b)
    path = systemd_scope_path(b.linux["cgroupsPath"])
    lines = read(f"/proc/{pid}/cgroup").splitlines()
    if V2:
        assert f"0::{path}" in lines
    else:
        for ctrl in ("memory", "pids", "cpu", "devices"):
            if ctrl in cgroup_mounts():
                assert any(l.split(":")[1].split(",").count(ctrl) and l.endswith(":" + path) for l in lines), \
                    (ctrl, lines)
                assert os.path.isdir(cgroup_dir(ctrl, path))


@cgroupfs_paths
@clause("linux.cgroupsPath.3")
def test_same_cgroups_path_same_place(ct):
    path = f"{ct.cg_parent}/shared-{os.getpid()}"
    outs = []
    for _ in range(2):
        b = ct.bundle("cat /proc/self/cgroup")
        b.linux["cgroupsPath"] = path
        outs.append(sorted(l for l in ct.run(b).out.splitlines() if path in l))
    assert outs[0] and outs[0] == outs[1]


@clause("runtime.lifecycle.create.1")
def test_memory_resources(ct):
    need("memory", "")
    b = ct.bundle("sleep 30")
    b.linux["resources"]["memory"] = {"limit": 64 << 20, "reservation": 32 << 20}
    if not V2:   # v1 only: runc ignores them on v2, ocirt refuses them there
        b.linux["resources"]["memory"].update(swappiness=10, disableOOMKiller=True)
    created(ct, b)
    p = b.linux["cgroupsPath"]
    if V2:
        assert value("memory", p, "memory.max") == str(64 << 20)
        assert value("memory", p, "memory.low") == str(32 << 20)
    else:
        assert value("memory", p, "memory.limit_in_bytes") == str(64 << 20)
        assert value("memory", p, "memory.soft_limit_in_bytes") == str(32 << 20)
        assert value("memory", p, "memory.swappiness") == "10"
        assert "oom_kill_disable 1" in value("memory", p, "memory.oom_control")


@clause("runtime.warnings.1")
def test_kernel_memory_limits_are_warned_of_and_ignored(ct):
    """memory.kernel / kernelTCP (NOT RECOMMENDED since spec 1.1; no kernel
    honours kernel memory limits now): runc and crun warn and go on."""
    need("memory", "")
    b = ct.bundle("echo ran")
    b.linux["resources"]["memory"] = {"limit": 64 << 20, "kernel": 32 << 20, "kernelTCP": 16 << 20}
    res = ct.run(b, check=False)
    assert res.rc == 0 and res.out.strip() == "ran", res
    assert "warn" in res.err.lower() and "kernel memory" in res.err.lower(), res.err


@clause("runtime.lifecycle.create.1")
def test_memory_swap(ct):
    need("memory", "")
    b = ct.bundle("sleep 30")
    if not V2 and not os.path.exists(cg_file("memory", "/", "memory.memsw.limit_in_bytes")):
        pytest.skip("swap accounting (memory.memsw.*) is not enabled on this kernel")
    b.linux["resources"]["memory"] = {"limit": 64 << 20, "swap": 96 << 20}
    created(ct, b)
    p = b.linux["cgroupsPath"]
    if V2:
        assert value("memory", p, "memory.swap.max") == str(32 << 20)
    else:
        assert value("memory", p, "memory.memsw.limit_in_bytes") == str(96 << 20)


@clause("runtime.lifecycle.create.1")
def test_cpu_resources(ct):
    need("cpu", "")
    b = ct.bundle("sleep 30")
    b.linux["resources"]["cpu"] = {"shares": 512, "quota": 50000, "period": 100000}
    created(ct, b)
    p = b.linux["cgroupsPath"]
    if V2:
        assert value("cpu", p, "cpu.max") == "50000 100000"
    else:
        assert value("cpu", p, "cpu.shares") == "512"
        assert value("cpu", p, "cpu.cfs_quota_us") == "50000"
        assert value("cpu", p, "cpu.cfs_period_us") == "100000"


@clause("runtime.lifecycle.create.1")
def test_cpuset_resources(ct):
    need("cpuset", "")
    b = ct.bundle("grep Cpus_allowed_list /proc/self/status")
    b.linux["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    assert ct.run(b).out.split()[-1] == "0"


@clause("runtime.lifecycle.create.1")
def test_pids_limit(ct):
    need("pids", "")
    b = ct.bundle("sleep 30")
    b.linux["resources"]["pids"] = {"limit": 42}
    created(ct, b)
    assert value("pids", b.linux["cgroupsPath"], "pids.max") == "42"


@clause("runtime.lifecycle.create.1")
def test_blkio_weight(ct):
    ctrl = "io" if V2 else "blkio"
    need(ctrl, "")
    name = "io.bfq.weight" if V2 else "blkio.weight"
    if not os.path.exists(cg_file(ctrl, ct.cg_parent, name)) and \
            not os.path.exists(os.path.join(cgroup_mounts()["" if V2 else ctrl], name)):
        pytest.skip(f"{name} needs the BFQ/CFQ I/O scheduler, not in use here")
    b = ct.bundle("sleep 30")
    b.linux["resources"]["blockIO"] = {"weight": 300}
    created(ct, b)
    assert value(ctrl, b.linux["cgroupsPath"], name).split()[-1] == "300"


@clause("runtime.lifecycle.create.1")
def test_hugepage_limits(ct):
    need("hugetlb", "")
    sizes = [d[len("hugepages-"):-2] for d in os.listdir("/sys/kernel/mm/hugepages")] \
        if os.path.isdir("/sys/kernel/mm/hugepages") else []
    if not sizes:
        pytest.skip("no huge page sizes on this machine")
    kb = int(sizes[0])
    size = f"{kb // 1024}MB" if kb >= 1024 else f"{kb}KB"
    b = ct.bundle("sleep 30")
    b.linux["resources"]["hugepageLimits"] = [{"pageSize": size, "limit": 4 * kb * 1024}]
    created(ct, b)
    assert value("hugetlb", b.linux["cgroupsPath"],
                 f"hugetlb.{size}.max" if V2 else f"hugetlb.{size}.limit_in_bytes") == str(4 * kb * 1024)


@clause("runtime.lifecycle.create.1")
def test_network_class_id(ct):
    if V2:
        pytest.skip("net_cls does not exist on cgroup v2")
    need("net_cls", "")
    b = ct.bundle("sleep 30")
    b.linux["resources"]["network"] = {"classID": 1048577}
    created(ct, b)
    assert value("net_cls", b.linux["cgroupsPath"], "net_cls.classid") == "1048577"


# Character devices that open without side effects and that runtimes do not allow
# by default (runc allows /dev/net/tun, for one).
PROBES = ["/dev/fuse", "/dev/loop-control", "/dev/vhost-net"]


def probe_device():
    for path in PROBES:
        if os.path.exists(path):
            st = os.stat(path)
            return path, os.major(st.st_rdev), os.minor(st.st_rdev)
    pytest.skip(f"none of {PROBES} exists here to test device access with")


def device_bundle(ct, rules):
    path, major, minor = probe_device()
    b = ct.bundle("(exec 3<>/dev/probe) 2>/dev/null && echo opened || echo denied")
    # a bind mount, not linux.devices: runtimes may allow listed devices on their own
    b.mount("/dev/probe", "bind", path, ["bind"])
    b.linux["resources"]["devices"] = [dict(r, major=major, minor=minor) if r.get("type") else r for r in rules]
    return b


@clause("linux.devices.allow.1")
def test_device_allow_list_allows(ct):
    b = device_bundle(ct, [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "access": "rw"}])
    assert ct.run(b).out.strip() == "opened"


@clause("linux.devices.allow.1")
def test_device_allow_list_denies(ct):
    b = device_bundle(ct, [{"allow": False, "access": "rwm"}])
    assert ct.run(b).out.strip() == "denied"


@clause("linux.devices.allow.1")
def test_device_allow_list_in_listed_order(ct):
    b = device_bundle(ct, [{"allow": True, "type": "c", "access": "rw"},
                        {"allow": False, "type": "c", "access": "rwm"}])
    assert ct.run(b).out.strip() == "denied"


@clause("linux.unified.3", "runtime.errors.1")
def test_unified_for_a_missing_controller_is_an_error(ct):
    root = cgroup_mounts().get("" if V2 else "unified")
    present = read(os.path.join(root, "cgroup.controllers")).split() if root else []
    missing = next((c for c in ("pids", "rdma", "misc", "memory") if c not in present), None)
    if missing is None:
        pytest.skip("every candidate controller is enabled on the cgroup v2 hierarchy here")
    b = ct.bundle()
    b.linux["resources"]["unified"] = {f"{missing}.max": "10"}
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("linux.cgroups.owner.1")
def test_cgroup_ownership_unchanged_on_v1(ct):
    if V2:
        pytest.skip("a cgroup v1 rule; this machine uses cgroup v2")
    b = ct.bundle("sleep 30")
    b.process["user"] = {"uid": 1000, "gid": 1000}
    created(ct, b)
    for ctrl in ("memory", "pids"):
        st = os.stat(cgroup_dir(ctrl, b.linux["cgroupsPath"]))
        assert (st.st_uid, st.st_gid) == (0, 0), ctrl
