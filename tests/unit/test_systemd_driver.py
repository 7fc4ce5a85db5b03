"""The systemd driver's pure half: cgroupsPath, slices, unit properties."""
import os
import shutil
import time

import pytest

from ocirt.cgroups import sdunit
from ocirt.errors import OcirtError

MAX = (1 << 64) - 1


@pytest.mark.parametrize("path, want", [
    ("", ("system.slice", "ocirt-ID.scope")),
    ("machine.slice:libpod:abc", ("machine.slice", "libpod-abc.scope")),
    (":docker:abc", ("system.slice", "docker-abc.scope")),
    ("system.slice::abc", ("system.slice", "abc.scope")),
    ("kubepods-besteffort-pod1.slice:cri-containerd:c1", ("kubepods-besteffort-pod1.slice", "cri-containerd-c1.scope")),
])
def test_unit_of(path, want):
    assert sdunit.unit_of(path, "ID") == want


@pytest.mark.parametrize("path, msg", [
    ("a:b", "slice:prefix:name"), ("a:b:c:d", "slice:prefix:name"), ("/x/y", "slice:prefix:name"),
    ("foo:p:n", "invalid slice name"), ("a--b.slice:p:n", "invalid slice name"),
    ("system.slice:p:", "not a valid systemd unit name"), ("system.slice:p:a/b", "not a valid"),
    ("system.slice:p:x.slice", "slice of its own"),
])
def test_bad_cgroups_path_names_the_field(path, msg):
    with pytest.raises(OcirtError) as e:
        sdunit.unit_of(path, "ID")
    assert msg in str(e.value) and "linux.cgroupsPath" in str(e.value)


@pytest.mark.parametrize("slice_, want", [
    ("system.slice", "/system.slice"), ("-.slice", "/"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
])
def test_expand_slice(slice_, want):
    assert sdunit.expand_slice(slice_) == want


@pytest.mark.parametrize("bad", [".slice", "-a.slice", "a-.slice", "a/b.slice", "a.scope"])
def test_expand_bad_slice(bad):
    with pytest.raises(OcirtError, match="invalid slice name"):
        sdunit.expand_slice(bad)


def test_resource_properties():
    props = sdunit.resource_properties({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,8", "mems": "0"},
        "pids": {"limit": 16}, "blockIO": {"weight": 500}})
    assert props == [("MemoryMax", "t", 64 << 20), ("MemoryLow", "t", 32 << 20),
                     ("MemorySwapMax", "t", 32 << 20), ("CPUWeight", "t", 100),
                     ("CPUQuotaPeriodUSec", "t", 100000), ("CPUQuotaPerSecUSec", "t", 500000),
                     ("AllowedCPUs", "ay", b"\x03\x01"), ("AllowedMemoryNodes", "ay", b"\x01"),
                     ("TasksMax", "t", 16), ("IOWeight", "t", 4950)]


def test_unlimited_values_are_infinity():
    props = dict((n, v) for n, _, v in sdunit.resource_properties(
        {"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}))
    assert props == {"MemoryMax": MAX, "MemorySwapMax": MAX, "TasksMax": MAX, "CPUQuotaPerSecUSec": MAX}


def test_nothing_asked_nothing_set():
    assert sdunit.resource_properties({}) == [] and sdunit.resource_properties(None) == []


@pytest.mark.parametrize("quota, period, want", [
    (12345, 100000, 130000),      # 12.345% rounds up to 13%: never below cpu.max
    (50000, 0, 500000),           # the default period
    (0, 50000, MAX),
])
def test_cpu_quota_per_sec(quota, period, want):
    assert sdunit.cpu_quota(quota, period)[-1] == ("CPUQuotaPerSecUSec", "t", want)


@pytest.mark.parametrize("text", [",", "3-1", "a", "1-x", "-1"])
def test_bad_cpu_list_names_the_field(text):
    with pytest.raises(OcirtError, match=r"linux\.resources\.cpu\.cpus"):
        sdunit.resource_properties({"cpu": {"cpus": text}})


def test_bad_swap_names_the_field():
    with pytest.raises(OcirtError, match=r"linux\.resources\.memory\.swap"):
        sdunit.resource_properties({"memory": {"limit": 100, "swap": 50}})


def test_an_update_names_its_own_field():
    with pytest.raises(OcirtError) as e:
        sdunit.resource_properties({"cpu": {"mems": "x"}}, where="")
    assert e.value.where == "cpu.mems"


def test_the_scope_is_reopened_from_the_state():
    import json
    from ocirt import cgroups
    from ocirt.cgroups.systemd import SystemdV2
    d = "/sys/fs/cgroup/a.slice/a-b.slice/p-n.scope"
    state = json.loads(json.dumps(SystemdV2({"": d}, "p-n.scope", "a-b.slice").to_state()))
    cg = cgroups.from_state(state)
    assert isinstance(cg, SystemdV2) and (cg.unit, cg.slice, cg.dir, cg.version) == ("p-n.scope", "a-b.slice", d, 2)


def test_for_container_needs_systemd_then_picks_the_hierarchy(monkeypatch, tmp_path):
    from ocirt import cgroups
    from ocirt.cgroups import paths, sdbus, systemd
    monkeypatch.setattr(sdbus, "BOOTED", str(tmp_path / "none"))
    with pytest.raises(OcirtError, match="^--systemd-cgroup: systemd is not running"):
        cgroups.for_container("", "ID", systemd=True)
    monkeypatch.setattr(sdbus, "BOOTED", str(tmp_path))
    monkeypatch.setattr(paths, "is_unified", lambda root=paths.ROOT: True)
    cg = cgroups.for_container("a-b.slice:p:n", "ID", systemd=True)
    assert cg.dir == "/sys/fs/cgroup/a.slice/a-b.slice/p-n.scope" and cg.holds_helper and cg.version == 2
    monkeypatch.setattr(paths, "is_unified", lambda root=paths.ROOT: root == paths.HYBRID_UNIFIED)
    monkeypatch.setattr(systemd.fs, "read", lambda path: HYBRID_MOUNTINFO)
    cg = cgroups.for_container("a-b.slice:p:n", "ID", systemd=True)
    inner = "/a.slice/a-b.slice/p-n.scope"
    assert cg.version == 1 and cg.holds_helper and cg.dirs == {
        "name=systemd": "/sys/fs/cgroup/systemd" + inner, "cpu": "/sys/fs/cgroup/cpu,cpuacct" + inner,
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct" + inner, "devices": "/sys/fs/cgroup/devices" + inner,
        "freezer": "/sys/fs/cgroup/freezer" + inner, "": "/sys/fs/cgroup/unified" + inner}


def test_a_rootless_scope_is_the_users_managers_on_cgroup_v2_only(monkeypatch, tmp_path):
    """The user bus, the default slice user.slice, under the user manager's
    own cgroup (runc's); kept in the state; v1 is refused."""
    import json
    from ocirt import cgroups
    from ocirt.cgroups import paths, sdbus
    monkeypatch.setattr(sdbus, "BOOTED", str(tmp_path))
    monkeypatch.setattr(sdbus, "Manager", FakeManager)
    monkeypatch.setattr(paths, "is_unified", lambda root=paths.ROOT: True)
    FakeManager.calls = []
    cg = cgroups.for_container("", "ID", systemd=True, rootless=True)
    assert FakeManager.calls == [("control_group", True)]
    assert cg.dir == "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/ocirt-ID.scope"
    assert (cg.slice, cg.user, cg.rootless) == ("user.slice", True, True)
    again = cgroups.from_state(json.loads(json.dumps(cg.to_state())))
    assert (again.user, again.dir) == (True, cg.dir)
    assert cgroups.from_state(cgroups.for_container("", "ID", systemd=True).to_state()).user is False
    monkeypatch.setattr(paths, "is_unified", lambda root=paths.ROOT: False)
    with pytest.raises(OcirtError, match="^--systemd-cgroup: a rootless container's cgroup needs cgroup v2"):
        cgroups.for_container("", "ID", systemd=True, rootless=True)


HYBRID_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 25 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
37 25 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
"""


def test_without_a_devices_controller_v1_is_refused(monkeypatch, tmp_path):
    from ocirt import cgroups
    from ocirt.cgroups import paths, sdbus, systemd
    monkeypatch.setattr(sdbus, "BOOTED", str(tmp_path))
    monkeypatch.setattr(paths, "is_unified", lambda root=paths.ROOT: False)
    monkeypatch.setattr(systemd.fs, "read", lambda path: HYBRID_MOUNTINFO.replace(",devices", ",pids"))
    with pytest.raises(OcirtError, match="^--systemd-cgroup: no devices cgroup"):
        cgroups.for_container("", "ID", systemd=True)


def test_the_v1_scope_is_reopened_from_the_state():
    import json
    from ocirt import cgroups
    from ocirt.cgroups.systemd import SystemdV1
    dirs = {"memory": "/sys/fs/cgroup/memory/system.slice/p-n.scope",
            "freezer": "/sys/fs/cgroup/freezer/system.slice/p-n.scope"}
    state = json.loads(json.dumps(SystemdV1(dirs, "p-n.scope", "system.slice").to_state()))
    cg = cgroups.from_state(state)
    assert isinstance(cg, SystemdV1) and (cg.unit, cg.slice, cg.dirs, cg.version) == ("p-n.scope", "system.slice", dirs, 1)
    sub = cg.with_dirs({"freezer": dirs["freezer"] + "/x"})   # what exec --cgroup's sub() makes
    assert isinstance(sub, SystemdV1) and (sub.unit, sub.slice) == ("p-n.scope", "system.slice")


def test_v1_resource_properties():
    props = sdunit.resource_properties({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": -1}, "blockIO": {"weight": 500}}, version=1)
    assert props == [("MemoryLimit", "t", 64 << 20), ("CPUShares", "t", 512),
                     ("CPUQuotaPeriodUSec", "t", 100000), ("CPUQuotaPerSecUSec", "t", 500000),
                     ("BlockIOWeight", "t", 500), ("TasksMax", "t", MAX), ("AllowedCPUs", "ay", b"\x01")]


def test_v1_accounting_is_block_io():
    names = [n for n, _, _ in sdunit.unit_properties("system.slice", "ID", version=1)]
    assert "BlockIOAccounting" in names and "IOAccounting" not in names


def test_a_create_that_failed_before_its_scope_needs_no_bus(monkeypatch):
    from ocirt.cgroups import sdbus
    from ocirt.cgroups.systemd import SystemdV2
    monkeypatch.setattr(sdbus, "Manager", None)   # any use of the bus would fail
    cg = SystemdV2({"": "/nonexistent/ocirt-test/p-n.scope"}, "p-n.scope", "system.slice")
    assert cg.create({"pids": {"limit": 5}}) == 0
    cg.kill_all(9)
    cg.destroy()


def test_dbus_signatures_split_into_complete_types():
    from ocirt.cgroups.sdbus import _types
    assert _types("ssa(sv)a(sa(sv))") == ["s", "s", "a(sv)", "a(sa(sv))"]
    assert _types("a(ss)bt") == ["a(ss)", "b", "t"] and _types("") == []
    with pytest.raises(ValueError):
        _types("(sv")


@pytest.fixture
def private_bus(tmp_path, monkeypatch):
    """A dbus-daemon of our own as the "system bus": no systemd behind it."""
    import subprocess
    if not shutil.which("dbus-daemon"):
        pytest.skip("no dbus-daemon (Debian: dbus)")
    sock = tmp_path / "bus"
    p = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address=unix:path={sock}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.01)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={sock}")
    yield sock
    p.kill()
    p.wait()


def test_a_bus_without_systemd_is_one_error_naming_the_flag(private_bus, monkeypatch):
    from ocirt.cgroups import sdbus
    m = sdbus.Manager()   # the match and Subscribe are sent unanswered: the first call tells
    for call in (lambda: m.stop("a-b.scope"), lambda: m.start_scope("a-b.scope", [])):
        with pytest.raises(OcirtError, match="^--systemd-cgroup: systemd does not answer on the system bus: "
                                             "(StopUnit|StartTransientUnit): "):
            call()
    m.close()
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={private_bus}.absent")
    with pytest.raises(OcirtError, match="^--systemd-cgroup: cannot connect to the system bus: "):
        sdbus.Manager()


class FakeManager:
    """systemd on v1: the scope's dirs in the hierarchies it manages, with their files."""
    calls, managed = [], {}

    def __init__(self, user=False):
        self.user = user

    def control_group(self):
        self.calls.append(("control_group", self.user))
        return "/user.slice/user-1000.slice/user@1000.service"

    def start_scope(self, unit, props):
        self.calls.append(("start", unit, {n: v for n, _, v in props}))
        for d, files in self.managed.items():
            os.makedirs(d)
            for f in files:
                open(f"{d}/{f}", "w").close()

    def stop(self, unit):
        self.calls.append(("stop", unit))

    def close(self):
        pass


def test_v1_start_around_makes_the_rest_and_stop_removes_it(monkeypatch, tmp_path):
    """systemd made the memory dir; ours are made after the scope starts, and
    the device policy and v1 properties went to StartTransientUnit."""
    from ocirt.cgroups import sdbus, systemd
    monkeypatch.setattr(sdbus, "Manager", FakeManager)
    dirs = {c: str(tmp_path / c / "system.slice/p-n.scope") for c in ("memory", "devices", "freezer")}
    FakeManager.calls = []
    FakeManager.managed = {dirs["memory"]: ["memory.limit_in_bytes"], dirs["devices"]: ["devices.allow", "devices.deny"]}
    cg = systemd.SystemdV1(dirs, "p-n.scope", "system.slice")
    assert cg.create({"memory": {"limit": 1 << 20}}) == 0 and not (tmp_path / "freezer").exists()
    cg.start_around(1234, "ID")
    (what, unit, props), = FakeManager.calls
    assert (what, unit, props["PIDs"], props["MemoryLimit"], props["DevicePolicy"]) == \
        ("start", "p-n.scope", [1234], 1 << 20, "strict") and props["BlockIOAccounting"]
    assert os.path.isdir(dirs["freezer"])
    with open(dirs["memory"] + "/memory.limit_in_bytes") as f:
        assert f.read() == str(1 << 20)
    monkeypatch.setattr(systemd.fs, "remove_tree", lambda d, **_: shutil.rmtree(d))
    cg.destroy()
    assert FakeManager.calls[-1] == ("stop", "p-n.scope") and not any(os.path.exists(d) for d in dirs.values())
