"""DESIGN.md's security invariants, each attacked for real on containers run
by the installed ocirt (root needed; fixtures in conftest.py)."""
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from ocirt.spawn import INIT


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


HOST_FILES = [os.path.realpath(sys.executable), INIT, os.path.realpath("/usr/local/bin/ocirt")]


# ---------------------------------------------------------------- CVE-2019-5736 class

def test_shebang_proc_self_exe_gets_the_sealed_helper_not_a_host_file(oci):
    """/bin/sh is `#!/proc/self/exe`: exec'ing it runs whatever /proc/self/exe is at
    that moment. It must be the sealed helper (which refuses to run by hand), and no
    host executable may change."""
    before = {p: sha(p) for p in HOST_FILES}
    b = oci.bundle()
    b.config["root"]["path"] = private_rootfs(oci)
    sh = os.path.join(b.config["root"]["path"], "bin", "sh")
    os.unlink(sh)
    with open(sh, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(sh, 0o755)
    b.process["args"] = ["/bin/sh"]
    res = oci.run(b, check=False)
    assert res.rc != 0
    assert "internal helper of ocirt" in res.err, res
    assert {p: sha(p) for p in HOST_FILES} == before


def test_created_init_exe_is_a_sealed_memfd_that_cannot_be_written(oci):
    b = oci.bundle("true")
    oci.create(b)
    pid = oci.state(b.cid)["pid"]
    exe = f"/proc/{pid}/exe"
    assert os.readlink(exe).startswith("/memfd:ocirt-init")
    # Even the host's root cannot write through it: the memfd is sealed.
    with pytest.raises(OSError):
        fd = os.open(exe, os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    with open(exe, "rb") as f, open(INIT, "rb") as g:
        assert f.read() == g.read()


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
        subprocess.run(["/usr/local/bin/ocirt", "--root", oci.root, "create", "--preserve-fds", "2",
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
        p = subprocess.run(["/usr/local/bin/ocirt", "--root", oci.root, "run", "--preserve-fds", "1",
                            "--bundle", b.path, b.cid], pass_fds=[3], timeout=30,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert "HOST-MARKER" not in p.stdout
    assert str(host) not in p.stdout


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


def test_tmpfs_over_proc_is_refused(oci):
    b = oci.bundle("true")
    for m in b.config["mounts"]:
        if m["destination"] == "/proc":
            m.update(type="tmpfs", source="tmpfs")
    res = oci.run(b, check=False)
    assert res.rc != 0 and "/proc" in res.err


# ---------------------------------------------------------------- masked and read-only paths

def test_masked_and_readonly_paths_hold_over_later_mounts(oci, tmp_path):
    rw = tmp_path / "rw"
    rw.mkdir()
    (rw / "secret").write_text("s")
    b = oci.bundle("ls /mnt; echo x > /data/new 2>/dev/null && echo WROTE-DATA; "
                   "echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo WROTE-SYS; "
                   "wc -c < /proc/uptime; umount /mnt 2>/dev/null && echo UNMASKED; echo end")
    b.config["mounts"] += [
        {"destination": "/mnt", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
        {"destination": "/data", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
        {"destination": "/proc/uptime", "type": "bind", "source": str(rw / "secret"), "options": ["bind"]}]
    b.config["linux"]["maskedPaths"] = ["/mnt", "/proc/uptime"]
    b.config["linux"]["readonlyPaths"] = ["/data", "/proc/sys"]
    out = oci.run(b).out.split()
    assert out == ["0", "end"], out
    assert not (rw / "new").exists()


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
