"""The lifecycle commands on real containers through the ocirt binary (issue 2):
create/start/state/kill/delete/run/list/spec, what the container sees from
inside, user and joined namespaces, the console socket, and every error the
runtime-spec requires, each leaving the host as it was. Needs root."""
import json
import os
import re
import subprocess
import time
import uuid

import pytest
from conftest import OCIRT, REPO, ConsoleSocket, pid_alive, read_until

TIMEOUT_S = 20


def wait_status(oci, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while oci.status(cid) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return oci.status(cid)


def wait_file(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(path) as f:
        return f.read()


def out_dir(b):
    """A host directory bind-mounted at /out for what the container writes; next to
    the rootfs, where a user namespace's root can reach it."""
    d = os.path.join(os.path.dirname(b.config["root"]["path"]), "out-" + b.cid)
    os.makedirs(d, mode=0o777)
    os.chmod(d, 0o777)
    b.config["mounts"].append({"destination": "/out", "type": "bind", "source": d, "options": ["rbind", "rw"]})
    return d


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[0].decode()


# ---------------------------------------------------------------- state machine

def test_created_running_stopped_deleted(oci):
    before = oci.host_view()
    b = oci.bundle("sleep 30")
    oci.create(b)
    st = oci.state(b.cid)
    assert st["status"] == "created" and st["id"] == b.cid and st["bundle"] == b.path
    assert st["rootfs"] == b.config["root"]["path"] and st["ociVersion"] == "1.3.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", st["created"])
    pid = st["pid"]
    assert pid > 0 and pid_alive(pid)
    assert os.path.basename(cmdline(pid)) != "sleep"  # the user program is not run before start
    oci("start", b.cid)
    assert oci.status(b.cid) == "running"
    deadline = time.monotonic() + 5
    while cmdline(pid) != "sleep" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cmdline(pid) == "sleep"
    oci("kill", b.cid, "KILL")
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    assert oci.state(b.cid)["pid"] == 0
    oci("delete", b.cid)
    assert oci("state", b.cid, check=False).rc == 1
    assert oci.host_view() == before


def test_program_that_exits_is_stopped(oci):
    b = oci.bundle("true")
    oci.create(b)
    oci("start", b.cid)
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    oci("delete", b.cid)


def test_pid_file_is_digits_only(oci, tmp_path):
    b = oci.bundle("sleep 30")
    pid_file = tmp_path / "ctr.pid"
    oci.create(b, "--pid-file", str(pid_file))
    text = pid_file.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)
    assert int(text) == oci.state(b.cid)["pid"]
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("script, code", [("true", 0), ("exit 3", 3), ("exit 255", 255),
                                          ("kill -KILL $$", 128 + 9), ("kill -TERM $$", 128 + 15)])
def test_run_exit_code(oci, script, code):
    b = oci.bundle(script)
    # without a pid namespace: its pid 1 would ignore the signals it sends itself
    b.config["linux"]["namespaces"].remove({"type": "pid"})
    assert oci.run(b, check=False).rc == code
    assert oci("state", b.cid, check=False).rc == 1  # run deletes what it created


def run_in_background(oci, b):
    b.write()
    return subprocess.Popen([OCIRT, "--root", oci.root, "run", "--bundle", b.path, b.cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_foreground_run_can_be_exec_paused_and_killed_from_elsewhere(oci):
    b = oci.bundle("sleep 30")
    run = run_in_background(oci, b)
    try:
        assert wait_status(oci, b.cid, "running") == "running"
        assert oci("exec", b.cid, "echo", "in").out == "in\n"
        oci("pause", b.cid)
        assert oci.status(b.cid) == "paused"
        oci("resume", b.cid)
        oci("kill", b.cid, "KILL")
        assert run.wait(timeout=TIMEOUT_S) == 128 + 9
    finally:
        run.kill()
        run.wait()
    assert oci.status(b.cid) is None  # run deleted it


@pytest.mark.parametrize("what", ["run", "exec"])
def test_a_waiting_helper_is_not_in_the_containers_cgroup(oci, what):
    """ps lists only the container's processes, and kill --all does not take
    the helper that reports the exit status."""
    b = oci.bundle("sleep 30")
    if what == "run":
        waiter = run_in_background(oci, b)
        assert wait_status(oci, b.cid, "running") == "running"
        procs = [oci.state(b.cid)["pid"]]
    else:
        oci.create(b)
        oci("start", b.cid)
        waiter = subprocess.Popen([OCIRT, "--root", oci.root, "exec", b.cid, "sleep", "30"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while len(json.loads(oci("ps", "--format", "json", b.cid).out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        procs = json.loads(oci("ps", "--format", "json", b.cid).out)
        assert len(procs) == 2
    try:
        assert sorted(json.loads(oci("ps", "--format", "json", b.cid).out)) == sorted(procs)
        for pid in procs:
            assert not os.readlink(f"/proc/{pid}/exe").startswith("/memfd:ocirt-init")
        oci("kill", "--all", b.cid, "KILL")
        assert waiter.wait(timeout=TIMEOUT_S) == 128 + 9
    finally:
        waiter.kill()
        waiter.wait()


def test_a_foreground_run_deleted_from_elsewhere_leaves_the_new_owner_of_its_id_alone(oci):
    b = oci.bundle("sleep 30")
    run = run_in_background(oci, b)
    try:
        assert wait_status(oci, b.cid, "running") == "running"
        oci("delete", "--force", b.cid)
        assert run.wait(timeout=TIMEOUT_S) == 128 + 9
    finally:
        run.kill()
        run.wait()
    assert oci.status(b.cid) is None and not os.path.exists(os.path.join(oci.root, b.cid))


def test_run_detach(oci):
    b = oci.bundle("sleep 30")
    oci.run(b, "--detach")
    st = oci.state(b.cid)
    oci.pids.append(st["pid"])
    assert st["status"] == "running"
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("args, signo", [(["KILL"], 9), (["SIGKILL"], 9), (["9"], 9), (["TERM"], 15),
                                         ([], 15), (["USR1"], 10), (["sigusr2"], 12), (["12"], 12)])
def test_kill_signal_names_and_numbers(oci, args, signo):
    b = oci.bundle()
    out = out_dir(b)
    # pid 1 of a pid namespace ignores signals it has no handler for: trap them
    b.sh("for s in TERM USR1 USR2; do trap \"echo $s > /out/sig; exit 0\" $s; done; "
         "touch /out/ready; sleep 30 & wait")
    oci.create(b)
    oci("start", b.cid)
    wait_file(os.path.join(out, "ready"))
    oci("kill", b.cid, *args)
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    if signo != 9:
        assert wait_file(os.path.join(out, "sig")).strip() == {15: "TERM", 10: "USR1", 12: "USR2"}[signo]
    else:
        assert not os.path.exists(os.path.join(out, "sig"))
    oci("delete", b.cid)


def test_kill_all(oci):
    b = oci.bundle("sleep 30 & sleep 30 & touch /out/ready; wait")
    out = out_dir(b)
    oci.create(b)
    oci("start", b.cid)
    wait_file(os.path.join(out, "ready"))
    oci("kill", "--all", b.cid, "KILL")
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    oci("delete", b.cid)


def test_unknown_signal_is_an_error(oci):
    b = oci.bundle("sleep 30")
    oci.create(b)
    res = oci("kill", b.cid, "NOSUCH", check=False)
    assert res.rc == 1 and "NOSUCH" in res.err
    assert oci.status(b.cid) == "created"
    oci("delete", "--force", b.cid)


# ---------------------------------------------------------------- the inside

def test_hostname_env_cwd_user_seen_from_inside(oci):
    b = oci.bundle("hostname; echo $FOO; pwd; id -u; id -g; id -G; cat /proc/self/status")
    b.config["hostname"] = "inside-host"
    b.process["env"] = ["PATH=/bin", "FOO=bar baz"]
    b.process["cwd"] = "/tmp"
    b.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5]}
    lines = oci.run(b).out.splitlines()
    assert lines[:6] == ["inside-host", "bar baz", "/tmp", "1000", "1001", "1001 5"]
    status = dict(line.split(":", 1) for line in lines[6:] if ":" in line)
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["1001"] * 4


def test_environment_is_exactly_the_config(oci):
    """With HOME added from /etc/passwd when the config has none, as runc."""
    b = oci.bundle()
    b.process["args"] = ["env"]
    b.process["env"] = ["PATH=/bin", "A=1", "B="]
    assert sorted(oci.run(b).out.splitlines()) == ["A=1", "B=", "HOME=/root", "PATH=/bin"]
    b.process["env"].append("HOME=/x")
    assert sorted(oci.run(b).out.splitlines()) == ["A=1", "B=", "HOME=/x", "PATH=/bin"]


def test_user_namespace_with_mappings(oci):
    b = oci.bundle("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /out/x; "
                   "cat /proc/self/status")
    out = out_dir(b)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    lines = oci.run(b).out.splitlines()
    assert [line.split() for line in lines[:2]] == [["0", "200000", "65536"], ["0", "300000", "65536"]]
    assert lines[2:4] == ["0", "0"]
    st = os.stat(os.path.join(out, "x"))  # the container's root is 200000:300000 on the host
    assert (st.st_uid, st.st_gid) == (200000, 300000)
    cap_eff = [line for line in lines if line.startswith("CapEff:")][0]
    assert int(cap_eff.split()[1], 16) != 0  # root in its own namespace


@pytest.fixture
def netns():
    """A named network namespace made with `ip netns add`, removed afterwards."""
    name = f"ocirt-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "delete", name], check=False)


def test_join_network_namespace_by_path(oci, netns):
    b = oci.bundle("readlink /proc/self/ns/net; readlink /proc/self/ns/uts")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = netns
    net, uts = oci.run(b).out.split()
    assert net == f"net:[{os.stat(netns).st_ino}]"
    assert uts != os.readlink("/proc/self/ns/uts")  # the other namespaces are new


def test_join_namespace_of_another_container(oci):
    first = oci.bundle("sleep 30")
    oci.create(first)
    pid = oci.state(first.cid)["pid"]
    b = oci.bundle("readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] in ("ipc", "uts"):
            ns["path"] = f"/proc/{pid}/ns/{ns['type']}"
    assert oci.run(b).out.split() == [os.readlink(f"/proc/{pid}/ns/ipc"), os.readlink(f"/proc/{pid}/ns/uts")]
    oci("delete", "--force", first.cid)


# ---------------------------------------------------------------- terminal and stdin

def test_terminal_through_console_socket(oci, tmp_path):
    sock = str(tmp_path / "console.sock")
    rcv = ConsoleSocket(sock)
    rcv.start()
    b = oci.bundle()
    b.process["args"] = ["sh"]
    b.process["terminal"] = True
    oci.create(b, "--console-socket", sock)
    rcv.join(TIMEOUT_S)
    assert rcv.master is not None, "no pty master received"
    try:
        oci("start", b.cid)
        os.write(rcv.master, b"tty; echo answer-$((6*7)); exit 5\n")
        out = read_until(rcv.master, b"answer-42", TIMEOUT_S)
        assert b"answer-42" in out, out
        assert re.search(rb"/dev/pts/\d+", out), out
        assert wait_status(oci, b.cid, "stopped") == "stopped"
    finally:
        os.close(rcv.master)
    oci("delete", b.cid)


def test_terminal_without_console_socket_is_an_error(oci):
    before = oci.host_view()
    b = oci.bundle("true")
    b.process["terminal"] = True
    res = oci.create(b, check=False)
    assert res.rc == 1 and "console" in res.err
    assert oci.host_view() == before


@pytest.mark.parametrize("cmd, terminal", [("create", False), ("run", True), ("run --detach", False)])
def test_console_socket_without_a_detached_terminal_is_an_error(oci, tmp_path, cmd, terminal):
    """runc's rule: --console-socket is for a terminal the runtime leaves
    (create, run --detach); elsewhere it is refused before anything is made."""
    rcv = ConsoleSocket(str(tmp_path / "c.sock"))
    before = oci.host_view()
    b = oci.bundle("true")
    b.process["terminal"] = terminal
    b.write()
    res = oci(*cmd.split(), "--console-socket", str(tmp_path / "c.sock"), "--bundle", b.path, b.cid,
              check=False)
    assert res.rc == 1 and "cannot use console socket if" in res.err, res
    assert len(res.err.strip().splitlines()) == 1, res
    assert oci.host_view() == before
    rcv.srv.close()


def test_run_reads_stdin_from_a_pipe(oci):
    b = oci.bundle("read a; read b; echo got:$a:$b; cat")
    b.write()
    p = subprocess.run([OCIRT, "--root", oci.root, "run", "--bundle", b.path, b.cid],
                       input=b"one\ntwo\nrest\n", capture_output=True, timeout=TIMEOUT_S)
    assert (p.returncode, p.stdout) == (0, b"got:one:two\nrest\n"), p.stderr


# ---------------------------------------------------------------- list, spec, version

def test_list_table_json_quiet(oci):
    assert oci("list", "-q").out == ""
    a, b = oci.bundle("sleep 30"), oci.bundle("sleep 30")
    oci.create(a)
    oci.create(b)
    oci("start", b.cid)
    table = oci("list").out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {r.split()[0]: r.split() for r in table[1:]}
    assert rows[a.cid][2] == "created" and rows[b.cid][2] == "running"
    assert rows[a.cid][1] == str(oci.state(a.cid)["pid"]) and rows[a.cid][3] == a.path
    assert rows[a.cid][5] == "root"    # the state directory's owner (runc's)
    listed = {s["id"]: s for s in json.loads(oci("list", "--format", "json").out)}
    assert set(listed) == {a.cid, b.cid}
    assert listed[b.cid]["status"] == "running" and listed[b.cid]["pid"] == oci.state(b.cid)["pid"]
    assert listed[a.cid]["bundle"] == a.path and listed[a.cid]["owner"] == "root"
    assert oci("list", "-q").out.split() == sorted([a.cid, b.cid])


def test_spec_writes_config_and_refuses_to_overwrite(oci, tmp_path):
    res = oci("spec", "--bundle", str(tmp_path), root=False)
    assert res.rc == 0
    path = tmp_path / "config.json"
    cfg = json.loads(path.read_text())
    assert cfg["ociVersion"] == "1.3.0" and cfg["root"]["path"] == "rootfs"
    assert cfg["process"]["terminal"] is True and cfg["process"]["args"] == ["sh"]
    assert {n["type"] for n in cfg["linux"]["namespaces"]} >= {"pid", "mount", "network", "ipc", "uts"}
    path.write_text("{}")
    res = oci("spec", "--bundle", str(tmp_path), root=False, check=False)
    assert res.rc == 1 and "exists" in res.err
    assert path.read_text() == "{}"


def test_spec_in_current_directory_and_rootless(oci, tmp_path):
    p = subprocess.run([OCIRT, "spec", "--rootless"], cwd=tmp_path, capture_output=True, timeout=TIMEOUT_S)
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert {"type": "user"} in cfg["linux"]["namespaces"]
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 0, "size": 1}]


def test_version(oci):
    out = oci("--version", root=False).out
    assert re.match(r"ocirt version \d+\.\d+\.\d+", out) and "\nspec: 1.3.0\n" in out


def test_a_spec_bundle_runs(oci, tmp_path, busybox_rootfs):
    """The config `spec` writes runs as it is, apart from the terminal."""
    oci("spec", "--bundle", str(tmp_path), root=False)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["root"]["path"] = busybox_rootfs
    cfg["process"].update(terminal=False, args=["sh", "-c", "echo $((1+1)); hostname"])
    cfg["linux"]["cgroupsPath"] = f"{oci.cg_parent}/spec-{uuid.uuid4().hex[:8]}"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    b = oci.bundle()
    b.path, b.config = str(tmp_path), cfg
    res = oci("run", "--bundle", str(tmp_path), b.cid)
    assert res.out.split() == ["2", "ocirt"]


# ---------------------------------------------------------------- errors leave nothing

def assert_error(res, *fragments):
    assert res.rc == 1, res
    assert res.err.count("\n") == 1 and "Traceback" not in res.err, res
    for f in fragments:
        assert f in res.err, res


@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill"], ["delete"], ["kill", "--all"]])
def test_unknown_id(oci, cmd):
    before = oci.host_view()
    assert_error(oci(*cmd, "nosuch", check=False), '"nosuch" does not exist')
    assert oci.host_view() == before


def test_duplicate_id(oci):
    b = oci.bundle("sleep 30")
    oci.create(b)
    pid = oci.state(b.cid)["pid"]
    before = oci.host_view()
    again = oci.bundle("true")
    again.cid = b.cid
    again.config["linux"]["cgroupsPath"] = b.config["linux"]["cgroupsPath"] + "-2"
    assert_error(oci.create(again, check=False), "already exists")
    assert oci.host_view() == before
    st = oci.state(b.cid)  # the first one is untouched
    assert (st["status"], st["pid"], st["bundle"]) == ("created", pid, b.path)
    oci("delete", "--force", b.cid)


def test_start_twice(oci):
    b = oci.bundle("sleep 30")
    oci.create(b)
    oci("start", b.cid)
    before = oci.host_view()
    pid = oci.state(b.cid)["pid"]
    assert_error(oci("start", b.cid, check=False), "running")
    assert oci.status(b.cid) == "running" and oci.state(b.cid)["pid"] == pid
    assert oci.host_view() == before
    oci("delete", "--force", b.cid)


def test_start_of_a_stopped_container(oci):
    b = oci.bundle("true")
    oci.create(b)
    oci("start", b.cid)
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    assert_error(oci("start", b.cid, check=False), "stopped")
    oci("delete", b.cid)


def test_delete_of_a_running_container(oci):
    b = oci.bundle("sleep 30")
    oci.create(b)
    oci("start", b.cid)
    pid = oci.state(b.cid)["pid"]
    before = oci.host_view()
    assert_error(oci("delete", b.cid, check=False), "running")
    assert pid_alive(pid) and oci.status(b.cid) == "running"
    assert oci.host_view() == before
    oci("delete", "--force", b.cid)
    assert not pid_alive(pid)


def test_kill_of_a_stopped_container(oci):
    b = oci.bundle("true")
    oci.create(b)
    oci("start", b.cid)
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    before = oci.host_view()
    assert_error(oci("kill", b.cid, "KILL", check=False), "not running")
    assert oci.status(b.cid) == "stopped" and oci.host_view() == before
    oci("delete", b.cid)


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c["linux"]["namespaces"].__setitem__(1, {"type": "bogus"}), "linux.namespaces[1].type"),
    (lambda c: c["process"].__setitem__("args", []), "process.args"),
    (lambda c: c["process"].__setitem__("cwd", 7), "process.cwd"),
    (lambda c: c["mounts"][1].pop("destination"), "mounts[1]"),
    (lambda c: c["process"]["user"].__setitem__("uid", -1), "process.user.uid"),
    (lambda c: c.__setitem__("ociVersion", "banana"), "ociVersion"),
])
def test_invalid_config_names_the_field(oci, mutate, field):
    before = oci.host_view()
    b = oci.bundle("true")
    mutate(b.config)
    assert_error(oci.create(b, check=False), f"config.json: {field}")
    assert oci.host_view() == before


def test_config_failing_in_the_child_leaves_nothing(oci):
    """An error found only after the clone (the program does not exist)."""
    before = oci.host_view()
    b = oci.bundle()
    b.process["args"] = ["/no/such/program"]
    assert_error(oci.create(b, check=False), "process.args")
    assert oci.host_view() == before


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "a b", "../escape", ""])
def test_invalid_id(oci, cid):
    before = oci.host_view()
    b = oci.bundle("true")
    b.cid = cid
    assert_error(oci.create(b, check=False), "container id")
    assert oci.host_view() == before
    assert not os.path.exists(os.path.join(os.path.dirname(oci.root), "escape"))


def test_json_log_of_an_error(oci, tmp_path):
    log = tmp_path / "ocirt.log"
    res = oci("--log", str(log), "--log-format", "json", "start", "nosuch", check=False)
    assert res.rc == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and '"nosuch" does not exist' in entry["msg"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", entry["time"])
    assert entry["msg"] in res.err


def test_json_log_of_a_failed_create(oci, tmp_path):
    log = tmp_path / "ocirt.log"
    b = oci.bundle()
    b.process["args"] = ["/no/such/program"]
    b.write()
    res = oci("--log", str(log), "--log-format", "json", "create", "--bundle", b.path, b.cid, check=False)
    assert res.rc == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["level"] == "error", lines
    assert json.loads(lines[0])["msg"] in res.err


@pytest.mark.parametrize("command", ["run", "exec"])
def test_debug_log_follows_the_helper_and_the_init(oci, tmp_path, command):
    """--debug: the C helper's stages are in the log too, in its format, up
    to the seccomp filter (under which nothing but execve may run)."""
    log = tmp_path / "ocirt.log"
    b = oci.bundle("sleep 30" if command == "exec" else "true")
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    flags = ["--debug", "--log", str(log), "--log-format", "json"]
    if command == "run":
        b.write()
        oci(*flags, "run", "--bundle", b.path, b.cid)
    else:
        oci.create(b)
        oci("start", b.cid)
        oci(*flags, "exec", b.cid, "true")
    msgs = [json.loads(line)["msg"] for line in log.read_text().splitlines()]
    assert any(re.match(r"ocirt-init\[\d+\]: helper: clone ", m) for m in msgs), msgs
    steps = [m.split(": ", 1)[1] for m in msgs if re.match(r"ocirt-init\[\d+\]: init: ", m)]
    assert any(m.startswith("init: caps ") for m in steps), steps
    assert steps[-1].startswith("init: seccomp "), steps
    if command == "run":
        assert "ocirt-init[1]: init: mount mounts[0]: /proc" in msgs


def test_no_debug_line_without_debug(oci, tmp_path):
    log = tmp_path / "ocirt.log"
    b = oci.bundle("true")
    b.write()
    res = oci("--log", str(log), "run", "--bundle", b.path, b.cid)
    assert not log.exists() or "level=debug" not in log.read_text()
    assert "debug" not in res.err


def test_delete_force_of_a_created_container_kills_it(oci):
    b = oci.bundle("sleep 30")
    before = oci.host_view()
    oci.create(b)
    pid = oci.state(b.cid)["pid"]
    oci("delete", "--force", b.cid)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)
    assert oci.host_view() == before


@pytest.mark.skipif("runc" in os.path.basename(OCIRT), reason="ocirt's start-up, not runc's")
@pytest.mark.parametrize("cmd", ["create", "run"])
def test_create_and_run_do_without_os(oci, cmd, tmp_path):
    """`import os` costs ~4 M instructions (ocirt/pathops.py): create and
    run do without it, on a state root that exists (the first makes it);
    nor do they load the modules of fields a config lacks: hooks, sysctl,
    intelRdt & co (plan/host.py), linux.devices, and resources other than
    device rules (the cgroup plans)."""
    import sys
    oci.run(oci.bundle("true"))  # makes the state root
    b = oci.bundle("true")
    b.config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    b.write()
    mods = ("os", "ocirt.plan.hooks", "ocirt.plan.sysctl", "ocirt.plan.host", "ocirt.plan.devices",
            "ocirt.cgroups.spec", "ocirt.cgroups.v1plan", "ocirt.cgroups.v2plan")
    code = ("import sys; sys.argv = ['ocirt', '--root', %r, %r, '--bundle', %r, %r]; from ocirt.cli import main; "
            "rc = main(); print(rc, *(m in sys.modules for m in %r), "
            "file=sys.stderr)" % (oci.root, cmd, b.path, b.cid, mods))
    with open(tmp_path / "err", "w+") as err:  # a created init keeps it open: a file, not a pipe
        subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=err, timeout=30)
        err.seek(0)
        out = err.read()
    if cmd == "create":
        oci.pids.append(oci.state(b.cid)["pid"])
    assert out.split()[-len(mods) - 1:] == ["0"] + ["False"] * len(mods), out
