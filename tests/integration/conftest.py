"""Fixtures for integration tests that run real containers through the ocirt
binary: a busybox rootfs built once, and per test a private --root, bundles
with an absolute cgroupsPath under /ocirt-it-<pid>/, and a clean-up that
removes only what the test made (delete --force by id, kill by pid)."""
import array
import copy
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from conformance.harness import (cgroup_dirs_existing, kill_pid, mountinfo, pid_alive,  # noqa: E402
                                 procs_rooted_at, remove_cgroup_tree)

OCIRT = os.environ.get("OCIRT", "/usr/local/bin/ocirt")
TIMEOUT = 30
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]

# A small config: enough for busybox, without anything that could hide a
# lifecycle bug behind a feature under construction.
BASE_CONFIG = {
    "ociVersion": "1.3.0",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["true"], "env": ENV, "cwd": "/",
                "capabilities": {k: ["CAP_KILL", "CAP_SETUID", "CAP_SETGID"]
                                 for k in ("bounding", "effective", "permitted")},
                "noNewPrivileges": True},
    "root": {"path": "", "readonly": True},
    "hostname": "ocirt-test",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
               {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
               {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}],
    "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
}


class Result:
    def __init__(self, argv, proc):
        self.argv, self.rc, self.out, self.err = argv, proc.returncode, proc.stdout, proc.stderr

    def __repr__(self):
        return f"<{' '.join(self.argv)}: rc={self.rc} out={self.out[-300:]!r} err={self.err[-500:]!r}>"


class Bundle:
    """A bundle directory whose config.json names the shared rootfs."""

    def __init__(self, path, rootfs, cgroups_path, cid):
        self.path, self.cid = path, cid
        self.config = copy.deepcopy(BASE_CONFIG)
        self.config["root"]["path"] = rootfs
        self.config["linux"]["cgroupsPath"] = cgroups_path

    @property
    def process(self):
        return self.config["process"]

    def sh(self, script):
        self.process["args"] = ["sh", "-c", script]
        return self

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f)


class Ocirt:
    """The ocirt binary on a private --root, and everything one test made."""

    def __init__(self, rootfs, base, cg_parent):
        self.rootfs, self.base, self.cg_parent = rootfs, base, cg_parent
        self.root = os.path.join(base, "state")
        self.bundles, self.pids = [], []

    def __call__(self, *args, check=True, input=None, timeout=TIMEOUT, root=True):
        """One command; stdout/stderr through files, as a created container keeps
        inherited pipes open after ocirt has exited."""
        argv = [OCIRT] + (["--root", self.root] if root else []) + list(args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.TemporaryFile() as inp:
            inp.write((input or "").encode())
            inp.seek(0)
            p = subprocess.run(argv, stdin=inp if input is not None else subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=timeout)
            out.seek(0), err.seek(0)
            p.stdout, p.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        res = Result(argv, p)
        if check and res.rc != 0:
            raise AssertionError(f"ocirt failed: {res!r}")
        return res

    def bundle(self, script=None):
        cid = "it-" + uuid.uuid4().hex[:10]
        path = os.path.join(self.base, cid)
        os.makedirs(path)
        b = Bundle(path, self.rootfs, f"{self.cg_parent}/{cid}", cid)
        if script is not None:
            b.sh(script)
        self.bundles.append(b)
        return b

    def create(self, b, *flags, check=True):
        b.write()
        res = self("create", "--bundle", b.path, *flags, b.cid, check=check)
        if res.rc == 0:
            self.pids.append(self.state(b.cid)["pid"])
        return res

    def run(self, b, *flags, check=True, input=None):
        b.write()
        return self("run", "--bundle", b.path, *flags, b.cid, check=check, input=input)

    def state(self, cid):
        return json.loads(self("state", cid).out)

    def status(self, cid):
        res = self("state", cid, check=False)
        return json.loads(res.out)["status"] if res.rc == 0 else None

    def cleanup(self):
        for b in self.bundles:
            self("delete", "--force", b.cid, check=False)
        for pid in self.pids:
            kill_pid(pid)
        for b in self.bundles:
            remove_cgroup_tree(b.config["linux"]["cgroupsPath"])

    def host_view(self):
        """What containers can leave behind on the host: mounts, processes in our rootfs,
        state dirs, cgroups under our parent."""
        return {"mounts": sorted(m["point"] for m in mountinfo()),
                "procs": sorted(p for p in procs_rooted_at(self.rootfs) if pid_alive(p)),
                "state": sorted(os.listdir(self.root)) if os.path.isdir(self.root) else [],
                "cgroups": sorted(d for b in self.bundles
                                  for d in cgroup_dirs_existing(b.config["linux"]["cgroupsPath"]))}


class ConsoleSocket(threading.Thread):
    """The --console-socket peer: one connection, one message whose data
    (the pty's name) must not be empty, the pty master with SCM_RIGHTS."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(TIMEOUT)
        self.master, self.data = None, b""

    def run(self):
        conn, _ = self.srv.accept()
        with conn:
            fds = array.array("i")
            self.data, anc, _, _ = conn.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:fds.itemsize])
            self.master = fds[0] if fds else None
        self.srv.close()


def read_until(fd, want, timeout=TIMEOUT):
    """What a pty master (or pipe) gives until `want` shows, it closes, or timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    while want not in data and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is gone
            break
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture(scope="session")
def busybox_rootfs():
    if os.geteuid() != 0:
        pytest.skip("needs root: runs real containers")
    d = tempfile.mkdtemp(prefix="ocirt-it-")
    os.chmod(d, 0o755)  # reachable from a user namespace's root
    path = os.path.join(d, "rootfs")
    subprocess.run(["sh", os.path.join(REPO, "bundles", "mkrootfs.sh"), path], check=True)
    yield path
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cg_parent():
    parent = f"/ocirt-it-{os.getpid()}"
    yield parent
    remove_cgroup_tree(parent)


@pytest.fixture
def oci(busybox_rootfs, cg_parent, tmp_path):
    o = Ocirt(busybox_rootfs, str(tmp_path), cg_parent)
    yield o
    o.cleanup()
