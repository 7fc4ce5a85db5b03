"""runtime.md, Start: the user-specified program runs, or start fails and
says why; poststart hooks run after it started. And a strict seccomp
allow-list holding only what the program itself needs (recorded with
strace on the host) plus execve: the runtime must need nothing under it."""
import os
import re
import subprocess

import pytest

from .harness import ENV

clause = pytest.mark.clause
SCRIPT = "echo hello >/out/result"


@pytest.fixture(scope="module")
def program_syscalls(rootfs, tmp_path_factory):
    """Every syscall busybox makes running SCRIPT and `sleep`, on the host."""
    d = tmp_path_factory.mktemp("strace")
    os.makedirs(d / "out")
    names = set()
    for i, argv in enumerate((["sh", "-c", SCRIPT.replace("/out", str(d / "out"))], ["sleep", "0.01"])):
        trace = d / f"trace{i}"
        subprocess.run(["strace", "-f", "-qq", "-o", str(trace), os.path.join(rootfs, "bin", "busybox"), *argv],
                       env=dict(e.split("=", 1) for e in ENV), check=True, capture_output=True)
        names |= set(re.findall(r"^\d+\s+(\w+)\(", trace.read_text(), re.M))
    assert {"execve", "write"} <= names, names
    return sorted(names)


def strict(names, default):
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}


@clause("runtime.start.4", "runtime.lifecycle.start.1")
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("default", ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
@pytest.mark.parametrize("how", ["run", "create-start", "exec"])
def test_strict_seccomp_allow_list_runs_the_program(ct, program_syscalls, how, default, nnp):
    b = ct.bundle(SCRIPT)
    b.process["noNewPrivileges"] = nnp
    b.linux["seccomp"] = strict(program_syscalls, default)
    if how == "run":
        ct.run(b)
    elif how == "create-start":
        ct.create(b)
        ct.rt("start", b.cid)
        assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    else:
        b.process["args"] = ["sleep", "30"]
        ct.create(b)
        ct.rt("start", b.cid)
        ct.rt("exec", b.cid, "sh", "-c", SCRIPT)
    assert b.read_out("result") == "hello\n"


@clause("runtime.start.4", "runtime.errors.1")
def test_start_fails_when_the_program_cannot_be_executed(ct):
    """The program is there at create and gone at start: start fails, names
    the program, and the container is stopped."""
    b = ct.bundle()
    b.process["args"] = ["/out/prog"]
    with open(os.path.join(b.out, "prog"), "w") as f:
        f.write("#!/bin/sh\necho ran >/out/ran\n")
    os.chmod(os.path.join(b.out, "prog"), 0o755)
    ct.create(b)
    with open(os.path.join(b.out, "prog"), "w") as f:
        f.write("#!/nonexistent/interpreter\n")  # execve fails: ENOENT
    res = ct.rt("start", b.cid, check=False)
    assert res.rc != 0, res
    assert "no such file or directory" in res.err, res
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    assert not os.path.exists(os.path.join(b.out, "ran"))


@clause("runtime.lifecycle.poststart.1", "config.hooks.poststart.when.1")
def test_poststart_runs_after_the_program_started(ct):
    """The poststart hook sees the container's init already running the
    program (its /proc/PID/exe is busybox, no longer the runtime's)."""
    b = ct.bundle()
    b.process["args"] = ["sleep", "30"]
    log = os.path.join(b.out, "exe")
    b.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"pid=$(grep -o '\"pid\": *[0-9]*' | head -1 | tr -dc 0-9); readlink /proc/$pid/exe >{log}"]}]}
    ct.create(b)
    ct.rt("start", b.cid)
    with open(log) as f:
        assert f.read().strip().endswith("/busybox")
