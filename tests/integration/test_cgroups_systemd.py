"""The systemd cgroup driver (--systemd-cgroup): a transient scope per
container, made and removed over D-Bus. The real tests need systemd as PID 1
on cgroup v2 (tests/vm/run-systemd-tests.sh runs them in the VM); on a host
without systemd only the refusal is tested."""
import os
import subprocess
import time

import pytest

SYSTEMD = os.path.isdir("/run/systemd/system") and os.path.exists("/sys/fs/cgroup/cgroup.controllers")
needs_systemd = pytest.mark.skipif(not SYSTEMD, reason="needs systemd as PID 1 on cgroup v2")


def sd(oci, b, path=None):
    """b with a systemd cgroupsPath: the scope sd-<id>.scope in system.slice."""
    b.config["linux"]["cgroupsPath"] = f"system.slice:sd:{b.cid}" if path is None else path
    return b


def show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def gone(unit):
    s = show(unit, "LoadState", "ActiveState")
    return s["LoadState"] == "not-found" or s["ActiveState"] == "inactive"


def one_line_error(res):
    assert res.rc == 1 and "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res
    return res.err.strip()


@pytest.mark.skipif(SYSTEMD, reason="this host runs systemd")
def test_without_systemd_the_error_names_the_flag(oci):
    b = sd(oci, oci.bundle("true"))
    before = oci.host_view()
    b.write()
    err = one_line_error(oci("--systemd-cgroup", "run", "--bundle", b.path, b.cid, check=False))
    assert err.startswith("ocirt: --systemd-cgroup: systemd is not running"), err
    assert oci.host_view() == before


@pytest.mark.parametrize("path, msg", [("nope", "slice:prefix:name"), ("a.scope:p:n", "invalid slice name"),
                                       ("system.slice:sd:a/b", "not a valid systemd unit name")])
def test_bad_cgroups_path_names_the_field(oci, path, msg):
    b = sd(oci, oci.bundle("true"), path)
    before = oci.host_view()
    b.write()
    err = one_line_error(oci("--systemd-cgroup", "run", "--bundle", b.path, b.cid, check=False))
    assert err.startswith("ocirt: config.json: linux.cgroupsPath: ") and msg in err, err
    assert oci.host_view() == before


@needs_systemd
def test_scope_with_resources_update_and_delete(oci):
    b = sd(oci, oci.bundle("sleep 60"))
    b.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20},
                                      "cpu": {"quota": 50000, "period": 100000, "shares": 1024}}
    b.write()
    oci("--systemd-cgroup", "create", "--bundle", b.path, b.cid)
    pid = oci.state(b.cid)["pid"]
    oci.pids.append(pid)
    unit, d = f"sd-{b.cid}.scope", f"/sys/fs/cgroup/system.slice/sd-{b.cid}.scope"
    props = show(unit, "ActiveState", "MemoryMax", "TasksMax", "Delegate", "CPUQuotaPerSecUSec", "Slice")
    assert props == {"ActiveState": "active", "MemoryMax": str(64 << 20), "TasksMax": "20",
                     "Delegate": "yes", "CPUQuotaPerSecUSec": "500ms", "Slice": "system.slice"}
    with open(f"/proc/{pid}/cgroup") as f:
        assert f.read() == f"0::/system.slice/{unit}\n"
    with open(d + "/cgroup.procs") as f:
        assert f.read().split() == [str(pid)]      # the helper is gone: only the init
    with open(d + "/cpu.max") as f:
        assert f.read() == "50000 100000\n"
    oci("update", "--memory", "128m", "--pids-limit", "30", b.cid)
    assert show(unit, "MemoryMax", "TasksMax") == {"MemoryMax": str(128 << 20), "TasksMax": "30"}
    with open(d + "/memory.max") as f:
        assert f.read() == f"{128 << 20}\n"
    oci("start", b.cid)
    assert oci("exec", b.cid, "cat", "/proc/self/cgroup").out == f"0::/system.slice/{unit}\n"
    oci("pause", b.cid)
    assert oci.status(b.cid) == "paused"
    oci("resume", b.cid)
    oci("delete", "--force", b.cid)
    assert gone(unit) and not os.path.exists(d)


@needs_systemd
def test_nested_slice_and_default_path(oci):
    b = oci.bundle("true")
    b.config["linux"]["cgroupsPath"] = f"sd-a-b.slice:sd:{b.cid}"
    b.write()
    oci("--systemd-cgroup", "create", "--bundle", b.path, b.cid)
    pid = oci.state(b.cid)["pid"]
    oci.pids.append(pid)
    with open(f"/proc/{pid}/cgroup") as f:
        assert f.read() == f"0::/sd.slice/sd-a.slice/sd-a-b.slice/sd-{b.cid}.scope\n"
    oci("delete", "--force", b.cid)
    assert gone(f"sd-{b.cid}.scope")
    subprocess.run(["systemctl", "stop", "sd-a-b.slice", "sd-a.slice", "sd.slice"], check=True)
    c = oci.bundle("true")
    c.config["linux"]["cgroupsPath"] = ""
    c.write()
    oci("--systemd-cgroup", "create", "--bundle", c.path, c.cid)
    oci.pids.append(oci.state(c.cid)["pid"])
    assert show(f"ocirt-{c.cid}.scope", "ActiveState")["ActiveState"] == "active"
    oci("delete", "--force", c.cid)
    assert gone(f"ocirt-{c.cid}.scope")


@needs_systemd
def test_a_container_whose_scope_systemd_removed_deletes_cleanly(oci):
    b = sd(oci, oci.bundle("true"))
    b.write()
    oci("--systemd-cgroup", "create", "--bundle", b.path, b.cid)
    oci("start", b.cid)
    unit = f"sd-{b.cid}.scope"
    deadline = time.monotonic() + 20
    while not gone(unit) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone(unit) and oci.status(b.cid) == "stopped"
    res = oci("delete", b.cid)
    assert res.err == "" and not os.path.exists(f"/sys/fs/cgroup/system.slice/{unit}")


@needs_systemd
def test_run_in_the_foreground_and_a_failed_write_leaves_no_scope(oci):
    b = sd(oci, oci.bundle("cat /proc/self/cgroup"))
    b.write()
    res = oci("--systemd-cgroup", "run", "--bundle", b.path, b.cid)
    assert res.out == f"0::/system.slice/sd-{b.cid}.scope\n"
    assert gone(f"sd-{b.cid}.scope")
    c = sd(oci, oci.bundle("true"))
    c.config["linux"]["resources"] = {"unified": {"memory.bogus": "1"}}
    before = oci.host_view()
    c.write()
    err = one_line_error(oci("--systemd-cgroup", "run", "--bundle", c.path, c.cid, check=False))
    assert "linux.resources.unified" in err, err
    assert gone(f"sd-{c.cid}.scope") and oci.host_view() == before
