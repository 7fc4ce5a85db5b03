"""The step vocabulary (ocirt/plan/steps.py): what the planners emit is
declared, the helper's table is generated from it, and the helper refuses
a step it does not know or one without its fields."""
import importlib.util
import os
import socket
import subprocess

import pytest

from ocirt.plan import build, encode, steps
from ocirt.plan.context import Context, Host
from ocirt.plan.seccomp import Compiled
from ocirt.launch import INIT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROC = {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
NS = [{"type": t} for t in ("pid", "mount", "network", "ipc", "uts")]
MOUNTS = [{"destination": "/proc", "type": "proc", "source": "proc"},
          {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}]
CTX = {"rootfs": "/r", "bundle": "/b", "fifo": "/s/exec.fifo", "id": "c1"}


def gen():
    spec = importlib.util.spec_from_file_location("gen_steps", os.path.join(ROOT, "tools", "gen_steps.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_header_is_current():
    with open(os.path.join(ROOT, "ocirt", "_native", "steps_gen.h")) as f:
        assert f.read() == gen().generate(), "run: python tools/gen_steps.py"


def plans(tmp_path, monkeypatch):
    """Plans that between them take every step a planner has."""
    proc = dict(PROC, terminal=True, oomScoreAdj=1, apparmorProfile="p", noNewPrivileges=True,
                rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}],
                scheduler={"policy": "SCHED_BATCH"}, ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 1},
                execCPUAffinity={"initial": "0", "final": "0"})
    idmap = [{"containerID": 0, "hostID": 1000, "size": 1}]
    linux = {"namespaces": NS + [{"type": "user"}, {"type": "time"}], "uidMappings": idmap, "gidMappings": idmap,
             "timeOffsets": {"monotonic": {"secs": 1}}, "sysctl": {"net.ipv4.ip_forward": "1"},
             "personality": {"domain": "LINUX"}, "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"},
             "devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}],
             "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"], "rootfsPropagation": "shared"}
    hooks = {"createContainer": [{"path": "/h"}], "startContainer": [{"path": "/h"}]}
    spec = {"process": proc, "root": {"path": "rootfs", "readonly": True}, "hostname": "h", "domainname": "d",
            "mounts": MOUNTS + [{"destination": "/data", "type": "bind", "source": str(tmp_path),
                                 "options": ["bind", "idmap"]}], "linux": linux, "hooks": hooks}
    notify = Compiled(b"\0" * 8, 0, "/run/agent.sock")
    host = Host(apparmor=True, sources={str(tmp_path): "dir"})
    yield build.create_plan(spec, Context(**CTX, console_fd=5, seccomp=notify, cgroup_hold=True, host=host,
                                          cgroup_leave=["/l"], cgroup_files=["/c"], cgroup_v2_dir="/u"))
    spec = {"process": PROC, "root": {"path": "rootfs"}, "mounts": MOUNTS, "linux": {"namespaces": NS}}
    yield build.create_plan(spec, Context(**CTX, no_pivot=True, seccomp=Compiled(b"\0" * 8, 0)))
    yield build.exec_plan([("ipc", "/proc/1/ns/ipc")], PROC, Context(wait=True, host=host))


def test_every_step_the_planners_emit_is_declared(tmp_path, monkeypatch):
    emitted = set()
    for plan in plans(tmp_path, monkeypatch):
        for step in plan:
            steps.check(step)
            emitted.add(step[0])
    # and every declared step is emitted: "debug" by ocirt/launch.py
    assert set(steps.STEPS) - emitted == {"debug"}
    steps.check(("debug", "", 3, True))


@pytest.mark.parametrize("step, error", [
    (("nosuch", "w"), "unknown plan step 'nosuch'"),
    (("cwd", "process.cwd", "/"), "step cwd: 3 fields, 4 declared"),
    (("exec", "process.args", 2, "sh"), "no length of its list env"),
    (("exec", "process.args", 1, "sh", 0, "x"), "step exec: 6 fields, 5 declared"),
])
def test_check_refuses(step, error):
    with pytest.raises(ValueError, match=error):
        steps.check(step)


def run_helper(plan):
    """ocirt-init on PLAN (it stops before running a step): its exit
    status and the error it sends on the sync socket."""
    fd = os.memfd_create("plan")
    os.write(fd, encode(plan))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        p = subprocess.run([INIT, str(fd), str(theirs.fileno())], pass_fds=(fd, theirs.fileno()), timeout=30)
        os.close(fd)
        theirs.close()
        return p.returncode, ours.recv(4096).decode()


@pytest.mark.parametrize("step, where, error", [
    (("nosuch", "w"), "", "plan: unknown step nosuch"),
    (("cwd", "process.cwd", "/"), "", "plan: step cwd has 3 fields, not 4"),
    (("exec", "process.args", 2, "sh"), "", "plan: step exec has 4 fields, not 2 and its lists"),
    (("exec", "process.args", 1, "sh", 1), "", "plan: step exec has 5 fields, not 2 and its lists"),
    (("user", "process.user", 0, 0, 18, 9, 1), "", "plan: step user has 7 fields, not 5 and its lists"),
    (("mkfile", "process.terminal", "/dev/console"), "process.terminal",
     "plan: step mkfile comes before the clone, which it needs"),
])
def test_the_helper_refuses_a_step_it_does_not_know_or_without_its_fields(step, where, error):
    """The plan is read whole before a step runs: the bad step comes second."""
    assert run_helper([("oom", "process.oomScoreAdj", 0), step]) == (127, f"E{where}\t{error}")
