"""The runtime CLI contract podman (through conmon) and containerd (through its
runc v2 shim) rely on (tests/clients/README.md), checked without the
clients: pid files, JSON log lines, the error words they match on, the
environment and paths they call with, and exec as they use it (detached,
a child of the subreaper caller, with --process, a terminal over the
console socket, no runtime fd in the process). Needs root."""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from conftest import OCIRT, TIMEOUT, ConsoleSocket, pid_alive, read_until

RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"


def wait_status(oci, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while oci.status(cid) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return oci.status(cid)


def running(oci, script="sleep 60"):
    b = oci.bundle(script)
    oci.create(b)
    oci("start", b.cid)
    return b


def json_log(path):
    """Every line of a --log-format json file, parsed (a non-JSON line fails)."""
    with open(path) as f:
        return [json.loads(line) for line in f.read().splitlines()]


def fds_of(pid):
    return {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}


def stop(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- pid file

def test_exec_pid_file_is_digits_only(oci, tmp_path):
    b = running(oci)
    pid_file = tmp_path / "exec.pid"
    oci("exec", "--detach", "--pid-file", str(pid_file), b.cid, "sleep", "30")
    text = pid_file.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)  # the shim's strconv.Atoi
    pid = int(text)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x0030\x00"
    oci("delete", "--force", b.cid)


# ---------------------------------------------------------------- JSON log

@pytest.mark.parametrize("case, word", [
    ("kill-stopped", "container not running"),
    ("kill-missing", "does not exist"),
    ("delete-missing", "does not exist"),
    ("exec-not-found", "executable file not found in $PATH"),
    ("exec-no-such-path", "no such file or directory"),
    ("create-not-found", "executable file not found in $PATH"),
    ("create-not-executable", "permission denied"),
])
def test_error_words_in_one_json_line_and_on_stderr(oci, tmp_path, case, word):
    """containerd takes the last error line's msg, podman decodes the whole
    file as one object; both also match the words on stdout/stderr."""
    log = str(tmp_path / "log.json")
    glob = ["--log", log, "--log-format", "json"]
    if case == "kill-stopped":
        b = running(oci, "true")
        assert wait_status(oci, b.cid, "stopped") == "stopped"
        res = oci(*glob, "kill", b.cid, "9", check=False)
    elif case == "kill-missing":
        res = oci(*glob, "kill", "nosuch", "15", check=False)
    elif case == "delete-missing":
        res = oci(*glob, "delete", "nosuch", check=False)
    elif case.startswith("exec"):
        b = running(oci)
        prog = "no-such-program" if case == "exec-not-found" else "/no/such/program"
        res = oci(*glob, "exec", "--detach", b.cid, prog, check=False)
    else:
        b = oci.bundle()
        b.process["args"] = ["no-such-program"] if case == "create-not-found" else ["/etc/passwd"]
        b.write()
        res = oci(*glob, "create", "--bundle", b.path, b.cid, check=False)
    assert res.rc != 0
    lines = json_log(log)
    assert len(lines) == 1, lines
    entry = lines[0]
    assert entry["level"] == "error" and word in entry["msg"], entry
    assert re.fullmatch(RFC3339, entry["time"]), entry
    assert entry["msg"] in res.err, res
    assert "Traceback" not in res.err


def test_successful_commands_write_no_log_lines_and_nothing_on_stderr(oci, tmp_path):
    """go-runc reads state and ps with stdout and stderr combined."""
    log = tmp_path / "log.json"
    glob = ["--log", str(log), "--log-format", "json"]
    b = oci.bundle("sleep 60")
    b.write()
    for args in (["create", "--bundle", b.path, b.cid], ["start", b.cid], ["state", b.cid],
                 ["exec", b.cid, "true"], ["kill", b.cid, "WINCH"]):
        res = oci(*glob, *args)
        assert res.err == "", (args, res)
    oci.pids.append(oci.state(b.cid)["pid"])
    res = oci(*glob, "ps", "--format", "json", b.cid)
    assert res.err == "" and json.loads(res.out) == [oci.state(b.cid)["pid"]], res
    assert not log.exists() or json_log(log) == []
    oci(*glob, "delete", "--force", b.cid)


def test_delete_force_of_a_missing_container_succeeds_silently(oci, tmp_path):
    res = oci("delete", "--force", "never-created")
    assert (res.out, res.err) == ("", "")
    root = str(tmp_path / "no-such-root")     # of this test's own: runc makes it
    res = oci("--root", root, "delete", "--force", "x", root=False)
    assert res.rc == 0 and not os.path.exists(root)


# ---------------------------------------------------------------- environment and paths

def test_conmon_and_shim_calling_conventions(oci, tmp_path):
    """A --root that does not exist yet (the shim's /run/containerd/runc/<ns>),
    a relative root.path resolved against --bundle from another cwd, empty
    XDG_RUNTIME_DIR and conmon's _OCI_* variables with no fds behind them."""
    root = str(tmp_path / "runc" / "smoke-ns")
    b = oci.bundle("echo hi")
    os.symlink(b.config["root"]["path"], os.path.join(b.path, "rootfs"))
    b.config["root"]["path"] = "rootfs"
    b.write()
    env = dict(os.environ, XDG_RUNTIME_DIR="", _OCI_SYNCPIPE="3", _OCI_STARTPIPE="4",
               _CONTAINERS_USERNS_CONFIGURED="", _CONTAINERS_ROOTLESS_UID="")
    out, err = tmp_path / "out", tmp_path / "err"

    def call(*args):  # files, not pipes: the container holds them open
        with open(out, "ab") as o, open(err, "wb") as e:
            return subprocess.run([OCIRT, "--root", root, *args], cwd="/", env=env, stdout=o,
                                  stderr=e, timeout=TIMEOUT)

    pid_file = tmp_path / "init.pid"
    try:
        assert call("create", "--bundle", b.path, "--pid-file", str(pid_file), b.cid).returncode == 0, \
            err.read_text()
        assert call("start", b.cid).returncode == 0
        deadline = time.monotonic() + 10
        while pid_alive(int(pid_file.read_text())) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert out.read_text() == "hi\n"
        assert call("delete", b.cid).returncode == 0
    finally:
        assert call("delete", "--force", b.cid).returncode == 0  # also the shim's cleanup run


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0"])
def test_any_1x_oci_version(oci, version):
    b = oci.bundle("echo ok")
    b.config["ociVersion"] = version
    assert oci.run(b).out == "ok\n"


# ---------------------------------------------------------------- exec as the clients use it

SUBREAPER_CALLER = r"""
import ctypes, os, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
argv, pid_file = sys.argv[1:-1], sys.argv[-1]
r, w = os.pipe()
assert subprocess.run(argv, stdin=r).returncode == 0
os.close(r)
pid = int(open(pid_file).read())
ppid = int([l for l in open(f"/proc/{pid}/status") if l.startswith("PPid:")][0].split()[1])
os.write(w, b"go\n")
_, status = os.waitpid(pid, 0)
print(ppid == os.getpid(), os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("how", ["exec", "create"])
def test_process_is_a_child_of_a_subreaper_caller(oci, tmp_path, how):
    """conmon and the shim are child subreapers and waitpid() the pid in the
    pid file: the runtime must not stay around as the parent."""
    pid_file = str(tmp_path / "p.pid")
    if how == "exec":
        b = running(oci)
        argv = [OCIRT, "--root", oci.root, "exec", "--detach", "--pid-file", pid_file,
                b.cid, "sh", "-c", "read x; exit 7"]
    else:
        b = oci.bundle("read x; exit 7")
        b.write()
        argv = [OCIRT, "--root", oci.root, "create", "--bundle", b.path, "--pid-file", pid_file, b.cid]
        threading.Timer(0.5, lambda: oci("start", b.cid, check=False)).start()
    res = subprocess.run([sys.executable, "-c", SUBREAPER_CALLER, *argv, pid_file],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "7"]
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("via", ["flags", "process.json"])
def test_exec_terminal_over_the_console_socket(oci, tmp_path, via):
    """podman: --tty --console-socket; the shim: terminal in process.json."""
    b = running(oci)
    sock = str(tmp_path / "pty.sock")
    rcv = ConsoleSocket(sock)
    rcv.start()
    pid_file = tmp_path / "exec.pid"
    if via == "flags":
        args = ["--tty", b.cid, "sh"]
    else:
        proc = dict(b.process, args=["sh"], terminal=True, consoleSize={"height": 33, "width": 111})
        (tmp_path / "process.json").write_text(json.dumps(proc))
        args = ["--process", str(tmp_path / "process.json"), b.cid]
    oci("exec", "--detach", "--console-socket", sock, "--pid-file", str(pid_file), *args)
    rcv.join(TIMEOUT)
    assert rcv.master is not None, "no pty master received"
    assert re.fullmatch(rb"/dev/pts/\d+", rcv.data), rcv.data
    try:
        os.write(rcv.master, b"tty; stty size; echo answer-$((6*7)); exit 4\n")
        out = read_until(rcv.master, b"answer-42")
        assert b"answer-42" in out and re.search(rb"/dev/pts/\d+", out), out
        if via == "process.json":
            assert b"33 111" in out, out
    finally:
        os.close(rcv.master)
    oci("delete", "--force", b.cid)


def test_exec_with_process_json(oci, tmp_path):
    b = running(oci)
    proc = {"args": ["sh", "-c", 'echo "$(id -u):$(id -g):$(pwd):$FOO"; exit 9'], "cwd": "/tmp",
            "env": ["PATH=/bin:/usr/bin", "FOO=from-process-json"], "user": {"uid": 1000, "gid": 1001},
            "terminal": False}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    res = oci("exec", "--process", str(tmp_path / "process.json"), b.cid, check=False)
    assert (res.rc, res.out) == (9, "1000:1001:/tmp:from-process-json\n"), res
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("script, code", [("true", 0), ("exit 3", 3), ("exit 255", 255),
                                          ("kill -KILL $$", 128 + 9), ("kill -TERM $$", 128 + 15)])
def test_exec_exit_codes(oci, script, code):
    b = running(oci)
    assert oci("exec", b.cid, "sh", "-c", script, check=False).rc == code
    oci("delete", "--force", b.cid)


def test_exec_in_a_stopped_or_missing_container(oci):
    b = running(oci, "true")
    assert wait_status(oci, b.cid, "stopped") == "stopped"
    res = oci("exec", b.cid, "true", check=False)
    assert res.rc != 0 and "stopped" in res.err, res
    res = oci("exec", "nosuch", "true", check=False)
    assert res.rc != 0 and "does not exist" in res.err, res


def _exec_with_fds(oci, b, tmp_path, *flags):
    """exec --detach with two host files open at fds 3 and 4 of the runtime
    (the shim leaves a socket at fd 3); -> (pid, {fd: target}, the files)."""
    files = [tmp_path / "fd3", tmp_path / "fd4"]
    for f in files:
        f.write_text("x")
    pid_file, err = tmp_path / "exec.pid", tmp_path / "err"
    script = 'exec "$@" 3<"$F3" 4<"$F4"'
    with open(err, "wb") as e:
        res = subprocess.run(["sh", "-c", script, "sh", OCIRT, "--root", oci.root, "exec", "--detach",
                              "--pid-file", str(pid_file), *flags, b.cid, "sleep", "30"],
                             env=dict(os.environ, F3=str(files[0]), F4=str(files[1])),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e, timeout=TIMEOUT)
    assert res.returncode == 0, err.read_text()
    pid = int(pid_file.read_text())
    try:
        return pid, fds_of(pid), [str(f) for f in files]
    finally:
        stop(pid)


def test_no_runtime_fd_reaches_the_exec_process(oci, tmp_path):
    b = running(oci)
    pid, fds, _ = _exec_with_fds(oci, b, tmp_path)
    assert sorted(fds) == [0, 1, 2], fds
    oci("delete", "--force", b.cid)


def test_preserve_fds_passes_exactly_those(oci, tmp_path):
    b = running(oci)
    pid, fds, files = _exec_with_fds(oci, b, tmp_path, "--preserve-fds", "1")
    assert sorted(fds) == [0, 1, 2, 3], fds
    assert fds[3] == files[0]
    oci("delete", "--force", b.cid)


def test_foreground_exec_sees_only_stdio(oci):
    b = running(oci)
    res = oci("exec", b.cid, "sh", "-c", "ls /proc/$$/fd; true")  # sh's fds, not ls's
    assert res.out.split() == ["0", "1", "2"], res
    oci("delete", "--force", b.cid)


SOCKET_ACTIVATED = r"""
import fcntl, os, socket, sys
a, b = socket.socketpair()
b.send(b"hello from systemd\n")
r, w = os.pipe()  # to pass with --preserve-fds, at 4
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (a.fileno(), r)]
for fd, at in zip(high, (3, 4)):
    os.dup2(fd, at)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))  # what systemd sets for us
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.mark.parametrize("preserve", [0, 1])
def test_socket_activation_fds_are_passed_on_first(oci, preserve):
    """systemd started ocirt with a socket at fd 3 (LISTEN_FDS=1, LISTEN_PID its
    pid): the container gets it at fd 3 with LISTEN_FDS=1 LISTEN_PID=1, and a
    --preserve-fds fd after it, as with runc."""
    b = oci.bundle('echo "$LISTEN_FDS $LISTEN_PID"; ls /proc/$$/fd; head -n1 <&3')
    b.write()
    res = subprocess.run([sys.executable, "-c", SOCKET_ACTIVATED, OCIRT, "--root", oci.root, "run",
                          "--preserve-fds", str(preserve), "--bundle", b.path, b.cid],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res
    lines = res.stdout.split("\n")
    assert lines[0] == "1 1"
    assert lines[1:-2] == ["0", "1", "2", "3", "4"][:4 + preserve]
    assert lines[-2] == "hello from systemd"
