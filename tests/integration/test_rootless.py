"""Rootless containers: a throw-away user (made here, with /etc/subuid and
/etc/subgid ranges; removed, and the files restored, after) runs busybox
from `ocirt spec --rootless` through ocirt and through runc, with its
state in $XDG_RUNTIME_DIR and no cgroup (this host delegates none), its
own id mapped alone or with its subordinate range (newuidmap/newgidmap).
Then what it must not reach: capabilities of the host's user namespace,
another user's ids, and another user's containers. Root runs the tests;
the runtimes run as the user."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import OCIRT, TIMEOUT, Result
from conformance.harness import SUB_SIZE, ThrowawayUser, throwaway_users

RUNC = "/usr/sbin/runc"
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_SETUID",
            "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_SYS_TIME", "CAP_NET_ADMIN", "CAP_SYS_CHROOT"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"),
                                reason="needs root, useradd and setpriv: makes a user to run as")


class User(ThrowawayUser):
    """run(): a command as the user, in its environment."""

    def run(self, *argv, cwd=None, timeout=TIMEOUT, path="/usr/sbin:/usr/bin:/sbin:/bin"):
        # files, not pipes: a created container keeps inherited pipes open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([*self.prefix, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                               env=self.env(path), cwd=cwd, timeout=timeout)
            out.seek(0), err.seek(0)
            p.stdout, p.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        return Result(list(argv), p)


@pytest.fixture(scope="module")
def users():
    """Two users (the second to try the first's containers), each with a
    subordinate range."""
    with throwaway_users([f"ocrl{os.getpid() % 100000}{i}" for i in range(2)], cls=User) as made:
        yield made


@pytest.fixture(params=[OCIRT, RUNC], ids=["ocirt", "runc"])
def runtime(request):
    if request.param == OCIRT == RUNC and request.param_index == 0:
        pytest.skip("OCIRT is runc: its own parameter runs it")
    if not os.access(request.param, os.X_OK):
        pytest.skip(f"no {request.param}")
    return request.param


class Rootless:
    """One test's containers, run by `user` through `runtime` with its
    global `flags`; cleaned up by root (delete --force by id in the user's
    state root), or by the user with flags (its systemd scopes are its
    manager's)."""

    def __init__(self, runtime, user, rootfs, flags=()):
        self.runtime, self.user, self.rootfs, self.flags = runtime, user, rootfs, list(flags)
        self.base = tempfile.mkdtemp(prefix="ocirt-rl-")
        os.chmod(self.base, 0o755)
        os.chown(self.base, user.uid, user.gid)
        self.made = []  # (root, id)

    @property
    def root(self):
        """The runtime's default state root for this user (runc's rule)."""
        return os.path.join(self.user.xdg, "runc" if self.runtime == RUNC else "ocirt")

    def __call__(self, *args, user=None, check=True, **kw):
        res = (user or self.user).run(self.runtime, *self.flags, *args, **kw)
        if check and res.rc != 0:
            raise AssertionError(f"failed: {res!r}")
        return res

    def bundle(self, script, edit=None):
        """A bundle from `ocirt spec --rootless` (made as the user) running
        sh -c script on the busybox rootfs; edit(config) changes it."""
        cid = "rootless-" + uuid.uuid4().hex[:8]
        path = os.path.join(self.base, cid)
        os.mkdir(path)
        os.chown(path, self.user.uid, self.user.gid)
        spec = self.user.run(OCIRT, "spec", "--rootless", cwd=path)
        assert spec.rc == 0, spec
        cfg_path = os.path.join(path, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = self.rootfs
        cfg["process"].update(terminal=False, args=["sh", "-c", script])
        if edit:
            edit(cfg)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.made.append((self.root, cid))
        return path, cid

    def cleanup(self):
        for root, cid in self.made:
            if self.flags:
                self("--root", root, "delete", "--force", cid, check=False)
            else:
                subprocess.run([self.runtime, "--root", root, "delete", "--force", cid], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def rl(runtime, users, busybox_rootfs):
    r = Rootless(runtime, users[0], busybox_rootfs)
    yield r
    r.cleanup()


def all_caps(cfg):
    """Every capability a container could want, in its user namespace."""
    cfg["process"]["capabilities"] = {k: list(ALL_CAPS) for k in ("bounding", "effective", "permitted")}


def sub_ids(user, start=None):
    """An edit: container 0 is the user, 1.. its subordinate range (or the
    one at `start`), as podman maps a rootless container."""
    def edit(cfg):
        for key in ("uidMappings", "gidMappings"):
            own = user.uid if key == "uidMappings" else user.gid
            cfg["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                                 {"containerID": 1, "hostID": user.sub if start is None else start,
                                  "size": SUB_SIZE}]
    return edit


def edits(*fns):
    def edit(cfg):
        for fn in fns:
            if fn:
                fn(cfg)
    return edit


@pytest.fixture(params=["own", "subids"])
def mapping(request, rl):
    """The container's id maps: the user's own ids alone (the spec's), or
    with its subordinate range (newuidmap, newgidmap)."""
    if request.param == "subids" and not shutil.which("newuidmap"):
        pytest.skip("no newuidmap (package uidmap)")
    return sub_ids(rl.user) if request.param == "subids" else None


def wait_status(rl, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = rl("state", cid, check=False)
        if res.rc == 0 and json.loads(res.out)["status"] == want:
            return True
        time.sleep(0.05)
    return False


# ---- what works ---------------------------------------------------------------

def test_run_as_a_user_is_root_of_its_own_user_namespace(rl):
    path, cid = rl.bundle("id -u; cat /proc/self/uid_map; hostname; awk '$5 == \"/sys\"' /proc/self/mountinfo | wc -l; "
                          "ls -l /dev/null")
    res = rl("run", "--bundle", path, cid)
    out = res.out.splitlines()
    assert out[0] == "0"
    assert out[1].split() == ["0", str(rl.user.uid), "1"]
    with open(os.path.join(path, "config.json")) as f:
        hostname = json.load(f)["hostname"]
    assert out[2] == hostname and out[3] == "1"    # the spec's hostname; the host's /sys, bound
    assert out[4].startswith("crw-rw-rw-")          # the host's node, bound (no mknod in a userns)
    assert "cgroup" not in res.err                  # no warning with a pid namespace (runc's rule)
    assert rl("list", "-q").out == ""               # run deleted it


def test_no_cgroup_and_no_pid_namespace_is_warned_of(rl):
    """runc's rule (1.1.5 warns when it cannot end them): then nothing can
    end all the container's processes."""
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
        for m in cfg["mounts"]:   # a new proc needs a pid namespace of the user's
            if m["destination"] == "/proc":
                m.update(type="bind", source="/proc", options=["rbind"])
    path, cid = rl.bundle("echo ran", edit)
    res = rl("run", "--bundle", path, cid)
    assert res.out == "ran\n" and "cgroup" in res.err, res
    if rl.runtime != RUNC:
        assert "without a pid namespace of its own: nothing can end all its processes" in res.err, res


def test_a_read_only_root_on_a_nosuid_nodev_mount(rl):
    """The kernel locks a mount's nosuid and nodev in a user namespace: the
    read-only remount of the root repeats them (a rootfs in a nosuid /tmp)."""
    d = tempfile.mkdtemp(prefix="ocirt-rl-nosuid-")
    os.chmod(d, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,mode=755", "tmpfs", d], check=True)
    try:
        shutil.copytree(rl.rootfs, d + "/rootfs", symlinks=True)

        def edit(cfg):
            cfg["root"].update(path=d + "/rootfs", readonly=True)
        path, cid = rl.bundle("touch /x 2>/dev/null || echo read-only; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo",
                              edit)
        out = rl("run", "--bundle", path, cid).out.split()
        assert out[0] == "read-only" and {"ro", "nosuid", "nodev"} <= set(out[1].split(",")), out
    finally:
        subprocess.run(["umount", "-l", d])
        shutil.rmtree(d, ignore_errors=True)


def test_the_state_root_is_the_users_own_in_xdg_runtime_dir(rl):
    path, cid = rl.bundle("true")
    rl("run", "--bundle", path, cid)
    st = os.stat(rl.root)
    assert (st.st_uid, st.st_mode & 0o7777) == (rl.user.uid, 0o1700)


def test_create_start_state_ps_list_exec_kill_delete(rl):
    path, cid = rl.bundle("echo started > /dev/shm/mark; sleep 1000")
    rl("create", "--bundle", path, cid)
    state = json.loads(rl("state", cid).out)
    assert state["status"] == "created" and state["pid"] > 0
    with open(f"/proc/{state['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(rl.user.uid)] * 4      # the host sees the user, not root
    rl("start", cid)
    assert wait_status(rl, cid, "running")
    assert cid in rl("list", "-q").out.split()
    # the owner is the state directory's, by name (runc's list)
    assert [(c["id"], c["owner"]) for c in json.loads(rl("list", "--format", "json").out)] == [(cid, rl.user.name)]
    assert rl("list").out.splitlines()[1].split()[-1] == rl.user.name
    assert rl("exec", cid, "sh", "-c", "id -u; cat /dev/shm/mark").out.split() == ["0", "started"]
    # no cgroup here: ps (which lists the cgroup's processes) fails, for runc too
    ps = rl("ps", cid, check=False)
    assert ps.rc == 1 and "cgroup" in ps.err
    rl("kill", cid, "KILL")
    assert wait_status(rl, cid, "stopped")
    rl("delete", cid)
    assert rl("state", cid, check=False).rc != 0
    assert rl("list", "-q").out == ""


def test_a_limit_without_a_cgroup_is_refused(rl):
    def limit(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    path, cid = rl.bundle("true", limit)
    res = rl("run", "--bundle", path, cid, check=False)
    assert res.rc == 1 and "memory" in res.err
    if rl.runtime != RUNC:
        assert "linux.resources.memory.limit: cannot be applied: a rootless container without a cgroup" in res.err
    assert rl("list", "-q").out == ""


needs_newuidmap = pytest.mark.skipif(not shutil.which("newuidmap"), reason="no newuidmap (package uidmap)")


@needs_newuidmap
def test_subordinate_ranges_through_newuidmap(rl):
    """Container 0 is the user and 1..65536 its /etc/subuid range: a file
    chowned to 1000 inside is the range's 1000th id on the host."""
    u = rl.user
    shared = os.path.join(rl.base, "shared")
    os.mkdir(shared)
    os.chown(shared, u.uid, u.gid)

    def bind(cfg):
        all_caps(cfg)
        cfg["mounts"].append({"destination": "/home", "type": "bind", "source": shared, "options": ["rbind", "rw"]})
    path, cid = rl.bundle("cat /proc/self/uid_map /proc/self/gid_map; touch /home/f && chown 1000:1000 /home/f; "
                          "stat -c '%u %g' /home/f; id -G", edits(bind, sub_ids(u)))
    lines = rl("run", "--bundle", path, cid).out.splitlines()
    want = [["0", str(u.uid), "1"], ["1", str(u.sub), str(SUB_SIZE)]]
    assert [x.split() for x in lines[:2]] == want
    assert [x.split() for x in lines[2:4]] == [["0", str(u.gid), "1"], ["1", str(u.sub), str(SUB_SIZE)]]
    assert lines[4] == "1000 1000"
    st = os.stat(os.path.join(shared, "f"))
    assert (st.st_uid, st.st_gid) == (u.sub + 999, u.sub + 999)
    assert rl("list", "-q").out == ""


def _nothing_left(rl, res, field):
    assert res.rc == 1, res
    if rl.runtime != RUNC:
        err = res.err.strip().splitlines()[-1]
        assert err.startswith(f"ocirt: config.json: {field}: ") and "Traceback" not in res.err, res
    assert rl("list", "-q").out == ""
    assert not os.path.isdir(rl.root) or os.listdir(rl.root) == []
    assert wait_gone(rl.user.uid), "a process of the user is left"


def wait_gone(uid, timeout=5):
    """No live process of uid is left (a zombie is dead: its reaper, pid 1
    here, may take a moment)."""
    def owned(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return os.stat(f"/proc/{pid}").st_uid == uid and state != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(owned(p) for p in os.listdir("/proc") if p.isdigit()):
            return True
        time.sleep(0.05)
    return False


@needs_newuidmap
def test_a_range_beyond_the_users_grant_is_refused(rl, users):
    """Another user's subordinate range: newuidmap refuses it."""
    path, cid = rl.bundle("true", sub_ids(rl.user, start=users[1].sub))
    res = rl("run", "--bundle", path, cid, check=False)
    _nothing_left(rl, res, "linux.uidMappings")
    if rl.runtime != RUNC:
        assert "newuidmap refused the map: newuidmap: uid range" in res.err, res


def test_subordinate_ranges_without_newuidmap_are_refused(rl):
    """newuidmap not in PATH: the map cannot be written."""
    path, cid = rl.bundle("true", sub_ids(rl.user))
    res = rl.user.run(rl.runtime, "run", "--bundle", path, cid, path="/nonexistent")
    _nothing_left(rl, res, "linux.uidMappings")
    if rl.runtime != RUNC:
        assert "needs newuidmap (Debian package uidmap), not found in PATH" in res.err, res


# ---- what it must not reach ---------------------------------------------------------

def test_a_host_file_of_root_stays_unwritable(rl, mapping):
    """Root of the container, with every capability, is the user on the
    host: a root-owned file bound in read-write stays root's and unwritten."""
    d = tempfile.mkdtemp(prefix="ocirt-rl-host-")
    os.chmod(d, 0o755)
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("host\n")
    os.chmod(victim, 0o644)

    def edit(cfg):
        all_caps(cfg)
        # over a file the rootfs has (the user cannot make one in it)
        cfg["mounts"].append({"destination": "/etc/group", "type": "bind", "source": victim,
                              "options": ["bind", "rw"]})
    try:
        path, cid = rl.bundle("stat -c %u /etc/group; echo owned > /etc/group && echo WROTE; "
                              "chown 0 /etc/group && echo CHOWNED; true", edits(edit, mapping))
        out = rl("run", "--bundle", path, cid).out
        assert "WROTE" not in out and "CHOWNED" not in out
        assert out.split()[0] == "65534"      # root of the host is unmapped: nobody
        with open(victim) as f:
            assert f.read() == "host\n"
    finally:
        shutil.rmtree(d)


def test_no_device_node_and_no_host_hostname(rl, mapping):
    """CAP_MKNOD and CAP_SYS_ADMIN of the container's user namespace: no
    device node, and the host's uts namespace (shared here) refuses a name."""
    host_name = os.uname().nodename

    def edit(cfg):
        all_caps(cfg)
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
        del cfg["hostname"]
    path, cid = rl.bundle("mknod /dev/evil c 1 1 && echo MKNOD; hostname rootless-evil && echo RENAMED; "
                          "echo 1 > /proc/sys/kernel/sysrq && echo SYSCTL; true", edits(edit, mapping))
    res = rl("run", "--bundle", path, cid)
    assert "MKNOD" not in res.out and "RENAMED" not in res.out and "SYSCTL" not in res.out, res
    assert os.uname().nodename == host_name


def test_another_user_cannot_see_or_act_on_the_container(rl, users):
    other = users[1]
    path, cid = rl.bundle("sleep 1000")
    rl("run", "--detach", "--bundle", path, cid)
    pid = json.loads(rl("state", cid).out)["pid"]
    for argv in (["list", "-q"], ["state", cid], ["kill", cid, "KILL"], ["delete", "--force", cid],
                 ["exec", cid, "true"]):
        res = rl("--root", rl.root, *argv, user=other, check=False)
        assert res.rc != 0 or (argv[0] == "list" and cid not in res.out), res
    # the same in a state root anyone may enter (--root in a shared directory)
    shared = os.path.join(rl.base, "shared")
    os.mkdir(shared, 0o1777)
    os.chmod(shared, 0o1777)
    path2, cid2 = rl.bundle("sleep 1000")
    rl.made.append((os.path.join(shared, "root"), cid2))
    rl("--root", os.path.join(shared, "root"), "run", "--detach", "--bundle", path2, cid2)
    for argv in (["kill", cid2, "KILL"], ["delete", "--force", cid2], ["exec", cid2, "true"]):
        assert rl("--root", os.path.join(shared, "root"), *argv, user=other, check=False).rc != 0
    res = rl("--root", os.path.join(shared, "root"), "list", "-q", user=other, check=False)
    assert res.rc != 0 or cid2 not in res.out
    assert json.loads(rl("state", cid).out)["status"] == "running" and os.path.exists(f"/proc/{pid}")
    assert json.loads(rl("--root", os.path.join(shared, "root"), "state", cid2).out)["status"] == "running"


# ---- the user's systemd manager (--systemd-cgroup): in the systemd VM ---------------

def _user_manager_running(uid):
    return os.path.exists(f"/run/user/{uid}/bus")


@pytest.fixture(scope="module")
def systemd_user():
    """A user whose systemd manager runs (linger), with its bus in
    XDG_RUNTIME_DIR=/run/user/UID; where systemd is PID 1 on cgroup v2."""
    if not os.path.isdir("/run/systemd/system") or not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("needs systemd as PID 1 on cgroup v2 (tests/vm/run-systemd-tests.sh runs it in the VM)")
    with throwaway_users([f"ocsd{os.getpid() % 100000}"], first=400000 + 2 * SUB_SIZE, cls=User) as (u,):
        subprocess.run(["loginctl", "enable-linger", u.name], check=True, capture_output=True)
        try:
            deadline = time.monotonic() + 60
            while not _user_manager_running(u.uid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _user_manager_running(u.uid), "the user's manager did not start"
            shutil.rmtree(u.xdg)
            u.xdg = f"/run/user/{u.uid}"
            yield u
        finally:
            subprocess.run(["loginctl", "disable-linger", u.name], capture_output=True)
            subprocess.run(["systemctl", "stop", f"user@{u.uid}.service"], capture_output=True)


@pytest.fixture
def srl(runtime, systemd_user, busybox_rootfs):
    r = Rootless(runtime, systemd_user, busybox_rootfs, flags=["--systemd-cgroup"])
    yield r
    r.cleanup()


def _cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line for line in f if line.startswith("0::")).strip()[3:]


def test_systemd_cgroup_of_a_rootless_container_is_a_scope_of_the_users_manager(srl):
    """--systemd-cgroup as the user: a scope of its own manager (the user
    bus), under user.slice there, with the limits applied; ps, pause and
    resume work; delete removes the scope (runc alike)."""
    def limits(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}
    u = srl.user
    path, cid = srl.bundle("sleep 1000", limits)
    srl("run", "--detach", "--bundle", path, cid)
    pid = json.loads(srl("state", cid).out)["pid"]
    cg = _cgroup_of(pid)
    manager = f"/user.slice/user-{u.uid}.slice/user@{u.uid}.service/user.slice/"
    assert cg.startswith(manager) and cg.endswith(f"-{cid}.scope"), cg
    d = "/sys/fs/cgroup" + cg
    with open(d + "/memory.max") as f, open(d + "/pids.max") as g:
        assert (f.read().strip(), g.read().strip()) == (str(64 << 20), "50")
    assert str(pid) in srl("ps", cid).out
    srl("pause", cid)
    assert json.loads(srl("state", cid).out)["status"] == "paused"
    srl("resume", cid)
    srl("kill", cid, "KILL")
    assert wait_status(srl, cid, "stopped")
    srl("delete", cid)
    deadline = time.monotonic() + 10
    while os.path.exists(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(d)
