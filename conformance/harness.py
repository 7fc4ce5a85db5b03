"""Drive a runc-compatible runtime through its command line, on bundles built here.

Nothing in this module knows which runtime it drives: every check goes through
the binary's commands (create, start, state, kill, delete, run, features) and
what the kernel shows of the container (/proc, cgroup files, mountinfo).
"""
import contextlib
import copy
import functools
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
NSX = ["nosuid", "noexec", "nodev"]
# Mount points added to the shared rootfs once, so that no runtime has to create them
# in a rootfs that all bundles share read-only.
EXTRA_DIRS = ["out", "mnt/a", "mnt/b", "mnt/c", "data", "var/run/secrets/kubernetes.io/serviceaccount"]
# Files the clients' configs bind-mount over, present in the images they run.
EXTRA_FILES = ["etc/hosts", "etc/hostname", "etc/resolv.conf", "run/.containerenv"]
TIMEOUT = 30

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def cap_mask(names):
    """The /proc/PID/status bitmask of a list of capability names."""
    return sum(1 << CAPS.index(n) for n in names)


def default_config(args, cgroups_path):
    """A config.json close to `runc spec`, without a terminal, with a cgroups path."""
    mounts = [("/proc", "proc", "proc", None),
              ("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
              ("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
              ("/dev/shm", "tmpfs", "shm", NSX + ["mode=1777", "size=65536k"]),
              ("/dev/mqueue", "mqueue", "mqueue", NSX),
              ("/sys", "sysfs", "sysfs", NSX + ["ro"]),
              ("/sys/fs/cgroup", "cgroup", "cgroup", NSX + ["relatime", "ro"])]
    caps = dict.fromkeys(("bounding", "effective", "permitted"), DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": list(args), "env": list(ENV),
                    "cwd": "/", "capabilities": copy.deepcopy(caps), "noNewPrivileges": True,
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "conformance",
        "mounts": [dict(destination=d, type=t, source=s, **({"options": o} if o else {}))
                   for d, t, s, o in mounts],
        "linux": {"cgroupsPath": cgroups_path,
                  "resources": {"devices": [{"allow": False, "access": "rwm"}]},
                  "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": list(MASKED), "readonlyPaths": list(READONLY)},
    }


class Result:
    """Exit status and output of one runtime command."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def __repr__(self):
        return f"<{' '.join(self.argv)}: rc={self.rc} out={self.out[-400:]!r} err={self.err[-600:]!r}>"


class RuntimeError_(AssertionError):
    """A runtime command expected to succeed failed."""


class Runtime:
    """The runtime binary, with a private --root state directory."""

    def __init__(self, binary, root, flags=(), user=None):
        """user: a ThrowawayUser that runs every command (rootless)."""
        self.binary, self.root, self.flags, self.user = binary, root, list(flags), user
        self.name = os.path.basename(binary)

    def __call__(self, *args, check=True, stdin=None, timeout=TIMEOUT, env=None, prefix=()):
        """Run one command (under `prefix`, e.g. setpriv); stdout/stderr go to files,
        as a container started by create keeps them open long after the runtime has exited."""
        if self.user:
            env = dict(self.user.env(), **(env or {}))
        argv = self.argv(*args, prefix=prefix)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            rc = subprocess.run(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=out, stderr=err, timeout=timeout, env=env).returncode
            out.seek(0), err.seek(0)
            res = Result(argv, rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
        if check and rc != 0:
            raise RuntimeError_(f"command failed: {res!r}")
        return res

    def argv(self, *args, prefix=()):
        """The command line of one command (as the user, if rootless)."""
        return [*(self.user.prefix if self.user else ()), *prefix, self.binary, "--root", self.root, *self.flags,
                *args]

    def state(self, cid):
        return json.loads(self("state", cid).out)

    def state_or_none(self, cid):
        res = self("state", cid, check=False)
        return json.loads(res.out) if res.rc == 0 else None

    def wait_status(self, cid, status, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            st = self.state_or_none(cid)
            if st and st["status"] == status or time.monotonic() > deadline:
                return st
            time.sleep(0.02)


class Bundle:
    """A bundle directory: config.json naming the shared rootfs by its absolute path,
    and an `out` directory bind-mounted at /out for what the container writes."""

    def __init__(self, path, rootfs, cgroups_path, args=("true",)):
        self.path, self.rootfs = path, rootfs
        self.out = os.path.join(path, "out")
        os.makedirs(self.out, exist_ok=True)
        os.chmod(self.out, 0o777)
        self.config = default_config(args, cgroups_path)
        self.config["root"]["path"] = rootfs
        self.config["mounts"].append({"destination": "/out", "type": "bind", "source": self.out,
                                      "options": ["rbind", "rw"]})
        self.cid = "conf-" + uuid.uuid4().hex[:12]

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config["linux"]

    def sh(self, script):
        """Run `sh -c script` in the container."""
        self.process["args"] = ["sh", "-c", script]
        return self

    def mount(self, dest, mtype, source, options=None, index=None):
        m = {"destination": dest, "type": mtype, "source": source}
        if options is not None:
            m["options"] = options
        self.config["mounts"].insert(len(self.config["mounts"]) if index is None else index, m)
        return m

    def drop_mount(self, dest):
        self.config["mounts"] = [m for m in self.config["mounts"] if m["destination"] != dest]

    def drop_namespace(self, ns):
        self.linux["namespaces"] = [n for n in self.linux["namespaces"] if n["type"] != ns]

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    def read_out(self, name):
        with open(os.path.join(self.out, name)) as f:
            return f.read()


# ---------------------------------------------------------------- host views

def applied_or_rejected(ct, b, claimed=lambda: False):
    """Run a bundle whose field a runtime may not support: the container's
    output if it runs, or None if the runtime rejected it (an error, nothing
    left behind). Rejecting is wrong when `claimed()`: the runtime's features
    document says it supports the field. Silently ignoring the field fails
    the caller's check of the output."""
    res = ct.run(b, check=False)
    if res.rc == 0:
        return res.out
    assert not claimed(), res
    assert leftovers(ct.rt, b, ct.rootfs) == []
    return None


def userns_bundle(ct, script):
    """A bundle with a new user namespace mapping root to 100000 (gids to
    200000); a rootless one keeps its own (rootless_bundle)."""
    b = ct.bundle(script)
    if not any(n["type"] == "user" for n in b.linux["namespaces"]):
        b.linux["namespaces"].append({"type": "user"})
        b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        b.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.drop_mount("/sys/fs/cgroup")  # a v1 cgroup hierarchy cannot be mounted in a user namespace
    for m in b.config["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    b.drop_mount("/out")  # not writable by the mapped root
    return b


def rootless_bundle(b, user):
    """What a rootless container is given (as podman's): a user namespace
    mapping root to the user and 1.. to its subordinate range (through
    newuidmap), no cgroup, no cgroup mount (none may be made)."""
    b.linux["namespaces"].append({"type": "user"})
    for key, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
        b.linux[key] = [{"containerID": 0, "hostID": own, "size": 1},
                        {"containerID": 1, "hostID": user.sub, "size": SUB_SIZE}]
    del b.linux["cgroupsPath"]
    b.drop_mount("/sys/fs/cgroup")
    return b


def read_only_dev(b):
    """`ro` on the /dev tmpfs (runc fills /dev first, then makes it read-only),
    and a device of linux.devices to be made in it."""
    for m in b.config["mounts"]:
        if m["destination"] == "/dev":
            m["options"].append("ro")
    b.linux["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3}]
    return b


def mountinfo(pid="self"):
    """Mount entries of a process: dicts with point, opts, tags, fstype, source, super."""
    return parse_mountinfo(read(f"/proc/{pid}/mountinfo"))


def parse_mountinfo(text):
    entries = []
    for line in text.splitlines():
        if " - " in line:
            pre, post = line.split(" - ", 1)
            fields = pre.split()
            fstype, source, sup = (post.split(" ") + ["", ""])[:3]
            entries.append({"root": fields[3], "point": fields[4].replace("\\040", " "),
                            "opts": fields[5].split(","), "tags": fields[6:], "fstype": fstype,
                            "source": source, "super": sup.split(",")})
    return entries


def cgroup_driver():
    """'v2' when /sys/fs/cgroup is a cgroup2 mount, else 'v1' (legacy or hybrid)."""
    for m in mountinfo():
        if m["point"] == "/sys/fs/cgroup":
            return "v2" if m["fstype"] == "cgroup2" else "v1"
    return "v1"


def cgroup_mounts():
    """Host cgroup hierarchies: {controller-or-name: mount point}; 'unified' for cgroup2."""
    found = {}
    for m in mountinfo():
        if m["fstype"] == "cgroup2":
            found["" if m["point"] == "/sys/fs/cgroup" else "unified"] = m["point"]
        elif m["fstype"] == "cgroup":
            for opt in m["super"]:
                if opt in ("rw", "ro") or opt.startswith("release_agent") or opt == "xattr":
                    continue
                found[opt.replace("name=", "")] = m["point"]
    return found


# CGROUP_DRIVER=systemd: the suite runs with --systemd-cgroup (tests/vm/run-systemd-tests.sh)
SYSTEMD = os.environ.get("CGROUP_DRIVER") == "systemd"


def cgroup_dir(controller, path):
    """Host directory of cgroups path in a v1 controller (or v2 when controller is '')."""
    base = cgroup_mounts().get(controller)
    return None if base is None else os.path.join(base, systemd_scope_path(path).lstrip("/"))


def systemd_scope_path(cg):
    """A systemd "slice:prefix:name" path -> the scope's cgroup path, nested
    slices laid out as systemd does ("a-b.slice": /a.slice/a-b.slice); any
    other path as it is."""
    if cg.count(":") != 2 or cg.startswith("/"):
        return cg
    slice_, prefix, name = cg.split(":")
    parts = (slice_ or "system.slice")[:-len(".slice")].split("-")
    slices = "" if parts == ["", ""] else \
        "".join(f"/{'-'.join(parts[:i + 1])}.slice" for i in range(len(parts)))   # "-.slice": the root
    return f"{slices}/{prefix + '-' if prefix else ''}{name}.scope"


def cgroup_dirs_existing(path):
    if not path:
        return []   # none asked for (a rootless bundle)
    return sorted({d for c in cgroup_mounts() if (d := cgroup_dir(c, path)) and os.path.isdir(d)})


def remove_cgroup_tree(path):
    """rmdir the cgroup `path` and its children in every hierarchy (only ours)."""
    for d in cgroup_dirs_existing(path):
        for dirpath, _, _ in sorted(os.walk(d), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def procs_rooted_at(rootfs):
    """PIDs whose root directory is the shared rootfs: processes of some container."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/root") == rootfs:
                    pids.append(int(p))
            except OSError:
                pass
    return pids


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def read(path):
    with open(path) as f:
        return f.read()


def status_field(text, key):
    """A field of /proc/PID/status content."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


def leftovers(rt, b, rootfs):
    """What a container left behind after it should be gone: state, state dir,
    cgroup, process, mount. Empty when the environment is as before."""
    found = []
    if rt.state_or_none(b.cid) is not None:
        found.append("`state` still answers")
    found += [f"state dir {n}" for n in os.listdir(rt.root) if b.cid in n]
    cg = systemd_scope_path(b.linux.get("cgroupsPath") or "")
    if cg:
        found += [f"cgroup {d}" for d in cgroup_dirs_existing(cg)]
    found += [f"process {p}" for p in procs_rooted_at(rootfs)]
    found += [f"mount {m['point']}" for m in mountinfo()
              if m["point"].startswith((b.path, rootfs)) or b.cid in m["point"]]
    return found


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def link_on_host(name):
    return ip("link", "show", "dev", name, check=False).returncode == 0


@functools.cache
def dummy_or_veth():
    """`ip link add` type arguments that work on this kernel (a veth's peer
    name to append), or None."""
    probe = f"ocprobe{os.getpid() % 1000}"
    for kind in (["dummy"], ["veth", "peer", "name"]):
        if ip("link", "add", probe, "type", *kind, *([probe + "p"] if len(kind) > 1 else []),
              check=False).returncode == 0:
            ip("link", "del", probe)
            return kind
    return None


@contextlib.contextmanager
def named_netns(prefix):
    """A network namespace under /run/netns (`ip netns add`), deleted after."""
    name = f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        ip("netns", "delete", name, check=False)


class HostLinks:
    """Host network devices for netDevices tests, PREFIX<pid>x<n> with 192.0.2.n/24,
    2001:db8::n/64 (nodad) and a link-scope 198.51.100.n/24: dummy devices, or veth
    pairs (the host keeps the peer, NAMEp) where the kernel has no dummy driver."""
    V4, V6 = "192.0.2.{n}/24", "2001:db8::{n}/64"

    def __init__(self, prefix):
        self.prefix, self.made = prefix, []

    def make(self, n):
        name = f"{self.prefix}{os.getpid() % 1000}x{n}"
        kind = dummy_or_veth()
        ip("link", "add", name, "type", *kind, *([name + "p"] if len(kind) > 1 else []))
        self.made.append(name)
        ip("addr", "add", self.V4.format(n=n), "dev", name)
        ip("addr", "add", self.V6.format(n=n), "dev", name, "nodad")
        ip("addr", "add", f"198.51.100.{n}/24", "dev", name, "scope", "link")
        return name

    def remove_all(self):
        """Delete what is still on the host (a moved device is the kernel's to free)."""
        for name in self.made:
            for dev in (name, name + "p"):
                if link_on_host(dev):
                    ip("link", "del", dev, check=False)


class ThrowawayUser:
    """An ordinary user made for the tests (no home, no login), with its own
    XDG_RUNTIME_DIR (0700, as systemd-logind makes it); `prefix` runs a
    command as that user (setpriv), with `env()`."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/false",
                        "--user-group", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.xdg = tempfile.mkdtemp(prefix=f"ocirt-xdg-{name}-")
        os.chown(self.xdg, self.uid, self.gid)
        self.sub = None  # the first id of its /etc/subuid and /etc/subgid range (throwaway_users)
        self.prefix = (shutil.which("setpriv"), f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--")

    def env(self, path="/usr/sbin:/usr/bin:/sbin:/bin"):
        return {"PATH": path, "XDG_RUNTIME_DIR": self.xdg, "USER": self.name, "HOME": "/nonexistent"}

    def own(self, path, mode=0o755):
        """A directory of root's made the user's, to put its bundles in."""
        os.chmod(path, mode)
        os.chown(path, self.uid, self.gid)
        return path

    def remove(self):
        shutil.rmtree(self.xdg, ignore_errors=True)
        subprocess.run(["userdel", self.name], capture_output=True)


SUB_SIZE = 65536
SUBID_FILES = ("/etc/subuid", "/etc/subgid", "/etc/subuid-", "/etc/subgid-")  # with shadow's backups


@contextlib.contextmanager
def throwaway_users(names, first=400000, cls=ThrowawayUser):
    """ThrowawayUsers (cls) of these names, each with a subordinate uid and gid
    range of SUB_SIZE from `first` on (user.sub); after, the users removed
    and the files as they were."""
    saved = {f: open(f).read() if os.path.exists(f) else None for f in SUBID_FILES}
    made = []
    try:
        for i, name in enumerate(names):
            made.append(cls(name))
            made[-1].sub = first + SUB_SIZE * i
        for f in SUBID_FILES[:2]:
            with open(f, "a") as out:
                out.writelines(f"{u.name}:{u.sub}:{SUB_SIZE}\n" for u in made)
        yield made
    finally:
        for u in made:
            u.remove()
        for f, text in saved.items():
            if text is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f)
            else:
                with open(f, "w") as out:
                    out.write(text)
