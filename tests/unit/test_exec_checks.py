"""What `exec` checks before anything runs, without root: --preserve-fds
passes only the caller's fds, process.json is validated, no uid or gid is
the kernel's "unchanged", and a seccomp agent is reached from the host."""
import json
import os
import subprocess
import sys

import pytest

from ocirt.errors import OcirtError
from ocirt.plan import build, process
from ocirt.plan.context import Context
from ocirt.seccomp import compile_seccomp
from ocirt.validate import validate_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROC = {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}

CHECK_FD_3 = """
import os, sys
from ocirt.errors import OcirtError
from ocirt.launch import _check_preserved
if sys.argv[1] == "own":
    os.open("/dev/null", os.O_RDONLY)  # fd 3, not inheritable: as every fd ocirt opens
try:
    _check_preserved(1)
    print("passed on")
except OcirtError as e:
    print(e)
"""


@pytest.mark.parametrize("fd3, said", [("caller", "passed on"), ("own", "fd 3 was not passed to ocirt"),
                                       ("none", "fd 3 was not passed to ocirt")])
def test_preserve_fds_passes_only_the_callers(fd3, said):
    redirect = "3</dev/null" if fd3 == "caller" else ""
    out = subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-c", CHECK_FD_3, fd3],
                         env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, check=True).stdout
    assert said in out, out


@pytest.mark.parametrize("change, where", [
    ({"user": "root"}, "process.user"),
    ({"user": {"uid": "0", "gid": 0}}, "process.user.uid"),
    ({"user": {"uid": -1, "gid": 0}}, "process.user.uid"),
    ({"args": "true"}, "process.args"),
    ({"cwd": None}, "process"),  # missing: runc refuses it too
])
def test_process_json_is_validated(change, where):
    proc = {k: v for k, v in dict(PROC, **change).items() if v is not None}
    with pytest.raises(OcirtError) as e:
        validate_process(proc)
    assert (e.value.source, e.value.where) == ("process.json", where), e.value


@pytest.mark.parametrize("client", ["podman", "containerd"])
def test_what_the_clients_send_passes(client):
    with open(os.path.join(REPO, "conformance", "fixtures", "clients", f"{client}-exec-process.json")) as f:
        validate_process(json.load(f))


@pytest.mark.parametrize("user, where", [({"uid": 4294967295, "gid": 0}, "process.user.uid"),
                                         ({"uid": -1, "gid": 0}, "process.user.uid"),
                                         ({"uid": 0, "gid": 4294967295}, "process.user.gid"),
                                         ({"uid": 0, "gid": 0, "additionalGids": [-1]}, "process.user.additionalGids")])
def test_no_id_is_the_kernels_unchanged(user, where):
    """setresuid(-1) keeps the current uid: the runtime's root."""
    with pytest.raises(OcirtError) as e:
        process.cred_steps({"user": user})
    assert e.value.where == where


def test_the_highest_id_is_kept():
    assert process.cred_steps({"user": {"uid": 4294967294, "gid": 4294967294}})[1][2:4] == (4294967294, 4294967294)


def test_exec_reaches_the_seccomp_agent_before_joining_the_mount_namespace():
    """listenerPath is a host path: inside the container it names nothing."""
    sec = compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    steps = build.exec_plan([("mount", "/proc/1/ns/mnt")], dict(PROC, noNewPrivileges=True), Context(seccomp=sec))
    names = [s[0] for s in steps]
    assert names.index("seccomp-listener") < names.index("setns") < names.index("clone")


@pytest.mark.parametrize("terminal, detach, sock, msg", [
    (True, True, "", "config.json: process.terminal: cannot allocate tty if ocirt will detach "
                     "without setting console socket"),
    (False, True, "/s", "cannot use console socket if ocirt will not detach or allocate tty"),
    (True, False, "/s", "cannot use console socket if ocirt will not detach or allocate tty"),
    (False, False, "/s", "cannot use console socket if ocirt will not detach or allocate tty"),
])
def test_terminal_and_console_socket_refused(terminal, detach, sock, msg):
    """runc's rule: a console socket only for a detached terminal, which needs one."""
    from ocirt.launch import check_terminal
    with pytest.raises(OcirtError) as e:
        check_terminal(terminal, detach, sock, "process.terminal")
    assert str(e.value) == msg


@pytest.mark.parametrize("terminal, detach, sock", [
    (True, True, "/s"), (True, False, ""), (False, True, ""), (False, False, "")])
def test_terminal_and_console_socket_allowed(terminal, detach, sock):
    from ocirt.launch import check_terminal
    check_terminal(terminal, detach, sock)
