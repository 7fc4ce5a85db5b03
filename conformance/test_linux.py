"""config-linux.md and runtime-linux.md: namespaces, id mappings, time offsets, devices,
default filesystems/devices/symlinks, sysctl, seccomp, propagation, masked and
read-only paths, personality, Intel RDT."""
import json
import os
import socket
import subprocess
import threading

import pytest

from .harness import applied_or_rejected, kill_pid, leftovers, mountinfo, parse_mountinfo, read, userns_bundle

clause = pytest.mark.clause
NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup",
            "user": "user", "time": "time"}


def container_ns(ct, b):
    names = " ".join(NS_FILES.values())
    out = ct.run(b.sh(f"for n in {names}; do echo $n $(readlink /proc/self/ns/$n); done")).out
    return dict(line.split(" ", 1) for line in out.splitlines())


def host_ns(name):
    return os.readlink(f"/proc/self/ns/{name}")


# ------------------------------------------------------------------ namespaces

@clause("linux.ns.new.1", "linux.ns.types.1")
@pytest.mark.parametrize("ns", ["pid", "network", "ipc", "uts", "mount", "cgroup"])
def test_new_namespace_when_no_path(ct, ns):
    b = ct.bundle()
    if not any(n["type"] == ns for n in b.linux["namespaces"]):
        b.linux["namespaces"].append({"type": ns})
    assert container_ns(ct, b)[NS_FILES[ns]] != host_ns(NS_FILES[ns])


@clause("linux.ns.inherit.1")
@pytest.mark.parametrize("ns", ["pid", "network", "ipc", "uts", "cgroup", "mount"])
def test_namespace_not_listed_is_inherited(ct, ns):
    b = ct.bundle()
    b.drop_namespace(ns)
    if ns == "mount":  # these would change the host's mounts: refused (runc refuses the paths too)
        b.linux.pop("maskedPaths"), b.linux.pop("readonlyPaths")
        b.config["root"]["readonly"] = False
        before = {m["point"] for m in mountinfo()}
        try:
            assert container_ns(ct, b)["mnt"] == host_ns("mnt")
        finally:  # the container's mounts must not land on the host: remove any that did
            landed = [m["point"] for m in mountinfo() if m["point"] not in before]
            for point in reversed(landed):
                subprocess.run(["umount", "-l", point], check=False)
        assert landed == []
        return
    if ns == "uts":
        b.config.pop("hostname", None)
    if ns == "network":
        b.drop_mount("/sys")  # sysfs cannot be mounted without a new network namespace
        b.drop_mount("/sys/fs/cgroup")
    assert container_ns(ct, b)[NS_FILES[ns]] == host_ns(NS_FILES[ns])


@clause("linux.ns.new.1")
def test_pid_namespace_isolates_processes(ct):
    out = ct.run(ct.bundle("echo $$; ls /proc | grep -c '^[0-9]'")).out.split()
    assert out[0] == "1"
    assert int(out[1]) <= 3  # sh, ls, grep


@clause("linux.ns.new.1")
def test_network_namespace_has_only_loopback(ct):
    out = ct.run(ct.bundle("cat /proc/net/dev")).out
    ifaces = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert ifaces == ["lo"]


@pytest.fixture
def holder():
    """A process in new network and uts namespaces; killed by pid afterwards."""
    p = subprocess.Popen(["unshare", "--net", "--uts", "sleep", "60"])
    for _ in range(100):
        if os.readlink(f"/proc/{p.pid}/ns/net") != host_ns("net"):
            break
        os.sched_yield()
    yield p.pid
    kill_pid(p.pid)
    p.wait()


@clause("linux.ns.path.2", "runtime.delete.5")
def test_join_namespace_by_path(ct, holder):
    b = ct.bundle()
    b.drop_namespace("network")
    b.linux["namespaces"].append({"type": "network", "path": f"/proc/{holder}/ns/net"})
    assert container_ns(ct, b)["net"] == os.readlink(f"/proc/{holder}/ns/net")
    assert os.path.exists(f"/proc/{holder}/ns/net")  # not the container's: still there


@clause("linux.ns.path.3", "runtime.errors.1")
def test_namespace_path_of_wrong_type_is_rejected(ct, holder):
    b = ct.bundle()
    b.drop_namespace("network")
    b.linux["namespaces"].append({"type": "network", "path": f"/proc/{holder}/ns/uts"})
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("linux.ns.dup.1", "runtime.errors.1")
def test_duplicate_namespace_type_is_rejected(ct):
    b = ct.bundle()
    b.linux["namespaces"].append({"type": "ipc"})
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("linux.ns.new.1", "linux.ns.types.1", "linux.idmap.1")
def test_user_namespace_with_mappings(ct):
    before = os.stat(ct.rootfs + "/bin/busybox")
    b = userns_bundle(ct, "cat /proc/self/uid_map /proc/self/gid_map; id -u")
    out = ct.run(b).out.split()
    assert out[:3] == ["0", "100000", "65536"] and out[3:6] == ["0", "200000", "65536"]
    assert out[6] == "0"
    after = os.stat(ct.rootfs + "/bin/busybox")
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


@clause("config.valid-values.1", "linux.ns.types.1")
def test_time_namespace_offsets_applied_or_rejected(ct):
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("this kernel has no time namespaces")
    b = ct.bundle("cat /proc/self/timens_offsets")
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0},
                              "boottime": {"secs": 172800, "nanosecs": 0}}
    out = applied_or_rejected(ct, b)
    if out is not None:
        offsets = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
        assert offsets["monotonic"] == ["86400", "0"] and offsets["boottime"] == ["172800", "0"]


# ------------------------------------------------------------------ devices

def stat_dev(ct, b, paths):
    out = ct.run(b.sh(" ".join(["stat -c '%n %F %t:%T %a %u:%g'", *paths]))).out
    return {line.split()[0]: line.split(" ", 1)[1] for line in out.splitlines()}


@clause("linux.devices.1")
def test_configured_devices_are_created(ct):
    b = ct.bundle()
    b.linux["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 1000, "gid": 1001},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o600},
        {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5},
    ]
    b.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
    got = stat_dev(ct, b, ["/dev/mynull", "/dev/myfifo", "/dev/sub/myzero"])
    assert got["/dev/mynull"] == "character special file 1:3 620 1000:1001"
    assert got["/dev/myfifo"].startswith("fifo ")
    assert got["/dev/sub/myzero"].startswith("character special file 1:5 ")


@clause("linux.devices.path.1", "runtime.errors.1")
def test_device_over_existing_other_file_is_rejected(ct):
    # The existing file is in the bundle's own /out, never in the shared rootfs: a
    # runtime that replaces it must not break every later test.
    b = ct.bundle()
    victim = os.path.join(b.out, "victim")
    with open(victim, "w") as f:
        f.write("keep")
    b.linux["devices"] = [{"path": "/out/victim", "type": "c", "major": 1, "minor": 3}]
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []
    assert os.path.isfile(victim) and b.read_out("victim") == "keep"


@clause("linux.default-devices.1")
def test_default_devices(ct):
    want = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
            "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    got = stat_dev(ct, ct.bundle(), list(want))
    for path, majmin in want.items():
        assert got[path].startswith(f"character special file {majmin} "), (path, got[path])
    out = ct.run(ct.bundle("echo x > /dev/null && head -c 4 /dev/zero | wc -c; readlink /dev/ptmx || "
                           "stat -c %t:%T /dev/ptmx")).out.split()
    assert out[0] == "4"
    assert out[1] in ("pts/ptmx", "/dev/pts/ptmx", "5:2"), out


@clause("rtlinux.devsymlinks.1")
def test_dev_symlinks(ct):
    out = ct.run(ct.bundle("for l in fd stdin stdout stderr; do readlink /dev/$l; done")).out.split()
    assert out == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]


@clause("linux.default-fs.1")
def test_default_filesystems(ct):
    mounts = {m["point"]: m["fstype"] for m in parse_mountinfo(ct.run(ct.bundle("cat /proc/self/mountinfo")).out)}
    assert mounts.get("/proc") == "proc" and mounts.get("/sys") == "sysfs"
    assert mounts.get("/dev/pts") == "devpts" and mounts.get("/dev/shm") == "tmpfs"


@clause("runtime.lifecycle.create.1")
def test_only_stdio_file_descriptors_are_open(ct):
    out = ct.run(ct.bundle("ls /proc/self/fd")).out.split()
    # 0-2 plus the fd ls itself opened to read the directory
    assert len([fd for fd in out if int(fd) > 2]) <= 1, out


# ------------------------------------------------------------------ sysctl, seccomp

@clause("runtime.lifecycle.create.1")
def test_sysctl(ct):
    b = ct.bundle("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    before = read("/proc/sys/kernel/shm_rmid_forced")
    assert ct.run(b).out.split() == ["1", "1"]
    assert read("/proc/sys/kernel/shm_rmid_forced") == before  # set in the container's namespace only


def seccomp(default="SCMP_ACT_ALLOW", **rule):
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [rule] if rule else []}


@clause("runtime.lifecycle.create.1")
def test_seccomp_errno_rule(ct):
    b = ct.bundle("grep Seccomp: /proc/self/status; mkdir /dev/shm/x 2>&1; echo rc=$?")
    b.linux["seccomp"] = seccomp(names=["mkdir", "mkdirat"], action="SCMP_ACT_ERRNO", errnoRet=38)
    out = ct.run(b).out
    assert "Seccomp:\t2" in out and "Function not implemented" in out and "rc=1" in out


@clause("runtime.lifecycle.create.1")
def test_seccomp_errno_default_is_eperm(ct):
    b = ct.bundle("mkdir /dev/shm/x 2>&1; true")
    b.linux["seccomp"] = seccomp(names=["mkdir", "mkdirat"], action="SCMP_ACT_ERRNO")
    assert "Operation not permitted" in ct.run(b).out


@clause("runtime.lifecycle.create.1")
def test_seccomp_argument_filter(ct):
    b = ct.bundle("umask 070; umask; umask 077; umask")
    b.linux["seccomp"] = seccomp(names=["umask"], action="SCMP_ACT_ERRNO",
                                 args=[{"index": 0, "value": 0o77, "op": "SCMP_CMP_EQ"}])
    # umask(2) cannot fail, so the shell's mask stays 0070 when 077 is blocked (the
    # initial mask is the caller's, not something this test may assume)
    assert ct.run(b).out.split() == ["0070", "0070"]


@clause("runtime.lifecycle.create.1")
def test_seccomp_kill_process(ct):
    b = ct.bundle(args=["mkdir", "/dev/shm/x"])
    b.linux["seccomp"] = seccomp(names=["mkdir", "mkdirat"], action="SCMP_ACT_KILL_PROCESS")
    assert ct.run(b, check=False).rc == 128 + 31  # SIGSYS


@clause("runtime.lifecycle.create.1")
def test_seccomp_default_errno_ret(ct):
    b = ct.bundle("mkdir /dev/shm/x 2>&1; true")
    b.linux["seccomp"] = seccomp(default="SCMP_ACT_ALLOW", names=["mkdir", "mkdirat"],
                                 action="SCMP_ACT_ERRNO", errnoRet=13)
    assert "Permission denied" in ct.run(b).out


@clause("linux.seccomp.errno.1", "runtime.errors.1")
def test_seccomp_errno_on_action_without_errno_is_rejected(ct):
    b = ct.bundle()
    b.linux["seccomp"] = seccomp(names=["mkdir"], action="SCMP_ACT_ALLOW", errnoRet=5)
    b.linux["seccomp"]["defaultAction"] = "SCMP_ACT_ALLOW"
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


class Listener(threading.Thread):
    """A seccomp agent stand-in: accepts one connection, records the message, its fds,
    whether they came with the first chunk and whether the runtime then closed it."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.srv.settimeout(15)
        self.messages = []

    def run(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data, fds, late_fds, state = b"", [], False, None
            while state is None:
                msg, got, _, _ = socket.recv_fds(conn, 65536, 4)
                late_fds |= bool(got and data)
                fds += got
                if not msg:
                    break
                data += msg
                try:
                    state = json.loads(data)
                except ValueError:
                    continue
            for fd in fds:  # closing the notify fd makes the blocked syscall fail (ENOSYS)
                os.close(fd)
            try:
                closed = conn.recv(1) == b""
            except OSError:
                closed = False
            self.messages.append({"state": state, "nfds": len(fds), "late_fds": late_fds, "closed": closed})


@clause("linux.seccomp.listener.1", "linux.seccomp.listener.2", "linux.seccomp.listener.3",
        "linux.cps.1", "linux.cps.2")
def test_seccomp_notify_listener(ct, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Listener(path)
    agent.start()
    b = ct.bundle("mkdir /dev/shm/x 2>/dev/null; echo rc=$?")
    b.linux["seccomp"] = seccomp(names=["mkdir", "mkdirat"], action="SCMP_ACT_NOTIFY")
    b.linux["seccomp"]["listenerPath"] = path
    b.linux["seccomp"]["listenerMetadata"] = "conformance-metadata"
    out = ct.run(b).out
    agent.join(10)
    agent.srv.close()
    assert out.strip() == "rc=1"
    assert len(agent.messages) == 1
    msg = agent.messages[0]
    state = msg["state"]
    assert msg["closed"] and not msg["late_fds"]
    assert state["fds"] == ["seccompFd"] and msg["nfds"] == 1
    assert state["metadata"] == "conformance-metadata"
    assert isinstance(state["pid"], int) and state["state"]["id"] == b.cid
    assert isinstance(state["ociVersion"], str)


@clause("linux.seccomp.listener.4", "runtime.errors.1")
def test_seccomp_listener_unreachable_is_an_error(ct, tmp_path):
    b = ct.bundle("true")
    b.linux["seccomp"] = seccomp(names=["mkdir", "mkdirat"], action="SCMP_ACT_NOTIFY")
    b.linux["seccomp"]["listenerPath"] = str(tmp_path / "nobody-listens.sock")
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


# ------------------------------------------------------------------ propagation, masked, read-only

@clause("runtime.lifecycle.create.1")
@pytest.mark.parametrize("prop", ["shared", "slave", "private", "unbindable",
                                  "rshared", "rslave", "rprivate", "runbindable", ""])
def test_rootfs_propagation(ct, prop):
    """The spec's values, and the recursive ones and "" that runc accepts
    (containerd's CRI sends rshared and rslave for hostPath propagation)."""
    b = ct.bundle("cat /proc/self/mountinfo")
    b.linux["rootfsPropagation"] = prop
    tags = [m for m in parse_mountinfo(ct.run(b).out) if m["point"] == "/"][-1]["tags"]
    kind = prop.removeprefix("r") if prop else "slave"  # "": runc's default, rslave
    shared = any(t.startswith("shared:") for t in tags)
    if kind == "shared":
        assert shared, tags
    elif kind == "unbindable":
        assert "unbindable" in tags, tags
    else:  # slave of the host's mount (master:N) when that is shared; never a peer itself
        assert not shared and "unbindable" not in tags, tags
        assert kind == "slave" or not tags, tags


@clause("runtime.lifecycle.create.1")
def test_bidirectional_mount_propagates_to_the_host(ct, tmp_path):
    """What a CSI node plugin gets from Kubernetes (mountPropagation:
    Bidirectional): rootfsPropagation rshared and an rshared bind of a shared
    host mount; a mount the container makes below it appears on the host."""
    vol = tmp_path / "vol"
    vol.mkdir()
    subprocess.run(["mount", "--bind", str(vol), str(vol)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(vol)], check=True)
        b = ct.bundle("mkdir -p /mnt/a/sub && mount -t tmpfs csi /mnt/a/sub && echo ok")
        b.process["capabilities"] = dict.fromkeys(("bounding", "effective", "permitted"), ["CAP_SYS_ADMIN"])
        b.linux["rootfsPropagation"] = "rshared"
        b.mount("/mnt/a", "bind", str(vol), ["rbind", "rshared"])
        assert ct.run(b).out.strip() == "ok"
        seen = [m for m in mountinfo() if m["point"] == str(vol / "sub")]
        assert seen and seen[-1]["fstype"] == "tmpfs", seen
    finally:
        subprocess.run(["umount", "-R", "-l", str(vol)], check=False)


@clause("runtime.lifecycle.create.1")
def test_masked_paths(ct):
    b = ct.bundle("wc -c < /proc/keys; ls /sys/firmware | wc -l; cat /proc/mounts > /dev/null; echo ok")
    b.linux["maskedPaths"] = ["/proc/keys", "/sys/firmware", "/no/such/path"]
    assert ct.run(b).out.split() == ["0", "0", "ok"]


@clause("runtime.lifecycle.create.1")
def test_readonly_paths(ct):
    b = ct.bundle("echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo WROTE; "
                  "grep ' /proc/sys ' /proc/self/mountinfo")
    b.linux["readonlyPaths"] = ["/proc/sys", "/no/such/path"]
    out = ct.run(b).out
    assert "WROTE" not in out and "ro" in out.split()[5].split(",")


@clause("config.valid-values.1")
def test_personality_applied_or_rejected(ct):
    b = ct.bundle("uname -m")
    b.linux["personality"] = {"domain": "LINUX32"}
    out = applied_or_rejected(ct, b)
    if out is not None:
        assert out.strip() in ("i686", "i386", "armv8l", "armv7l"), out


@clause("linux.intelRdt.1", "runtime.errors.1")
def test_intel_rdt_without_resctrl_is_an_error(ct):
    if any(m["fstype"] == "resctrl" for m in parse_mountinfo(read("/proc/self/mountinfo"))):
        pytest.skip("a resctrl filesystem is mounted here: the error case cannot be produced")
    b = ct.bundle()
    b.linux["intelRdt"] = {"closID": "conformance"}
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []
