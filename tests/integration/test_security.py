"""DESIGN.md's security invariants, each attacked for real on containers run
by the installed ocirt (root needed; fixtures in conftest.py)."""
import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest
from conftest import OCIRT, TIMEOUT, ConsoleSocket, cgroup_dirs_existing, pid_alive, read_until

from conformance.harness import kill_pid, read
from ocirt.launch import INIT


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def private_rootfs(oci, name="rootfs"):
    """A copy of the shared rootfs this test may change."""
    path = os.path.join(oci.base, name)
    shutil.copytree(oci.rootfs, path, symlinks=True)
    return path


def wait_for(pred, timeout=5):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pred()


HOST_FILES = [os.path.realpath(sys.executable), INIT, os.path.realpath(OCIRT)]


# ---------------------------------------------------------------- CVE-2019-5736 class

def shebang_rootfs(oci):
    """A private rootfs whose /bin/sh is `#!/proc/self/exe`: exec'ing it runs
    whatever /proc/self/exe is at that moment."""
    rootfs = private_rootfs(oci)
    sh = os.path.join(rootfs, "bin", "sh")
    os.unlink(sh)
    with open(sh, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(sh, 0o755)
    return rootfs


def started(oci, b):
    """Create and start b; its init's pid."""
    oci.create(b)
    oci("start", b.cid)
    return oci.state(b.cid)["pid"]


def test_shebang_proc_self_exe_gets_the_sealed_helper_not_a_host_file(oci):
    """/proc/self/exe must be the sealed helper (which refuses to run by hand),
    and no host executable may change."""
    before = {p: sha(p) for p in HOST_FILES}
    b = oci.bundle()
    b.config["root"]["path"] = shebang_rootfs(oci)
    b.process["args"] = ["/bin/sh"]
    res = oci.run(b, check=False)
    assert res.rc != 0
    assert "internal helper of ocirt" in res.err, res
    assert {p: sha(p) for p in HOST_FILES} == before


def assert_sealed_helper(pid):
    """pid runs a memfd copy of ocirt-init that even the host's root cannot write."""
    exe = f"/proc/{pid}/exe"
    assert os.readlink(exe).startswith("/memfd:ocirt-init"), os.readlink(exe)
    with pytest.raises(OSError):
        fd = os.open(exe, os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    with open(exe, "rb") as f, open(INIT, "rb") as g:
        assert f.read() == g.read()


def test_created_init_exe_is_a_sealed_memfd_that_cannot_be_written(oci):
    b = oci.bundle("true")
    oci.create(b)
    assert_sealed_helper(oci.state(b.cid)["pid"])


def test_waiting_init_is_not_dumpable_from_its_pid_namespace(oci):
    """A second container in the first one's pid namespace (as a later `exec`
    would be) cannot reach the waiting helper's exe, memory or environment;
    with CAP_SYS_PTRACE it can open the exe but still not write it."""
    a = oci.bundle("true")
    oci.create(a)
    pid = oci.state(a.cid)["pid"]
    probe = ("readlink /proc/1/exe >/dev/null 2>&1 && echo READLINK; "
             "cat /proc/1/environ >/dev/null 2>&1 && echo ENVIRON; "
             "printf x >> /proc/1/exe 2>/dev/null && echo WROTE; echo done")
    b = oci.bundle(probe)
    b.config["linux"]["namespaces"] = [
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"}] + [
        {"type": t} for t in ("network", "ipc", "uts", "mount")]
    assert oci.run(b).out.split() == ["done"]
    c = oci.bundle(probe.replace("cat /proc/1/environ", "false"))
    c.config["linux"]["namespaces"] = b.config["linux"]["namespaces"]
    c.process["capabilities"] = {k: ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"]
                                 for k in ("bounding", "effective", "permitted")}
    assert oci.run(c).out.split() == ["READLINK", "done"]


def test_exec_of_a_shebang_proc_self_exe_gets_the_sealed_helper(oci):
    """The same attack through `ocirt exec CID /bin/sh` into a running container."""
    before = {p: sha(p) for p in HOST_FILES}
    b = oci.bundle()
    b.config["root"]["path"] = shebang_rootfs(oci)
    b.process["args"] = ["sleep", "60"]
    started(oci, b)
    res = oci("exec", b.cid, "/bin/sh", check=False)
    assert res.rc != 0 and "internal helper of ocirt" in res.err, res
    assert oci.status(b.cid) == "running"
    assert {p: sha(p) for p in HOST_FILES} == before


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes
NOTIF_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE


class ExecveGate:
    """A seccomp agent for a container whose filter notifies execve (each
    container process sends it its own listener). Every execve goes on,
    except the first one once `armed` is set: that process (`held`) stays
    inside execve, still running ocirt-init with its final credentials in
    the container (the window CVE-2019-5736 used), until `released` is set."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.armed, self.released, self.lock = threading.Event(), threading.Event(), threading.Lock()
        self.held, self.closed = None, False
        threading.Thread(target=self._accept, daemon=True).start()

    def seccomp(self):
        return {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": self.path,
                "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_NOTIFY"}]}

    def close(self):
        self.closed = True
        self.released.set()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 1 << 16, 1)
            if fds:
                threading.Thread(target=self._serve, args=(fds[0],), daemon=True).start()
        self.srv.close()

    def _serve(self, fd):
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        try:
            while not self.closed:
                events = poll.poll(200)
                if not events:
                    continue
                if not events[0][1] & select.POLLIN:
                    return  # POLLHUP: no process uses this filter any more
                notif = bytearray(80)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, notif)
                except OSError:
                    continue  # the caller died meanwhile
                nid, pid = struct.unpack_from("<QI", notif)
                with self.lock:
                    hold = self.armed.is_set() and self.held is None
                    if hold:
                        self.held = pid
                if hold:
                    self.released.wait(TIMEOUT)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, struct.pack("<QqiI", nid, 0, 0, NOTIF_CONTINUE))
                except OSError:
                    pass
        finally:
            os.close(fd)


def fields(pid):
    """/proc/pid/status as a dict."""
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def reach_probe(*pids):
    """Shell lines trying what CVE-2019-5736 needed of a process from inside the
    container: each one printed names something it reached."""
    return "".join(f"readlink /proc/{p}/exe >/dev/null 2>&1 && echo {p}:exe; "
                   f"readlink /proc/{p}/cwd >/dev/null 2>&1 && echo {p}:cwd; "
                   f"cat /proc/{p}/environ >/dev/null 2>&1 && echo {p}:environ; "
                   f"(: </proc/{p}/mem) 2>/dev/null && echo {p}:mem; " for p in pids)


@pytest.mark.parametrize("detach", [True, False], ids=["exec-d", "exec"])
def test_exec_process_before_its_execve_cannot_be_reached_or_written(oci, tmp_path, detach):
    """An exec'd process held inside its final execve (a seccomp agent does
    it) is in the container, with its final credentials, still running
    ocirt-init: another process of the container with the same credentials
    cannot reach its exe, cwd, environ or memory (it is not dumpable), while
    the container's init, dumpable, can be reached by the same probe. With
    CAP_SYS_PTRACE it can open the exe, but what it gets is the sealed memfd:
    writing through that fd once the process has exec'd (the CVE-2019-5736
    sequence) fails and no host file changes. In the foreground the helper
    waiting for the process is a sealed memfd outside the container's pid
    namespace (the process's parent is 0 there)."""
    before = {p: sha(p) for p in HOST_FILES}
    gate = ExecveGate(str(tmp_path / "agent.sock"))
    b = oci.bundle()
    b.process["args"] = ["sleep", "60"]
    b.config["linux"]["seccomp"] = gate.seccomp()
    victim = attacker = None
    try:
        init = started(oci, b)
        assert wait_for(lambda: os.readlink(f"/proc/{init}/exe").endswith("busybox"))
        gate.armed.set()
        victim = subprocess.Popen([OCIRT, "--root", oci.root, "exec", *(["--detach"] if detach else []),
                                   b.cid, "sleep", "30"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: gate.held is not None, TIMEOUT), "the exec'd process never reached execve"
        pid = gate.held
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
        assert_sealed_helper(pid)
        if not detach:
            helper = int(fields(pid)["PPid"])
            assert_sealed_helper(helper)
            assert os.readlink(f"/proc/{helper}/ns/pid") != os.readlink(f"/proc/{init}/ns/pid")
        inner = int(fields(pid)["NSpid"].split()[-1])  # its pid in the container
        out = oci("exec", b.cid, "sh", "-c", reach_probe(1, inner) + f"grep PPid /proc/{inner}/status").out.split()
        assert {"1:exe", "1:cwd", "1:environ"} <= set(out), out  # the probe works on a dumpable process
        assert [w for w in out if w.startswith(f"{inner}:")] == [], out
        assert out[-2:] == ["PPid:", "0"], out

        root = f"/proc/{init}/root"
        with open(tmp_path / "attacker.out", "wb") as f:
            attacker = subprocess.Popen(
                [OCIRT, "--root", oci.root, "exec", "--cap", "CAP_SYS_PTRACE", b.cid, "sh", "-c",
                 f"exec 3</proc/{inner}/exe || exit 9; readlink /proc/self/fd/3; touch /tmp/opened; "
                 "while [ ! -e /tmp/released ]; do sleep 0.05; done; "
                 "printf x >> /proc/self/fd/3 && echo WROTE; echo end"],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        assert wait_for(lambda: os.path.exists(f"{root}/tmp/opened") or attacker.poll() is not None, TIMEOUT)
        gate.released.set()
        assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"))
        # Once nothing runs the memfd (no ETXTBSY: the redirection opens it),
        # only its seals stop the write.
        os.kill(pid, signal.SIGKILL)
        if not detach:
            victim.wait(TIMEOUT)
        open(f"{root}/tmp/released", "w").close()
        assert attacker.wait(TIMEOUT) == 0, (tmp_path / "attacker.out").read_text()
        lines = (tmp_path / "attacker.out").read_text().splitlines()
        assert lines[0].startswith("/memfd:ocirt-init") and lines[1:] == ["end"], lines
        assert {p: sha(p) for p in HOST_FILES} == before
    finally:
        gate.close()
        oci("delete", "--force", b.cid, check=False)
        for p in (victim, attacker):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- CVE-2024-21626 class

@contextlib.contextmanager
def fds_at_3(paths):
    """Open paths as fds 3, 4, ... (what --preserve-fds passes on), keeping
    whatever pytest had there aside and putting it back after."""
    slots = range(3, 3 + len(paths))
    saved = {}
    for n in slots:
        try:
            saved[n] = fcntl.fcntl(n, fcntl.F_DUPFD_CLOEXEC, 100)
        except OSError:
            pass
    for n, p in zip(slots, paths):
        fd = os.open(p, os.O_RDONLY)
        if fd != n:
            os.dup2(fd, n)
            os.close(fd)
    try:
        yield
    finally:
        for n in slots:
            if n in saved:
                os.dup2(saved[n], n, inheritable=False)
                os.close(saved[n])
            else:
                os.close(n)


def container_fds(pid):
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    return {n: os.readlink(f"/proc/{pid}/fd/{n}") for n in container_fds(pid)}


def assert_no_runtime_fd(pid, allowed):
    targets = fd_targets(pid)
    assert sorted(targets) == allowed, targets
    for n, t in targets.items():
        assert "ocirt" not in t and "memfd" not in t and "socket" not in t, (n, t)


def test_no_runtime_fd_after_create_and_start(oci):
    b = oci.bundle()
    b.process["args"] = ["sleep", "30"]
    oci.create(b)
    pid = oci.state(b.cid)["pid"]
    oci("start", b.cid)
    assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"))
    assert_no_runtime_fd(pid, [0, 1, 2])


def test_no_runtime_fd_with_run_detached(oci):
    b = oci.bundle()
    b.process["args"] = ["sleep", "30"]
    b.write()
    oci("run", "-d", "--bundle", b.path, b.cid)
    pid = oci.state(b.cid)["pid"]
    oci.pids.append(pid)
    assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"))
    assert_no_runtime_fd(pid, [0, 1, 2])


def test_preserve_fds_passes_exactly_those(oci, tmp_path):
    b = oci.bundle()
    b.process["args"] = ["sleep", "30"]
    b.write()
    paths = [tmp_path / "f0", tmp_path / "f1"]
    for p in paths:
        p.write_text("")
    with fds_at_3(paths):
        subprocess.run([OCIRT, "--root", oci.root, "create", "--preserve-fds", "2",
                        "--bundle", b.path, b.cid], check=True, pass_fds=[3, 4], timeout=30,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = oci.state(b.cid)["pid"]
    oci.pids.append(pid)
    oci("start", b.cid)
    assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"))
    targets = fd_targets(pid)
    assert sorted(targets) == [0, 1, 2, 3, 4], targets
    assert targets[3] == str(tmp_path / "f0") and targets[4] == str(tmp_path / "f1")


@pytest.mark.parametrize("cwd", ["/proc/self/fd/3", "/proc/self/cwd/..", "/proc/1/cwd"])
def test_cwd_through_proc_magic_links_stays_inside(oci, tmp_path, cwd):
    """A host directory passed as fd 3 must never become the cwd."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "HOST-MARKER").write_text("x")
    b = oci.bundle("pwd; ls")
    b.process["cwd"] = cwd
    b.write()
    with fds_at_3([host]):
        p = subprocess.run([OCIRT, "--root", oci.root, "run", "--preserve-fds", "1",
                            "--bundle", b.path, b.cid], pass_fds=[3], timeout=30,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert "HOST-MARKER" not in p.stdout
    assert str(host) not in p.stdout


def ocirt_passing(oci, tmp_path, nfds, *args):
    """ocirt ARGS with the caller's fds 3 .. 3+nfds-1 passed on (see fds_at_3)
    and every other one closed; -> (rc, stdout, stderr), through files."""
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        rc = subprocess.run([OCIRT, "--root", oci.root, *args], pass_fds=range(3, 3 + nfds),
                            stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=TIMEOUT).returncode
    return rc, out.read_text(), err.read_text()


@pytest.mark.parametrize("how", ["exec", "exec-d", "run"])
def test_preserve_fds_never_passes_a_runtime_fd(oci, tmp_path, how):
    """--preserve-fds 2 from a caller whose fds 3 and 4 are closed: ocirt's own
    fds can sit there (the state directory it locks, its sync socket: ways
    out to the host). They must not reach the container: refused, or nothing
    passed."""
    script = "ls /proc/$$/fd; true"  # not the last command: sh would exec ls in its place
    b = oci.bundle(script if how == "run" else "sleep 60")
    if how == "run":
        b.write()
        args = ["run", "--preserve-fds", "2", "--bundle", b.path, b.cid]
    else:
        started(oci, b)
        detach = ["--detach", "--pid-file", str(tmp_path / "pid")] if how == "exec-d" else []
        args = ["exec", "--preserve-fds", "2", *detach, b.cid, "sh", "-c", script]
    before = host_view(oci)
    rc, out, err = ocirt_passing(oci, tmp_path, 0, *args)
    if rc == 0 and how == "exec-d":  # its stdout is the file
        pid = int((tmp_path / "pid").read_text())
        assert wait_for(lambda: not pid_alive(pid))
        out = (tmp_path / "out").read_text()
    if rc == 0:
        assert out.split() == ["0", "1", "2"], out
    else:
        assert err.startswith("ocirt: ") and "--preserve-fds" in err and "Traceback" not in err, err
        assert host_view(oci) == before


@pytest.mark.parametrize("preserve", [0, 2])
def test_foreground_exec_gets_only_stdio_and_preserved_fds(oci, tmp_path, preserve):
    """The caller has host files at fds 3 and 4: exec passes them only when asked."""
    b = oci.bundle("sleep 60")
    started(oci, b)
    paths = [tmp_path / "zero", tmp_path / "one"]
    for p in paths:
        p.write_text(p.name + "\n")
    with fds_at_3(paths):
        rc, out, err = ocirt_passing(oci, tmp_path, 2, "exec", "--preserve-fds", str(preserve), b.cid, "sh", "-c",
                                     "ls /proc/$$/fd; cat 2>/dev/null <&3; cat 2>/dev/null <&4; true")
    assert rc == 0, err
    assert out.split() == ["0", "1", "2", "3", "4", "zero", "one"][:3 + 2 * preserve], out


@pytest.mark.parametrize("how", ["console-socket", "foreground"])
def test_exec_with_a_terminal_gets_only_the_pty(oci, tmp_path, how):
    b = oci.bundle("sleep 60")
    started(oci, b)
    if how == "foreground":
        out = oci("exec", "--tty", b.cid, "sh", "-c", "ls /proc/$$/fd; true").out
        assert out.split() == ["0", "1", "2"], out
        return
    sock = ConsoleSocket(str(tmp_path / "pty.sock"))
    sock.start()
    oci("exec", "--detach", "--tty", "--console-socket", str(tmp_path / "pty.sock"),
        "--pid-file", str(tmp_path / "pid"), b.cid, "sleep", "30")
    sock.join(TIMEOUT)
    assert sock.master is not None
    pid = int((tmp_path / "pid").read_text())
    try:  # the master open meanwhile: closing it hangs the pty up, and sleep dies of SIGHUP
        assert_no_runtime_fd(pid, [0, 1, 2])
        assert len(set(fd_targets(pid).values())) == 1  # the pty, on all three
    finally:
        os.close(sock.master)


CWD_INSIDE = 'p=$(pwd) && [ "$(stat -c %d:%i "$p")" = "$(stat -c %d:%i .)" ] && echo INSIDE; ls'


@pytest.mark.parametrize("cwd", [f"/proc/self/fd/{n}" for n in range(3, 10)] +
                         ["/proc/self/cwd/..", "/proc/1/cwd", "/proc/self/root/.."])
def test_exec_cwd_through_proc_magic_links_stays_inside(oci, tmp_path, cwd):
    """exec --cwd: fd 3 is a host directory passed with --preserve-fds 1; the
    higher ones are whatever the runtime holds when it changes directory (on
    a host with cgroup2, the cgroup directory it clones into: CVE-2024-21626).
    Refused, or a cwd whose path leads to it from the container's root."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "HOST-MARKER").write_text("x")
    b = oci.bundle("sleep 60")
    started(oci, b)
    with fds_at_3([host]):
        rc, out, err = ocirt_passing(oci, tmp_path, 1, "exec", "--preserve-fds", "1", "--cwd", cwd,
                                     b.cid, "sh", "-c", CWD_INSIDE)
    assert "HOST-MARKER" not in out and str(host) not in out, out
    assert rc != 0 or out.startswith("INSIDE\n"), (rc, out, err)
    assert rc == 0 or (err.startswith("ocirt: ") and "Traceback" not in err), err
    assert oci.status(b.cid) == "running"


# ---------------------------------------------------------------- mount destinations

def test_mount_over_symlink_to_host_path_is_confined(oci, tmp_path):
    """/escape -> <host dir>/made: the mount lands inside the rootfs, nothing is
    created on the host even with shared propagation."""
    host = tmp_path / "hostdir"
    host.mkdir()
    b = oci.bundle("grep -c ' /escape-target/made ' /proc/self/mountinfo; ls -d /escape-target/made")
    rootfs = private_rootfs(oci)
    b.config["root"]["path"] = rootfs
    b.config["linux"]["rootfsPropagation"] = "shared"
    b.config["root"]["readonly"] = False
    os.symlink(str(host / "made"), os.path.join(rootfs, "escape"))
    os.makedirs(os.path.join(rootfs, str(host).lstrip("/")), exist_ok=True)
    os.symlink(str(host), os.path.join(rootfs, "escape-target"))
    b.config["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})
    before = oci.host_view()
    res = oci.run(b, check=False)
    assert not (host / "made").exists(), "a directory was created on the host"
    assert oci.host_view()["mounts"] == before["mounts"]
    if res.rc == 0:  # confined: the mount is on the rootfs' own directory
        assert os.path.isdir(os.path.join(rootfs, str(host).lstrip("/"), "made"))


def test_relative_symlink_climbing_out_is_confined(oci, tmp_path):
    host = tmp_path / "hostdir2"
    host.mkdir()
    rootfs = private_rootfs(oci)
    depth = rootfs.count("/")
    os.symlink("../" * (depth + 2) + str(host).lstrip("/") + "/made", os.path.join(rootfs, "climb"))
    b = oci.bundle("true")
    b.config["root"]["path"] = rootfs
    b.config["root"]["readonly"] = False
    b.config["mounts"].append({"destination": "/climb", "type": "tmpfs", "source": "tmpfs"})
    oci.run(b, check=False)
    assert not (host / "made").exists()


def test_proc_destination_must_be_procfs(oci):
    """Without a proc mount, /proc is a plain directory: a bind on /proc/cpuinfo
    (allowed on a real procfs) is refused, leaving nothing."""
    b = oci.bundle("cat /proc/cpuinfo")
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/proc"]
    b.config["mounts"].append({"destination": "/proc/cpuinfo", "type": "bind",
                               "source": "/etc/hostname", "options": ["bind"]})
    before = oci.host_view()
    res = oci.run(b, check=False)
    assert res.rc != 0 and "procfs" in res.err, res
    assert oci.host_view() == before


def test_proc_as_a_symlink_out_of_proc(oci):
    """/proc in the rootfs is a symlink to /etc: proc is mounted on /etc of the
    rootfs, and the masked /proc/keys is still masked (resolved in the root)."""
    rootfs = private_rootfs(oci)
    shutil.rmtree(os.path.join(rootfs, "proc"))
    os.symlink("/etc", os.path.join(rootfs, "proc"))
    b = oci.bundle("wc -c < /proc/keys; stat -f -c %T /proc/sys")
    b.config["root"]["path"] = rootfs
    b.config["linux"]["maskedPaths"] = ["/proc/keys"]
    b.config["linux"]["readonlyPaths"] = ["/proc/sys"]
    res = oci.run(b, check=False)
    if res.rc == 0:
        assert res.out.split() == ["0", "proc"], res
    assert not os.path.ismount(os.path.join(rootfs, "etc"))


@pytest.mark.parametrize("kind", ["tmpfs", "dir-named-proc", "part-of-procfs"])
def test_only_procfs_goes_over_proc(oci, tmp_path, kind):
    """A bind at /proc must be of a procfs' root, by its filesystem, not its name."""
    (tmp_path / "proc").mkdir()
    new = {"tmpfs": dict(type="tmpfs", source="tmpfs"),
           "dir-named-proc": dict(type="bind", source=str(tmp_path / "proc"), options=["rbind"]),
           "part-of-procfs": dict(type="none", source="/proc/sys", options=["rbind"])}[kind]
    b = oci.bundle("true")
    i = [m["destination"] for m in b.config["mounts"]].index("/proc")
    b.config["mounts"][i] = dict(destination="/proc", **new)
    before = oci.host_view()
    res = oci.run(b, check=False)
    where = f"mounts[{i}].type: " if kind == "tmpfs" else f"mounts[{i}]: bind source {new['source']} "
    assert res.rc == 1 and res.err.count("\n") == 1 and f"config.json: {where}" in res.err, res
    assert oci.host_view() == before


# ---------------------------------------------------------------- masked and read-only paths

MASK_PROBE = ("ls /mnt; echo x > /data/new 2>/dev/null && echo WROTE-DATA; "
              "echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo WROTE-SYS; "
              "wc -c < /proc/uptime; umount /mnt 2>/dev/null && echo UNMASKED; echo end")


def masked_bundle(oci, tmp_path, script):
    """/mnt (a bind of a host directory holding `secret`) and /proc/uptime (a
    bind of that file) masked; /data (a rw bind of the same directory) and
    /proc/sys read-only. -> (bundle, the host directory)."""
    rw = tmp_path / "rw"
    rw.mkdir()
    (rw / "secret").write_text("s")
    b = oci.bundle(script)
    b.config["mounts"] += [
        {"destination": "/mnt", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
        {"destination": "/data", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
        {"destination": "/proc/uptime", "type": "bind", "source": str(rw / "secret"), "options": ["bind"]}]
    b.config["linux"]["maskedPaths"] = ["/mnt", "/proc/uptime"]
    b.config["linux"]["readonlyPaths"] = ["/data", "/proc/sys"]
    return b, rw


def test_masked_and_readonly_paths_hold_over_later_mounts(oci, tmp_path):
    b, rw = masked_bundle(oci, tmp_path, MASK_PROBE)
    out = oci.run(b).out.split()
    assert out == ["0", "end"], out
    assert not (rw / "new").exists()


@pytest.mark.parametrize("flags", [[], ["--cap", "CAP_DAC_OVERRIDE", "--cwd", "/data"]], ids=["plain", "dac-cwd"])
def test_masked_and_readonly_paths_hold_for_exec(oci, tmp_path, flags):
    """An exec'd process joins the init's mount namespace, masks and all."""
    b, rw = masked_bundle(oci, tmp_path, "sleep 60")
    started(oci, b)
    out = oci("exec", *flags, b.cid, "sh", "-c", MASK_PROBE).out.split()
    assert out == ["0", "end"], out
    assert not (rw / "new").exists()


def test_exec_with_cap_sys_admin_unmasks_only_inside_the_container(oci, tmp_path):
    """Masks and read-only paths are mounts in the container's mount
    namespace: a process given CAP_SYS_ADMIN there (exec --cap CAP_SYS_ADMIN)
    can umount or remount them, with runc as with ocirt, so no runtime can
    promise they hold against it. What a runtime does promise is that this
    stays in the container: the host's mount table does not change."""
    b, rw = masked_bundle(oci, tmp_path, "sleep 60")
    started(oci, b)
    before = oci.host_view()["mounts"]
    out = oci("exec", "--cap", "CAP_SYS_ADMIN", b.cid, "sh", "-c",
              "umount /mnt /proc/uptime; mount -o remount,rw /data; "
              "mkdir /tmp/m && mount -t tmpfs tmpfs /tmp/m && echo MOUNTED").out
    assert out == "MOUNTED\n", out  # the capability is there and used
    assert oci.host_view()["mounts"] == before


# ------------------------------------ nothing reached by name inside the container

# The image and the volumes are the attacker's: what the runtime opens or
# mounts inside the container once it is assembled must be reached by fd and
# verified (runc CVE-2025-31133, CVE-2025-52565, CVE-2019-19921). "bind":
# /dev is a bind of a bundle directory (a volume); "image": the config
# mounts nothing at /dev, so it is the image's own directory.

def planted_dev(oci, tmp_path, b, dev):
    """Give b the /dev of kind dev; -> the host directory that is its /dev."""
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev"]
    if dev == "image":
        b.config["root"]["path"] = private_rootfs(oci)
        return os.path.join(b.config["root"]["path"], "dev")
    path = tmp_path / "dev"
    (path / "pts").mkdir(parents=True)
    for name, minor in (("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
        os.mknod(path / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    b.config["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": str(path),
                                  "options": ["rbind", "rw"]})
    return str(path)


NULL_PLANTS = {
    "regular-file": lambda p: pathlib.Path(p).write_text("host file\n"),
    "symlink-to-procfs": lambda p: os.symlink("/proc/sys/kernel/hostname", p),
    "other-device": lambda p: os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 5)),
}
MASK_PROBE_NULL = "stat -c '%F %t:%T' /proc/uptime; echo written > /proc/uptime; echo end"


@pytest.mark.parametrize("plant", sorted(NULL_PLANTS))
def test_mask_is_never_a_planted_dev_null(oci, tmp_path, plant):
    """The bundle's /dev/null is a host file, a symlink to a procfs file or
    another device: a mask bound from it would be that object, writable.
    Refused, naming the mask; nothing written."""
    b = oci.bundle(MASK_PROBE_NULL)
    dev = planted_dev(oci, tmp_path, b, "bind")
    NULL_PLANTS[plant](os.path.join(dev, "null"))
    b.config["linux"]["maskedPaths"] = ["/proc/uptime"]
    res = oci.run(b, check=False)
    assert res.rc != 0 and "linux.maskedPaths[0]" in res.err and "/dev/null" in res.err, res
    assert "Traceback" not in res.err
    if plant == "regular-file":
        assert (tmp_path / "dev" / "null").read_text() == "host file\n"


@pytest.mark.parametrize("dev", ["bind", "image"])
def test_mask_never_binds_a_dev_null_swapped_by_a_host_process(oci, tmp_path, dev):
    """A host process swaps the container's /dev/null between the null device
    and a regular file while containers are made: each mask is the null
    device, or the container is refused."""
    b = oci.bundle("stat -c '%F %t:%T' /proc/uptime")
    null = os.path.join(planted_dev(oci, tmp_path, b, dev), "null")
    b.config["linux"]["maskedPaths"] = ["/proc/uptime"]
    stop = threading.Event()

    def swap():
        tmp = null + ".swap"
        while not stop.is_set():
            os.mknod(tmp, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.rename(tmp, null)
            pathlib.Path(tmp).write_text("host file\n")
            os.rename(tmp, null)

    racer = threading.Thread(target=swap, daemon=True)
    racer.start()
    try:
        results = [oci.run(b, check=False) for _ in range(12)]
    finally:
        stop.set()
        racer.join()
    for res in results:
        assert res.out == "character special file 1:3\n" if res.rc == 0 else "Traceback" not in res.err, res


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_console_symlink_in_the_image_is_not_followed(oci, tmp_path, cmd):
    """The image's /dev/console is a symlink to /victim: the pty must not be
    mounted there. Refused, naming process.terminal."""
    b = oci.bundle("grep -c ' /victim ' /proc/self/mountinfo; echo end")
    dev = planted_dev(oci, tmp_path, b, "image")
    victim = os.path.join(b.config["root"]["path"], "victim")
    pathlib.Path(victim).write_text("v\n")
    os.symlink("/victim", os.path.join(dev, "console"))
    b.process["terminal"] = True
    if cmd == "run":
        res = oci.run(b, check=False)
    else:
        sock = ConsoleSocket(str(tmp_path / "pty.sock"))
        sock.start()
        res = oci.create(b, "--console-socket", str(tmp_path / "pty.sock"), check=False)
        if res.rc == 0:
            sock.join(TIMEOUT)
            oci("start", b.cid)
            res.out = read_until(sock.master, b"end").decode()
            os.close(sock.master)
    assert res.rc != 0 and "process.terminal" in res.err and "/dev/console" in res.err, res
    assert "Traceback" not in res.err


PTMX_PLANTS = {
    # a second devpts instance: its pty 0 is not the container's /dev/pts/0
    "other-devpts": "mkdir /tmp/pts2 && mount -t devpts -o newinstance,ptmxmode=0666 devpts /tmp/pts2"
                    " && ln -sf /tmp/pts2/ptmx /dev/ptmx",
    "regular-file": "echo x > /tmp/f && ln -sf /tmp/f /dev/ptmx",
}


@pytest.mark.parametrize("plant", sorted(PTMX_PLANTS))
def test_exec_tty_gets_a_pty_pair_whatever_the_container_made_of_dev_ptmx(oci, tmp_path, plant):
    """The container replaced /dev/ptmx: exec -t must still give its process
    the peer of the master sent to the console socket, from the container's
    /dev/pts."""
    b = oci.bundle("sleep 60")
    started(oci, b)
    oci("exec", "--cap", "CAP_SYS_ADMIN", b.cid, "sh", "-c", PTMX_PLANTS[plant])
    sock = ConsoleSocket(str(tmp_path / "pty.sock"))
    sock.start()
    oci("exec", "--detach", "--tty", "--console-socket", str(tmp_path / "pty.sock"), b.cid,
        "sh", "-c", "tty; stat -f -c %T /proc/self/fd/0; echo PAIRED; sleep 5")
    sock.join(TIMEOUT)
    try:
        out = read_until(sock.master, b"PAIRED").decode()
    finally:
        os.close(sock.master)
    assert out.split() == ["/dev/pts/0", "devpts", "PAIRED"], out


IMAGE_NODE = (10, 229)  # /dev/fuse: opens without a capability, not a default device
NODE_PROBE = "(exec 3<>/s1node) 2>&1 | grep -c 'Operation not permitted'; (exec 3<>/dev/null) && echo NULL"


@pytest.mark.parametrize("how", ["run", "exec"])
def test_device_node_in_the_image_is_denied_by_default(oci, how):
    """No linux.resources.devices: the device cgroup allows only the default
    devices, not a node the image ships (EPERM, whatever its driver)."""
    b = oci.bundle(NODE_PROBE if how == "run" else "sleep 60")
    b.config["root"]["path"] = private_rootfs(oci)
    os.mknod(os.path.join(b.config["root"]["path"], "s1node"), 0o666 | stat.S_IFCHR, os.makedev(*IMAGE_NODE))
    if how == "run":
        out = oci.run(b).out
    else:
        started(oci, b)
        out = oci("exec", b.cid, "sh", "-c", NODE_PROBE).out
    assert out.split() == ["1", "NULL"], out


def test_device_rules_of_the_config_still_allow(oci):
    b = oci.bundle(NODE_PROBE)
    b.config["root"]["path"] = private_rootfs(oci)
    os.mknod(os.path.join(b.config["root"]["path"], "s1node"), 0o666 | stat.S_IFCHR, os.makedev(*IMAGE_NODE))
    b.config["linux"]["resources"] = {"devices": [{"allow": True, "type": "c", "major": IMAGE_NODE[0],
                                                   "minor": IMAGE_NODE[1], "access": "rw"}]}
    assert oci.run(b).out.split() == ["0", "NULL"]


# ---------------------------------------------------------------- nothing reached by name in the rootfs
# The image and the volumes are the attacker's: what the runtime mounts
# over, or writes in /proc, is reached by fd and verified, so that a symlink,
# a mount or a second procfs they planted cannot redirect it.

SYSFS = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}


@pytest.mark.parametrize("target,fs", [("/proc/sys", "procfs"), ("/proc/self", "procfs"), ("/sys/kernel", "sysfs")])
@pytest.mark.parametrize("volume", ["tmpfs", "bind"])
@pytest.mark.parametrize("cmd", ["create", "run"])
def test_mount_through_a_symlink_onto_procfs_or_sysfs_is_refused(oci, tmp_path, target, fs, volume, cmd):
    """/volumes -> /proc/sys in the image and a volume at /volumes/kernel: it would
    cover the container's /proc/sys/kernel (or /proc/self/attr, which the
    LSM label goes through, or a sysfs directory)."""
    rootfs = private_rootfs(oci)
    os.symlink(target, os.path.join(rootfs, "volumes"))
    (tmp_path / "vol").mkdir()
    b = oci.bundle("true")
    b.config["root"]["path"] = rootfs
    sub = {"/proc/sys": "kernel", "/proc/self": "attr", "/sys/kernel": "security"}[target]
    vol = (dict(type="tmpfs", source="tmpfs") if volume == "tmpfs"
           else dict(type="bind", source=str(tmp_path / "vol"), options=["rbind"]))
    b.config["mounts"] += [SYSFS, dict(destination=f"/volumes/{sub}", **vol)]
    i = len(b.config["mounts"]) - 1
    before = oci.host_view()
    res = oci.create(b, check=False) if cmd == "create" else oci.run(b, check=False)
    assert res.rc == 1 and res.err.count("\n") == 1, res
    assert f"config.json: mounts[{i}]: " in res.err and f"onto {fs}" in res.err, res
    assert oci.host_view() == before


def test_mounts_the_config_puts_under_proc_and_sys_still_go_there(oci):
    """What runc's users do: lxcfs-style binds on /proc files, cgroups under /sys."""
    b = oci.bundle("cat /proc/uptime; stat -f -c %T /sys/fs/cgroup")
    b.config["mounts"] += [SYSFS, {"destination": "/proc/uptime", "type": "bind", "source": "/etc/hostname",
                                   "options": ["bind"]},
                           {"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs"}]
    with open("/etc/hostname") as f:
        assert oci.run(b).out.split() == [f.read().strip(), "tmpfs"]


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_sysctl_is_not_written_through_a_mount_over_proc_sys(oci, cmd):
    """A volume over /proc/sys/net/... (put there by a createContainer hook,
    as a volume plugin would), itself a procfs file: another process's
    oom_score_adj. The sysctl must not change that process."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        b = oci.bundle("true")
        b.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        b.config["hooks"] = {"createContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", f"mount --bind /proc/{victim.pid}/oom_score_adj proc/sys/net/ipv4/ip_forward"]}]}
        before = oci.host_view()
        res = oci.create(b, check=False) if cmd == "create" else oci.run(b, check=False)
        with open(f"/proc/{victim.pid}/oom_score_adj") as f:
            assert f.read() == "0\n"
    finally:
        victim.kill()
        victim.wait()
    assert res.rc == 1 and "linux.sysctl.net.ipv4.ip_forward: " in res.err and "a mount is over it" in res.err, res
    assert oci.host_view() == before


def test_exec_writes_oom_score_adj_only_to_a_procfs(oci, tmp_path):
    """The container's root put a tmpfs over its /proc, with a file at
    /proc/self/oom_score_adj: an exec'd process's oomScoreAdj must reach the
    kernel (the helper sets it on itself through the host's /proc before it
    joins the container), never land in a file the container made."""
    b = oci.bundle("sleep 60")
    b.config["root"]["readonly"] = False
    started(oci, b)
    oci("exec", "--cap", "CAP_SYS_ADMIN", b.cid, "sh", "-c",
        "mount -t tmpfs tmpfs /proc && mkdir /proc/self && echo 0 > /proc/self/oom_score_adj")
    proc = dict(b.process, args=["sleep", "30"], oomScoreAdj=123)
    (tmp_path / "process.json").write_text(json.dumps(proc))
    pid_file = tmp_path / "pid"
    oci("exec", "-d", "--pid-file", str(pid_file), "--process", str(tmp_path / "process.json"), b.cid)
    pid = int(pid_file.read_text())
    try:
        assert read(f"/proc/{pid}/oom_score_adj") == "123\n"
        assert oci("exec", b.cid, "cat", "/proc/self/oom_score_adj").out == "0\n"
    finally:
        kill_pid(pid)


NEW_PROC = "unshare -mrpf --mount-proc wc -c /proc/uptime 2>/dev/null || echo denied"


@pytest.mark.parametrize("userns", [False, True], ids=["plain", "userns"])
def test_no_pivot_leaves_no_full_procfs_to_mount_an_unmasked_one(oci, userns):
    """--no-pivot moves the rootfs over / and chroots: the host's /proc and
    /sys stay in the mount namespace unless the runtime detaches them, and
    the kernel lets a new user namespace mount a fresh procfs (masks and
    all gone) as long as one full procfs is there. (A user, not root: root
    would need CAP_SETFCAP to map itself in the new user namespace.)"""
    b = oci.bundle(f"{NEW_PROC}; wc -c < /proc/uptime")
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.config["linux"]["maskedPaths"] = ["/proc/uptime"]
    if userns:
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    before = oci.host_view()
    out = oci.run(b, "--no-pivot").out.split()
    assert out == ["denied", "0"], out
    assert oci.host_view() == before


def test_exec_into_a_no_pivot_container_cannot_mount_an_unmasked_procfs(oci):
    b = oci.bundle("sleep 60")
    b.config["linux"]["maskedPaths"] = ["/proc/uptime"]
    b.write()
    oci("run", "-d", "--no-pivot", "--bundle", b.path, b.cid)
    oci.pids.append(oci.state(b.cid)["pid"])
    out = oci("exec", "--user", "1000:1000", b.cid, "sh", "-c", NEW_PROC).out.split()
    assert out == ["denied"], out


# ---------------------------------------------------------------- startContainer hooks run as the process

HOOK_PROBE = "exec > /tmp/hook-fds; ls /proc/$$/fd; mkdir /tmp/hook-made 2>/dev/null; true"


def started_with_hook(oci, tmp_path, how, b):
    """b with a startContainer hook (HOOK_PROBE), created and started, or
    run -d, by a caller passing a host file as fd 3 (--preserve-fds 1)."""
    b.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", HOOK_PROBE]}]}
    b.write()
    host = tmp_path / "host-file"
    host.write_text("host\n")
    cmd = ["create"] if how == "create" else ["run", "-d"]
    with fds_at_3([host]):
        rc, _, err = ocirt_passing(oci, tmp_path, 1, *cmd, "--preserve-fds", "1", "--bundle", b.path, b.cid)
    assert rc == 0, err
    oci.pids.append(oci.state(b.cid)["pid"])
    if how == "create":
        oci("start", b.cid)


@pytest.mark.parametrize("how", ["create", "run"])
def test_start_container_hook_gets_only_stdio_and_the_state(oci, tmp_path, how):
    """The process gets the fd its caller passed on; the hook, which runs in
    the container too, does not."""
    b = oci.bundle("sleep 60")
    started_with_hook(oci, tmp_path, how, b)
    assert oci("exec", b.cid, "cat", "/tmp/hook-fds").out.split() == ["0", "1", "2"]
    assert sorted(fd_targets(oci.state(b.cid)["pid"])) == [0, 1, 2, 3]


@pytest.mark.parametrize("how", ["create", "run"])
def test_start_container_hook_runs_under_the_seccomp_filter(oci, tmp_path, how):
    """As with runc, the hook runs with the process's filter: a syscall the
    profile denies is denied to the hook."""
    b = oci.bundle("mkdir /tmp/process-made 2>/dev/null; sleep 60")
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    started_with_hook(oci, tmp_path, how, b)
    assert oci("exec", b.cid, "ls", "/tmp").out.split() == ["hook-fds"]


# ---------------------------------------------------------------- failures leave nothing

FAILURES = {
    "createRuntime hook": lambda b: b.config.setdefault("hooks", {}).update(
        createRuntime=[{"path": "/bin/false"}]),
    "createContainer hook": lambda b: b.config.setdefault("hooks", {}).update(
        createContainer=[{"path": "/bin/false"}]),
    "hook timeout": lambda b: b.config.setdefault("hooks", {}).update(
        prestart=[{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]),
    "mount type": lambda b: b.config["mounts"].append(
        {"destination": "/mnt", "type": "no-such-fs", "source": "x"}),
    "bind source": lambda b: b.config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": "/no/such/dir", "options": ["bind"]}),
    "device over a directory": lambda b: b.config["linux"].update(
        devices=[{"path": "/bin", "type": "c", "major": 1, "minor": 3}]),
    "seccomp rule": lambda b: b.config["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
    "seccomp listener": lambda b: b.config["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/no/such/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    "sysctl value": lambda b: b.config["linux"].update(sysctl={"net.ipv4.ip_forward": "nonsense"}),
    "program": lambda b: b.process.update(args=["/no/such/program"]),
}


@pytest.mark.parametrize("what", sorted(FAILURES))
@pytest.mark.parametrize("cmd", ["create", "run"])
def test_failure_leaves_nothing(oci, what, cmd):
    b = oci.bundle("true")
    FAILURES[what](b)
    before = host_view(oci)
    res = oci.create(b, check=False) if cmd == "create" else oci.run(b, check=False)
    assert res.rc != 0, res
    assert res.err.startswith("ocirt: ") and "Traceback" not in res.err, res
    assert host_view(oci) == before


def host_view(oci):
    """oci.host_view() without the state root's caches (".seccomp-cache")."""
    view = oci.host_view()
    view["state"] = [n for n in view["state"] if not n.startswith(".")]
    return view


# ---------------------------------------------------------------- a failed exec leaves nothing

# (flags, command), or what makes a good process.json bad (the text when not JSON)
GOOD_PROCESS = {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
EXEC_FAILURES = {
    "cwd is a file": (["--cwd", "/etc/passwd"], ["true"]),
    "cwd missing": (["--cwd", "/no/such/dir"], ["true"]),
    "user not a number": (["--user", "nobody"], ["true"]),
    "user -1": (["--user", "-1"], ["true"]),  # setresuid(-1) keeps root
    "user unmapped in the user namespace": (["--user", "70000"], ["true"]),
    "unknown capability": (["--cap", "CAP_NO_SUCH"], ["true"]),
    "missing binary": ([], ["/no/such/program"]),
    "binary not in PATH": ([], ["no-such-program"]),
    "process.json not JSON": '{"args": ["true"',
    "process.json not an object": '["true"]',
    "process.json uid a string": {"user": {"uid": "x", "gid": 0}},
    "process.json uid 2^32-1": {"user": {"uid": 4294967295, "gid": 0}},
    "process.json user a string": {"user": "root"},
    "process.json args a string": {"args": "true"},
    "process.json relative cwd": {"cwd": "tmp"},
    "process.json too many groups": {"user": {"uid": 0, "gid": 0, "additionalGids": list(range(70000))}},
}


def exec_failure(b, tmp_path, what):
    """The failing exec's arguments (after `exec` and its mode flag)."""
    case = EXEC_FAILURES[what]
    if isinstance(case, tuple):
        flags, command = case
        return [*flags, b.cid, *command]
    text = case if isinstance(case, str) else json.dumps(dict(GOOD_PROCESS, **case))
    (tmp_path / "process.json").write_text(text)
    return ["--process", str(tmp_path / "process.json"), b.cid]


def pids_in_pid_ns(ns):
    found = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and os.readlink(f"/proc/{p}/ns/pid") == ns:
                found.append(int(p))
        except OSError:
            pass
    return sorted(found)


def exec_view(oci, b):
    """What a failed exec could leave: a process in the container's pid
    namespace (zombies: see the subreaper test), a file in its state dir,
    a cgroup or a process in one, a mount; and the same init must run."""
    init = oci.state(b.cid)["pid"]
    cgroups = {}
    for d in cgroup_dirs_existing(b.config["linux"]["cgroupsPath"]):
        with open(os.path.join(d, "cgroup.procs")) as f:
            cgroups[d] = (sorted(f.read().split()), sorted(e.name for e in os.scandir(d) if e.is_dir()))
    return {"status": oci.status(b.cid), "init": init,
            "procs": [p for p in pids_in_pid_ns(os.readlink(f"/proc/{init}/ns/pid")) if pid_alive(p)],
            "state dir": sorted(os.listdir(os.path.join(oci.root, b.cid))),
            "cgroups": cgroups, "host": host_view(oci)}


@pytest.mark.parametrize("what", sorted(EXEC_FAILURES))
@pytest.mark.parametrize("mode", ["exec", "exec-d"])
def test_failed_exec_leaves_nothing(oci, tmp_path, mode, what):
    # (the user namespace cases also show create under pytest's 0700 --root)
    b = oci.bundle("sleep 60")
    if "user namespace" in what:
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    started(oci, b)
    before = exec_view(oci, b)
    detach = ["--detach"] if mode == "exec-d" else []
    res = oci("exec", *detach, *exec_failure(b, tmp_path, what), check=False)
    assert res.rc != 0, res
    assert res.err.startswith("ocirt: ") and res.err.count("\n") == 1 and "Traceback" not in res.err, res
    assert exec_view(oci, b) == before


NO_ORPHANS = r"""
import ctypes, os, subprocess, sys
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode
print(rc, *(c for t in os.listdir("/proc/self/task") for c in open(f"/proc/self/task/{t}/children").read().split()))
"""


@pytest.mark.parametrize("mode", ["exec", "exec-d"])
def test_failed_exec_leaves_no_orphan_to_the_callers_subreaper(oci, mode):
    """containerd's shim and conmon are child subreapers: what the runtime
    orphans becomes theirs. A failed exec must hand them nothing, not even
    a zombie to reap (runc 1.1.5 does not)."""
    b = oci.bundle("sleep 60")
    started(oci, b)
    detach = ["--detach"] if mode == "exec-d" else []
    res = subprocess.run([sys.executable, "-c", NO_ORPHANS, OCIRT, "--root", oci.root, "exec", *detach,
                          "--cwd", "/etc/passwd", b.cid, "true"], capture_output=True, text=True, timeout=TIMEOUT)
    rc, *children = res.stdout.split()
    assert rc != "0" and children == [], res


@pytest.mark.parametrize("mode", ["create", "run"])
def test_failed_create_leaves_no_orphan_to_the_callers_subreaper(oci, mode):
    """The same for a create that fails inside the container's mount setup."""
    b = oci.bundle("true")
    b.config["mounts"].append({"destination": "/data", "type": "nosuchfs", "source": "none"})
    b.write()
    res = subprocess.run([sys.executable, "-c", NO_ORPHANS, OCIRT, "--root", oci.root, mode,
                          "--bundle", b.path, b.cid], capture_output=True, text=True, timeout=TIMEOUT)
    rc, *children = res.stdout.split()
    assert rc != "0" and children == [], res
