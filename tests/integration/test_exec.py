"""`ocirt exec` on real containers: the exec'd process joins every namespace
and the cgroup of the init, gets the container's seccomp filter,
capabilities, rlimits and noNewPrivileges, and runc's flags change what
they should; in the foreground it forwards signals and proxies a terminal
(set raw, resized on SIGWINCH, restored after). Needs root."""
import os
import signal
import subprocess
import termios
import time

import pytest
from conftest import OCIRT, REPO, TIMEOUT, read_until

NS = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"}


def running(oci, b=None):
    b = b or oci.bundle("sleep 60")
    oci.create(b)
    oci("start", b.cid)
    return b


def status_fields(pid, *names):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k in names}


def detached(oci, b, tmp_path, *args):
    pid_file = tmp_path / "exec.pid"
    oci("exec", "--detach", "--pid-file", str(pid_file), *args)
    return int(pid_file.read_text())


def test_joins_every_namespace_and_the_cgroup(oci, tmp_path):
    b = oci.bundle("sleep 60")
    b.config["linux"]["namespaces"].append({"type": "cgroup"})
    running(oci, b)
    init = oci.state(b.cid)["pid"]
    pid = detached(oci, b, tmp_path, b.cid, "sleep", "30")
    for name in NS.values():
        assert os.readlink(f"/proc/{pid}/ns/{name}") == os.readlink(f"/proc/{init}/ns/{name}"), name
    with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as c:
        assert a.read() == c.read()
    assert os.readlink(f"/proc/{pid}/root") == os.readlink(f"/proc/{init}/root")
    assert oci("exec", b.cid, "cat", "/proc/1/cmdline").out == "sleep\x0060\x00"
    oci("delete", "--force", b.cid)


def test_gets_the_containers_seccomp_caps_rlimits_and_no_new_privs(oci, tmp_path):
    b = oci.bundle("sleep 60")
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}
    running(oci, b)
    init = oci.state(b.cid)["pid"]
    pid = detached(oci, b, tmp_path, b.cid, "sleep", "30")
    fields = ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb")
    assert status_fields(pid, *fields) == status_fields(init, *fields)
    assert status_fields(pid, "Seccomp", "NoNewPrivs") == {"Seccomp": "2", "NoNewPrivs": "1"}
    assert oci("exec", b.cid, "sh", "-c", "ulimit -Sn; ulimit -Hn").out.split() == ["100", "200"]
    res = oci("exec", b.cid, "hostname", "other", check=False)
    assert res.rc != 0 and "not permitted" in res.out + res.err, res
    oci("delete", "--force", b.cid)


def test_user_cwd_env_and_groups_flags(oci):
    b = oci.bundle("sleep 60")
    b.process["user"] = {"uid": 0, "gid": 7}
    running(oci, b)
    script = 'echo "$(id -u):$(id -g):$(id -G):$(pwd):$A:$B"'
    res = oci("exec", "--user", "1000:1001", "--additional-gids", "5", "-g", "6", "--cwd", "/tmp",
              "--env", "A=1", "-e", "B=2", b.cid, "sh", "-c", script)
    assert res.out == "1000:1001:1001 5 6:/tmp:1:2\n", res
    # no gid: the container's stays (runc)
    assert oci("exec", "-u", "1000", b.cid, "id", "-g").out == "7\n"
    oci("delete", "--force", b.cid)


def test_cap_and_no_new_privs_flags(oci, tmp_path):
    b = oci.bundle("sleep 60")
    b.process["noNewPrivileges"] = False
    running(oci, b)
    plain = detached(oci, b, tmp_path, b.cid, "sleep", "30")
    extra = detached(oci, b, tmp_path, "--cap", "CAP_NET_ADMIN", "--no-new-privs", b.cid, "sleep", "30")
    net_admin = 1 << 12
    assert status_fields(plain, "NoNewPrivs")["NoNewPrivs"] == "0"
    assert int(status_fields(plain, "CapEff")["CapEff"], 16) & net_admin == 0
    assert status_fields(extra, "NoNewPrivs")["NoNewPrivs"] == "1"
    assert int(status_fields(extra, "CapEff")["CapEff"], 16) & net_admin
    oci("delete", "--force", b.cid)


def test_paused_container(oci, tmp_path):
    """Refused unless --ignore-paused; then it runs once resumed (runc alike)."""
    b = running(oci)
    oci("pause", b.cid)
    res = oci("exec", b.cid, "true", check=False)
    assert res.rc != 0 and "paused" in res.err, res
    pid_file = tmp_path / "exec.pid"
    with open(tmp_path / "err", "wb") as err:
        p = subprocess.Popen([OCIRT, "--root", oci.root, "exec", "--detach", "--ignore-paused",
                              "--pid-file", str(pid_file), b.cid, "sleep", "30"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    time.sleep(0.3)
    oci("resume", b.cid)
    assert p.wait(TIMEOUT) == 0, (tmp_path / "err").read_text()
    assert os.readlink(f"/proc/{pid_file.read_text()}/ns/pid") == \
        os.readlink(f"/proc/{oci.state(b.cid)['pid']}/ns/pid")
    oci("delete", "--force", b.cid)


def test_tty_detached_needs_a_console_socket(oci):
    b = running(oci)
    res = oci("exec", "--detach", "--tty", b.cid, "sh", check=False)
    assert res.rc != 0 and "console" in res.err, res
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("flags", [["--detach"], ["--tty"]])
def test_console_socket_without_a_detached_tty_is_an_error(oci, tmp_path, flags):
    b = running(oci)
    res = oci("exec", *flags, "--console-socket", str(tmp_path / "absent.sock"), b.cid, "true", check=False)
    assert res.rc == 255 and "cannot use console socket if" in res.err, res   # runc's code for exec
    oci("delete", "--force", b.cid)


def test_foreground_forwards_signals(oci, tmp_path):
    b = running(oci)
    out = tmp_path / "out"
    with open(out, "wb") as f:
        p = subprocess.Popen([OCIRT, "--root", oci.root, "exec", b.cid, "sh", "-c",
                              "trap 'echo got-term; exit 6' TERM; echo ready; while :; do sleep 0.05; done"],
                             stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT
    while b"ready" not in out.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(TIMEOUT) == 6
    assert out.read_text() == "ready\ngot-term\n"
    oci("delete", "--force", b.cid)


def test_foreground_terminal_raw_resized_and_restored(oci):
    """exec -t with a terminal as the caller's stdio: the pty gets its size,
    the caller's terminal is raw while it runs, a SIGWINCH resizes it, and
    the terminal settings come back afterwards."""
    b = running(oci)
    master, slave = os.openpty()
    termios.tcsetwinsize(slave, (24, 80))
    before = termios.tcgetattr(slave)
    script = ("trap 'stty size' WINCH; stty size; echo ready; "
              "until read line; do :; done; echo got-$line; exit 3")  # a trap interrupts read
    p = subprocess.Popen([OCIRT, "--root", oci.root, "exec", "-t", b.cid, "sh", "-c", script],
                         stdin=slave, stdout=slave, stderr=slave)
    try:
        out = read_until(master, b"ready")
        assert b"24 80" in out and b"ready" in out, out
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & (termios.ICANON | termios.ECHO), "caller's terminal not raw"
        termios.tcsetwinsize(slave, (40, 132))
        p.send_signal(signal.SIGWINCH)
        assert b"40 132" in read_until(master, b"40 132")
        os.write(master, b"hello\r")
        assert b"got-hello" in read_until(master, b"got-hello")
        assert p.wait(TIMEOUT) == 3
        assert termios.tcgetattr(slave) == before
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
        os.close(slave)
    oci("delete", "--force", b.cid)


@pytest.mark.parametrize("flags, cmd, err", [
    ([], "nosuch", 'ocirt: exec: "nosuch": executable file not found in $PATH'),
    (["--cwd", "/etc/passwd"], "true", "ocirt: --cwd: chdir /etc/passwd: not a directory"),
    (["--cap", "CAP_FOO"], "true", 'ocirt: --cap: unknown capability "CAP_FOO"'),
    (["--user", "4294967295"], "true", "ocirt: --user: 4294967295: ids go from 0 to 4294967294"),
])
def test_errors_name_the_flag_or_command_they_come_from(oci, flags, cmd, err):
    """Not config.json: the faulty value came from exec's command line."""
    b = running(oci)
    res = oci("exec", *flags, b.cid, cmd, check=False)
    assert (res.rc != 0, res.err) == (True, err + "\n")


def test_an_error_in_the_containers_own_process_still_names_config_json(oci):
    b = oci.bundle("sleep 60")
    b.config["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"})
    b.process["cwd"] = "/mnt/work"  # made by create
    running(oci, b)
    oci("exec", "--cwd", "/", b.cid, "rmdir", "/mnt/work")
    res = oci("exec", "--env", "X=1", b.cid, "true", check=False)
    assert (res.rc != 0, res.err) == (True, "ocirt: config.json: process.cwd: chdir /mnt/work: no such file or directory\n")


@pytest.mark.skipif("runc" in os.path.basename(OCIRT), reason="ocirt's start-up, not runc's")
def test_exec_does_without_os(oci):
    """`import os` costs ~0.9 ms (ocirt/pathops.py): exec, the command a
    Kubernetes exec probe runs, does without it, as state and kill do."""
    import sys
    b = running(oci)
    code = ("import sys; sys.argv = ['ocirt', '--root', %r, 'exec', %r, 'true']; from ocirt.cli import main; "
            "rc = main(); print(rc, 'os' in sys.modules, file=sys.stderr)" % (oci.root, b.cid))
    p = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.stderr.split()[-2:] == ["0", "False"], p.stderr
