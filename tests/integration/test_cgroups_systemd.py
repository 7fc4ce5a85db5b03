"""The systemd cgroup driver (--systemd-cgroup): a transient scope per
container, made and removed over D-Bus. The real tests need systemd as PID 1
on cgroup v2 or on a hybrid (v1) host (tests/vm/run-systemd-tests.sh runs them
in the VM, in both modes); on a host without systemd only the refusal is tested."""
import json
import os
import subprocess
import time

import pytest

SYSTEMD = os.path.isdir("/run/systemd/system")
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
needs_systemd = pytest.mark.skipif(not SYSTEMD, reason="needs systemd as PID 1")
# the hierarchies a v1 scope must be in: systemd's own, one it manages, ones we make
V1_CHECKED = ("name=systemd", "memory", "devices", "freezer", "cpuset", "")


def cg_dir(path, ctrl="memory"):
    """The directory of cgroup path for controller ctrl (v1) or of cgroup v2."""
    return "/sys/fs/cgroup" + ("" if V2 else "/" + ("unified" if ctrl == "" else ctrl)) + path


def in_cgroup(text, path):
    """/proc/PID/cgroup text: the process is in path (in every checked v1 hierarchy)."""
    if V2:
        return text == f"0::{path}\n"
    lines = {c: line.split(":", 2)[2] for line in text.splitlines() for c in line.split(":", 2)[1].split(",")}
    return all(lines.get(c) == path for c in V1_CHECKED)


def all_gone(path):
    return not os.path.exists(cg_dir(path)) and (V2 or not any(
        os.path.exists(cg_dir(path, c)) for c in ("freezer", "cpuset", "devices", "")))


def read(path, v2_file, v1_ctrl, v1_file):
    with open(cg_dir(path, v1_ctrl) + "/" + (v2_file if V2 else v1_file)) as f:
        return f.read()


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
    unit = f"sd-{b.cid}.scope"
    path = f"/system.slice/{unit}"
    mem = "MemoryMax" if V2 else "MemoryLimit"
    props = show(unit, "ActiveState", mem, "TasksMax", "Delegate", "CPUQuotaPerSecUSec", "Slice")
    assert props == {"ActiveState": "active", mem: str(64 << 20), "TasksMax": "20",
                     "Delegate": "yes", "CPUQuotaPerSecUSec": "500ms", "Slice": "system.slice"}
    with open(f"/proc/{pid}/cgroup") as f:
        assert in_cgroup(f.read(), path)
    for ctrl in ("memory", "freezer", ""):          # the helper is gone: only the init
        assert read(path, "cgroup.procs", ctrl, "cgroup.procs").split() == [str(pid)], ctrl
    assert read(path, "cpu.max", "cpu", "cpu.cfs_quota_us") == ("50000 100000\n" if V2 else "50000\n")
    oci("update", "--memory", "128m", "--pids-limit", "30", b.cid)
    assert show(unit, mem, "TasksMax") == {mem: str(128 << 20), "TasksMax": "30"}
    assert read(path, "memory.max", "memory", "memory.limit_in_bytes") == f"{128 << 20}\n"
    oci("start", b.cid)
    assert in_cgroup(oci("exec", b.cid, "cat", "/proc/self/cgroup").out, path)
    assert json.loads(oci("ps", "--format", "json", b.cid).out) == [pid]
    assert "memory" in oci("events", "--stats", b.cid).out
    oci("pause", b.cid)
    assert oci.status(b.cid) == "paused"
    oci("resume", b.cid)
    oci("kill", "--all", b.cid, "KILL")
    deadline = time.monotonic() + 10
    while oci.status(b.cid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert oci.status(b.cid) == "stopped"
    oci("delete", "--force", b.cid)
    assert gone(unit) and all_gone(path)


@needs_systemd
def test_device_policy_holds_after_a_daemon_reload(oci):
    """systemd rewrites a scope's device filter on a reload: with our
    DeviceAllow it keeps the container's rules (denied stays denied)."""
    st = os.stat("/dev/vda")    # the VM's scratch disk
    b = sd(oci, oci.bundle("sleep 60"))
    b.config["linux"]["devices"] = [{"path": "/dev/xdisk", "type": "b", "major": os.major(st.st_rdev),
                                     "minor": os.minor(st.st_rdev), "fileMode": 0o600}]
    b.write()
    oci("--systemd-cgroup", "create", "--bundle", b.path, b.cid)
    oci.pids.append(oci.state(b.cid)["pid"])
    oci("start", b.cid)
    unit = f"sd-{b.cid}.scope"
    out = subprocess.run(["systemctl", "show", unit, "-p", "DevicePolicy", "-p", "DeviceAllow"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "DevicePolicy=strict" in out and "DeviceAllow=/dev/char/1:3 rwm" in out, out   # one line each
    assert "DeviceAllow=char-pts rwm" in out and not any(str(st.st_rdev) in line for line in out), out
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    res = oci("exec", b.cid, "sh", "-c", "head -c1 /dev/xdisk; echo rc=$?", check=False)
    assert "Operation not permitted" in res.out + res.err and "rc=1" in res.out, res
    res = oci("exec", b.cid, "sh", "-c", "head -c1 /dev/zero | wc -c; echo x > /dev/null && echo ok")
    assert res.out.split() == ["1", "ok"], res
    oci("delete", "--force", b.cid)
    assert gone(unit)


@needs_systemd
def test_nested_slice_and_default_path(oci):
    b = oci.bundle("true")
    b.config["linux"]["cgroupsPath"] = f"sd-a-b.slice:sd:{b.cid}"
    b.write()
    oci("--systemd-cgroup", "create", "--bundle", b.path, b.cid)
    pid = oci.state(b.cid)["pid"]
    oci.pids.append(pid)
    with open(f"/proc/{pid}/cgroup") as f:
        assert in_cgroup(f.read(), f"/sd.slice/sd-a.slice/sd-a-b.slice/sd-{b.cid}.scope")
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
    assert res.err == "" and all_gone(f"/system.slice/{unit}")


@needs_systemd
def test_run_in_the_foreground_and_a_failed_write_leaves_no_scope(oci):
    b = sd(oci, oci.bundle("cat /proc/self/cgroup"))
    b.write()
    res = oci("--systemd-cgroup", "run", "--bundle", b.path, b.cid)
    assert in_cgroup(res.out, f"/system.slice/sd-{b.cid}.scope")
    assert gone(f"sd-{b.cid}.scope")
    c = sd(oci, oci.bundle("true"))
    c.config["linux"]["resources"] = {"unified": {"memory.bogus": "1"}}
    before = oci.host_view()
    c.write()
    err = one_line_error(oci("--systemd-cgroup", "run", "--bundle", c.path, c.cid, check=False))
    assert "linux.resources.unified" in err, err
    assert gone(f"sd-{c.cid}.scope") and oci.host_view() == before
