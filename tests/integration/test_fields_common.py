"""Helpers of the field and security tests: real containers run by the
installed ocirt (as root) on a busybox rootfs, with a private --root, a
cgroup under /ocirt-fields-<pid> and a host directory at /out."""
import glob
import json
import os
import shutil
import subprocess
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OCIRT = os.environ.get("OCIRT", "/usr/local/bin/ocirt")
CG_PARENT = f"/ocirt-fields-{os.getpid()}"
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
NSX = ["nosuid", "noexec", "nodev"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def base_config(rootfs, out):
    mounts = [("/proc", "proc", "proc", None),
              ("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
              ("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666"]),
              ("/dev/shm", "tmpfs", "shm", NSX + ["mode=1777"]),
              ("/sys", "sysfs", "sysfs", NSX + ["ro"]),
              ("/out", "bind", out, ["rbind", "rw"])]
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.3.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "env": list(ENV), "cwd": "/",
                    "capabilities": dict.fromkeys(("bounding", "effective", "permitted"), caps),
                    "noNewPrivileges": True},
        "root": {"path": rootfs, "readonly": True},
        "mounts": [dict(destination=d, type=t, source=s, **({"options": o} if o else {}))
                   for d, t, s, o in mounts],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                  "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]},
    }


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[-500:]!r} err={self.err[-500:]!r}>"


class Box:
    """One test's bundle(s) and state root; everything removed at the end."""

    def __init__(self, rootfs, tmp):
        self.rootfs, self.tmp = rootfs, str(tmp)
        self.root = os.path.join(self.tmp, "state")
        self.out = os.path.join(self.tmp, "out")
        os.makedirs(self.out)
        os.chmod(self.out, 0o777)
        self.bundle = os.path.join(self.tmp, "bundle")
        os.makedirs(self.bundle)
        self.cid = "f-" + uuid.uuid4().hex[:10]
        self.config = base_config(rootfs, self.out)
        self.config["linux"]["cgroupsPath"] = f"{CG_PARENT}/{self.cid}"

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config["linux"]

    def sh(self, script):
        self.process["args"] = ["sh", "-c", script]
        return self

    def ocirt(self, *args, check=False, timeout=30, **kw):
        self.write()
        p = subprocess.run([OCIRT, "--root", self.root, *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        res = Result(p.returncode, p.stdout, p.stderr)
        if check:
            assert res.rc == 0, res
        return res

    def run(self, check=True, extra=()):
        return self.ocirt("run", *extra, "--bundle", self.bundle, self.cid, check=check)

    def create(self, check=True, extra=()):
        return self.ocirt("create", *extra, "--bundle", self.bundle, self.cid, check=check)

    def state(self):
        res = self.ocirt("state", self.cid)
        return json.loads(res.out) if res.rc == 0 else None

    def write(self):
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(self.config, f)

    def read_out(self, name):
        with open(os.path.join(self.out, name)) as f:
            return f.read()

    def cleanup(self):
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                subprocess.run([OCIRT, "--root", self.root, "delete", "--force", cid],
                               capture_output=True, timeout=30)


def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def cgroup_dirs(path):
    return glob.glob(f"/sys/fs/cgroup/*{path}") + glob.glob(f"/sys/fs/cgroup/*/*{path}")


def procs_in(rootfs):
    """Pids whose root directory is the rootfs (a container's processes)."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/root") == rootfs:
                    found.append(int(p))
            except OSError:
                pass
    return found


def leftovers(box):
    """Whatever a failed or deleted container left: state dir, cgroup, mount, process."""
    found = []
    if os.path.isdir(box.root):
        found += [f"state dir {n}" for n in os.listdir(box.root) if n == box.cid]
    found += [f"cgroup {d}" for d in cgroup_dirs(box.config["linux"].get("cgroupsPath", "//"))]
    found += [f"mount {m}" for m in mountpoints() if m.startswith((box.tmp, box.rootfs))]
    found += [f"process {p}" for p in procs_in(box.rootfs)]
    return found


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fields") / "rootfs")
    subprocess.run(["sh", os.path.join(REPO, "bundles", "mkrootfs.sh"), path], check=True,
                   capture_output=True)
    for d in ("out", "mnt", "data"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    yield path
    for d in cgroup_dirs(CG_PARENT):
        for sub, _, _ in sorted(os.walk(d), key=lambda w: len(w[0]), reverse=True):
            os.rmdir(sub)


@pytest.fixture
def box(rootfs, tmp_path):
    b = Box(rootfs, tmp_path)
    yield b
    b.cleanup()


def fresh_rootfs(rootfs, dest):
    """A private copy of the rootfs, for tests that change files in it."""
    shutil.copytree(rootfs, dest, symlinks=True)
    return dest

