"""runtime.md: state, lifecycle, operations and errors, seen from outside."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from .harness import SYSTEMD, cgroup_dirs_existing, cgroup_mounts, leftovers, pid_alive, procs_rooted_at, read

clause = pytest.mark.clause
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
KNOWN_STATUS = {"creating", "created", "running", "stopped", "paused"}


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def wait_file(path, timeout=10):
    return wait_for(lambda: os.path.exists(path), timeout)


def check_state_shape(st, b):
    assert isinstance(st["ociVersion"], str) and SEMVER.match(st["ociVersion"]), st
    assert st["id"] == b.cid
    assert st["status"] in KNOWN_STATUS, st
    assert st["bundle"] == os.path.realpath(b.path) or st["bundle"] == b.path, st
    assert os.path.isabs(st["bundle"])
    assert isinstance(st.get("annotations", {}), dict)
    if st["status"] in ("created", "running"):
        assert isinstance(st["pid"], int) and st["pid"] > 0, st


@clause("runtime.scope.1", "runtime.create.3", "runtime.create.6", "runtime.start.4", "runtime.start.5",
        "runtime.kill.3", "runtime.kill.4", "runtime.lifecycle.start.1", "runtime.state.op.3",
        "runtime.state.json.1", "runtime.state.status.1", "runtime.operations.1", "runtime.delete.4",
        "runtime.lifecycle.delete.1")
def test_full_lifecycle(ct):
    b = ct.bundle("echo started > /out/started; trap 'echo usr1 >> /out/sig' USR1; "
                  "while :; do sleep 0.05; done")
    b.config["annotations"] = {"org.example.key": "value", "conformance": ""}
    ct.create(b)
    st = ct.rt.state(b.cid)
    check_state_shape(st, b)
    assert st["status"] == "created"
    assert st["annotations"] == b.config["annotations"]
    pid = st["pid"]
    assert pid_alive(pid)
    assert not os.path.exists(os.path.join(b.out, "started")), "user program ran during create"

    ct.rt("start", b.cid)
    st = ct.rt.state(b.cid)
    check_state_shape(st, b)
    assert st["status"] == "running" and st["pid"] == pid
    assert wait_file(os.path.join(b.out, "started"))
    # pid is the host's view of the container process, which now runs the user program
    assert read(f"/proc/{pid}/cmdline").split("\0")[0] == "sh"

    ct.rt("kill", b.cid, "USR1")
    assert wait_file(os.path.join(b.out, "sig")) and b.read_out("sig") == "usr1\n"
    assert ct.rt.state(b.cid)["status"] == "running"

    ct.rt("kill", b.cid, "KILL")
    st = ct.rt.wait_status(b.cid, "stopped")
    check_state_shape(st, b)
    assert st["status"] == "stopped"
    assert not pid_alive(pid)

    ct.rt("delete", b.cid)
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.kill.4", "runtime.state.op.3")
def test_status_stopped_after_exit(ct):
    b = ct.bundle("exit 0")
    ct.create(b)
    ct.rt("start", b.cid)
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"


@clause("runtime.lifecycle.create.3", "runtime.create.4", "runtime.lifecycle.create.1")
def test_create_does_not_run_user_program_but_creates_resources(ct):
    b = ct.bundle("echo ran > /out/ran")
    b.config["hostname"] = "created-host"
    ct.create(b)
    pid = ct.rt.state(b.cid)["pid"]
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(b.out, "ran"))
    # namespaces and cgroup exist already: the process is in them
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert cgroup_dirs_existing(b.linux["cgroupsPath"])


@clause("runtime.lifecycle.create.4")
def test_config_changes_after_create_have_no_effect(ct):
    b = ct.bundle("echo original > /out/which")
    ct.create(b)
    b.sh("echo changed > /out/which")
    b.config["hostname"] = "changed"
    b.write()
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    assert b.read_out("which") == "original\n"


@clause("runtime.state.op.2", "runtime.start.2", "runtime.delete.2", "runtime.kill.1")
@pytest.mark.parametrize("op", [("state",), ("start",), ("delete",), ("kill", "KILL")])
def test_operation_on_missing_container_errors(rt, op):
    res = rt(op[0], "conf-does-not-exist", *op[1:], check=False)
    assert res.rc != 0


@clause("runtime.state.op.1", "runtime.start.1", "runtime.kill.1", "runtime.delete.1", "runtime.create.1")
@pytest.mark.parametrize("op", ["state", "start", "kill", "delete", "create"])
def test_operation_without_id_errors(rt, tmp_path, op):
    res = rt(op, *(["--bundle", str(tmp_path)] if op == "create" else []), check=False)
    assert res.rc != 0


@clause("runtime.create.1", "runtime.errors.1")
def test_create_without_bundle_config_errors(ct, tmp_path):
    b = ct.bundle()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = ct.rt("create", "--bundle", str(empty), b.cid, check=False)
    assert res.rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.create.2", "runtime.state.id.1", "runtime.errors.1")
def test_duplicate_id_errors_and_keeps_first(ct):
    first = ct.bundle("sleep 30")
    ct.create(first)
    before = ct.rt.state(first.cid)
    second = ct.bundle("true")
    second.cid = first.cid
    res = ct.create(second, check=False)
    assert res.rc != 0
    after = ct.rt.state(first.cid)
    assert after["pid"] == before["pid"] and after["status"] == "created"
    assert after["bundle"] == before["bundle"]
    assert not cgroup_dirs_existing(second.linux.get("cgroupsPath"))


@clause("runtime.create.2", "runtime.errors.1")
@pytest.mark.parametrize("bad_id", ["../escape", "a/b", ""])
def test_invalid_id_errors(ct, bad_id):
    b = ct.bundle()
    b.cid = bad_id
    res = ct.create(b, check=False)
    assert res.rc != 0
    assert not os.path.exists(os.path.join(os.path.dirname(ct.rt.root), "escape"))
    assert procs_rooted_at(ct.rootfs) == [] and not cgroup_dirs_existing(b.linux.get("cgroupsPath"))


@clause("runtime.create.5", "runtime.lifecycle.create.2", "runtime.errors.1")
def test_create_failing_late_leaves_nothing(ct):
    b = ct.bundle()
    b.mount("/mnt/a", "no-such-filesystem-type", "none")
    res = ct.create(b, check=False)
    assert res.rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.create.5", "runtime.lifecycle.create.2", "runtime.errors.1")
def test_create_with_missing_executable_leaves_nothing(ct):
    b = ct.bundle(args=["/bin/no-such-program"])
    res = ct.create(b, check=False)
    if res.rc == 0:  # runtimes may find out only at start: that must fail then
        assert ct.rt("start", b.cid, check=False).rc != 0
        return
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.start.3")
def test_start_twice_errors_without_effect(ct):
    b = ct.bundle("sleep 30")
    ct.create(b)
    ct.rt("start", b.cid)
    pid = ct.rt.state(b.cid)["pid"]
    assert ct.rt("start", b.cid, check=False).rc != 0
    st = ct.rt.state(b.cid)
    assert st["status"] == "running" and st["pid"] == pid and pid_alive(pid)


@clause("runtime.start.3")
def test_start_stopped_container_errors(ct):
    b = ct.bundle("true")
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    assert ct.rt("start", b.cid, check=False).rc != 0
    assert ct.rt.state(b.cid)["status"] == "stopped"


@clause("runtime.kill.2")
def test_kill_stopped_container_errors(ct):
    b = ct.bundle("true")
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    assert ct.rt("kill", b.cid, "KILL", check=False).rc != 0
    assert ct.rt.state(b.cid)["status"] == "stopped"


@clause("runtime.kill.3")
def test_kill_all_reaches_what_outlives_init(ct):
    """Without a pid namespace, a container's processes outlive its init:
    `kill --all` on the stopped container signals them (as runc's shim calls it)."""
    b = ct.bundle("sleep 300 & echo $! > /out/bg")
    b.drop_namespace("pid")
    ct.create(b)
    ct.rt("start", b.cid)
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    assert wait_file(os.path.join(b.out, "bg"))
    bg = int(b.read_out("bg"))
    assert pid_alive(bg)
    ct.rt("kill", "--all", b.cid, "KILL")
    assert wait_for(lambda: not pid_alive(bg))
    ct.rt("kill", "--all", b.cid, "KILL")  # nothing left to signal is not an error
    assert ct.rt("kill", b.cid, "KILL", check=False).rc != 0


@clause("runtime.kill.3", "runtime.kill.4")
def test_kill_created_container_stops_it(ct):
    b = ct.bundle("echo ran > /out/ran")
    ct.create(b)
    ct.rt("kill", b.cid, "KILL")
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    assert not os.path.exists(os.path.join(b.out, "ran"))


@clause("runtime.kill.3")
def test_kill_default_and_numeric_signal(ct):
    b = ct.bundle("trap 'echo term > /out/sig; exit 0' TERM; echo up > /out/up; while :; do sleep 0.05; done")
    ct.create(b)
    ct.rt("start", b.cid)
    assert wait_file(os.path.join(b.out, "up"))
    ct.rt("kill", b.cid, str(int(signal.SIGTERM)))
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    assert b.read_out("sig") == "term\n"


@clause("runtime.delete.3")
def test_delete_running_container_errors(ct):
    b = ct.bundle("sleep 30")
    ct.create(b)
    ct.rt("start", b.cid)
    pid = ct.rt.state(b.cid)["pid"]
    assert ct.rt("delete", b.cid, check=False).rc != 0
    assert ct.rt.state(b.cid)["status"] == "running" and pid_alive(pid)
    assert cgroup_dirs_existing(b.linux["cgroupsPath"])


@clause("runtime.delete.4", "runtime.lifecycle.delete.1")
def test_delete_created_container_removes_everything(ct):
    b = ct.bundle("sleep 30")
    ct.create(b)
    pid = ct.rt.state(b.cid)["pid"]
    ct.rt("kill", b.cid, "KILL")
    ct.rt.wait_status(b.cid, "stopped")
    ct.rt("delete", b.cid)
    assert not pid_alive(pid)
    assert leftovers(ct.rt, b, ct.rootfs) == []


@pytest.mark.skipif(SYSTEMD, reason="gives cgroupfs parents, which --systemd-cgroup refuses")
@clause("runtime.delete.5")
def test_delete_keeps_what_the_container_did_not_create(ct):
    keep_cg = f"{ct.cg_parent}/keep-{os.getpid()}"
    b = ct.bundle("echo x > /out/file")
    b.linux["cgroupsPath"] = keep_cg + "/" + b.cid
    # a pre-existing parent cgroup, made here, not by the container
    made = []
    for base in cgroup_mounts().values():
        d = os.path.join(base, keep_cg.lstrip("/"))
        try:
            os.makedirs(d)
            made.append(d)
        except OSError:
            pass
    try:
        ct.run(b)
        assert os.path.isdir(b.out) and b.read_out("file") == "x\n"
        assert all(os.path.isdir(d) for d in made)
    finally:  # ours, made here: removed whatever the runtime did
        for d in made:
            if os.path.isdir(d):
                os.rmdir(d)


@clause("runtime.delete.4")
def test_run_then_nothing_left(ct):
    b = ct.bundle("echo hello")
    res = ct.run(b)
    assert res.out == "hello\n"
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.lifecycle.start.1")
def test_run_exit_status_is_the_programs(ct):
    assert ct.run(ct.bundle("exit 7"), check=False).rc == 7


@clause("runtime.state.json.1")
def test_state_output_is_one_json_object(ct):
    b = ct.bundle("sleep 30")
    ct.create(b)
    out = ct.rt("state", b.cid).out
    st = json.loads(out)
    assert isinstance(st, dict)
    for key, kind in (("ociVersion", str), ("id", str), ("status", str), ("bundle", str), ("pid", int)):
        assert isinstance(st.get(key), kind), (key, st)


@pytest.mark.parametrize("args", [["--version"], ["list"], ["state", "{cid}"]])
def test_closed_stdout_ends_quietly_by_sigpipe(ct, args):
    """`RUNTIME list | head -1`: a reader that went away is no error of the
    runtime's; like a C tool (and runc) it ends by SIGPIPE, saying nothing."""
    b = ct.bundle("sleep 30")
    ct.create(b)
    argv = [ct.rt.binary, "--root", ct.rt.root, *(a.format(cid=b.cid) for a in args)]
    for _ in range(5):                  # the read end is closed before the runtime starts
        r, w = os.pipe()
        os.close(r)
        try:
            res = subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, timeout=10)
        finally:
            os.close(w)
        assert res.returncode == -signal.SIGPIPE and res.stderr == b"", res
