"""`ocirt spec`: write a starter config.json, like `runc spec`."""
import os

from ocirt import SPEC_VERSION, jsonio
from ocirt.errors import OcirtError

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_spec(rootless=False):
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "ocirt",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    # as runc: a cgroup namespace only where /sys/fs/cgroup is cgroup v2 alone
    # (on v1 and hybrid hosts, runc 1.1's and newer runc's starter have none)
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    if rootless:
        _make_rootless(spec)
    return spec


def _make_rootless(spec):
    """As `runc spec --rootless`: a user namespace mapping the caller, no
    network namespace, sysfs bind-mounted, no cgroup mount or devices limits."""
    linux = spec["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] not in ("network", "cgroup")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    del linux["resources"]
    mounts = [m for m in spec["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    for m in mounts:
        if m["destination"] == "/sys":
            m.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    spec["mounts"] = mounts


def cmd_spec(g, flags, args):
    from ocirt.cli import no_args
    no_args(args, "spec")
    bundle = flags["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise OcirtError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        f.write(jsonio.dumps_indent(default_spec(flags["rootless"]), "\t") + "\n")
    return 0
