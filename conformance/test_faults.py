"""Input that is valid but unusual, or hostile: what it must never do is
leave a container that cannot be deleted, hang past a hook's timeout, fail
on an internal buffer, or run something other than what the config names."""
import json
import time

import pytest

from .harness import leftovers

ANNOTATIONS_MAX = 256 * 1024  # what Kubernetes allows in all of a pod's annotations


def one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1


def big_annotations(b, total):
    """Annotations of about `total` bytes, in 8 KiB values (as labels and
    kubectl's last-applied-configuration make them)."""
    b.config["annotations"] = {f"org.example.big.{i}": chr(ord("a") + i % 26) * 8192
                               for i in range(total // 8192)}
    return b.config["annotations"]


@pytest.mark.parametrize("hook", [
    {"path": "/bin/true", "timeout": 2147484},             # beyond poll()'s range in milliseconds
    {"path": "/bin/true", "timeout": 10**30},              # beyond any integer type
    {"path": "/etc/passwd"},                               # not executable
    {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},  # fails
    {"path": "/bin/true", "args": ["true", "a\0b"]},      # cannot be passed to execve
])
def test_delete_force_removes_a_container_whose_poststop_hook_fails(ct, hook):
    """runtime.md: a poststop failure is logged and the lifecycle goes on."""
    b = ct.bundle("true")
    b.config["hooks"] = {"poststop": [hook]}
    res = ct.create(b, check=False)
    if res.rc == 0:
        res = ct.rt("delete", "--force", b.cid, check=False)
        assert res.rc == 0, res
    assert leftovers(ct.rt, b, ct.rootfs) == []
    # the id is free again
    b.config["hooks"] = {}
    ct.create(b)


@pytest.mark.parametrize("field", ["process.args", "process.env", "process.cwd"])
def test_a_nul_byte_in_a_string_is_refused(ct, field):
    """The kernel's strings end at NUL: "/bin/echo\\0junk" would run echo."""
    b = ct.bundle("true")
    if field == "process.args":
        b.process["args"] = ["/bin/echo\0junk", "hello"]
    elif field == "process.env":
        b.process["env"].append("A=B\0C")
    else:
        b.process["cwd"] = "/tmp\0junk"
    res = ct.run(b, check=False)
    assert res.rc != 0 and "hello" not in res.out, res
    assert leftovers(ct.rt, b, ct.rootfs) == []


@pytest.mark.parametrize("kind", ["createRuntime", "createContainer", "poststop"])
def test_hook_timeout_holds_when_the_state_is_over_the_pipe_size(ct, kind):
    """The timeout covers the whole hook, the state on its stdin included: a
    hook that never reads its stdin cannot block the runtime past it."""
    b = ct.bundle("true")
    big_annotations(b, 128 * 1024)   # twice a pipe's 64 KiB
    b.config["hooks"] = {kind: [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    t0 = time.monotonic()
    res = ct.create(b, check=False)
    if kind == "poststop":
        assert res.rc == 0, res
        res = ct.rt("delete", "--force", b.cid, check=False)
        assert res.rc == 0, res
    else:
        assert res.rc != 0, res
    assert time.monotonic() - t0 < 15
    assert leftovers(ct.rt, b, ct.rootfs) == []


def test_annotations_as_large_as_kubernetes_allows_reach_every_hook(ct):
    b = ct.bundle("true")
    annotations = big_annotations(b, ANNOTATIONS_MAX)
    save = "cat > {}/{}.state"
    b.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", save.format(b.out, "createRuntime")]}],
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", save.format(b.out, "createContainer")]}],
        "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", save.format(b.out, "poststart")]}],
    }
    ct.create(b)
    ct.rt("start", b.cid)
    assert ct.rt.state(b.cid)["annotations"] == annotations
    for kind in b.config["hooks"]:
        assert json.loads(b.read_out(f"{kind}.state"))["annotations"] == annotations, kind
    ct.rt("delete", "--force", b.cid)
    assert leftovers(ct.rt, b, ct.rootfs) == []
