"""config.md § POSIX-platform Hooks and runtime.md § Lifecycle: order, namespaces, the
state on stdin, timeouts and what each kind of hook's failure must do."""
import json
import os
import time

import pytest

from .harness import leftovers, pid_alive

clause = pytest.mark.clause
RUNTIME_NS = ("prestart", "createRuntime", "poststart", "poststop")
CREATE_KINDS = ("prestart", "createRuntime", "createContainer")

# Appends one line per call: name, mount namespace, that of its parent (the runtime, for
# hooks in the runtime namespace), $FOO, arguments, then the state read from stdin.
# The container side sees the bundle's out/ directory as /out.
HOOK = """#!/bin/sh
state=$(cat)
[ -z "$HOOK_SLEEP" ] || sleep "$HOOK_SLEEP"
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$1" "$(readlink /proc/self/ns/mnt)" \\
    "$(readlink /proc/$PPID/ns/mnt)" "$FOO" "$*" "$state" >> "$2"
exit ${HOOK_EXIT:-0}
"""


class Hooks:
    """Hook scripts of one bundle and the log they write."""

    def __init__(self, b):
        self.b = b
        self.host_script = os.path.join(b.path, "hook.sh")  # outside the container's view
        self.ctr_script = os.path.join(b.out, "hook.sh")    # /out/hook.sh inside
        for p in (self.host_script, self.ctr_script):
            with open(p, "w") as f:
                f.write(HOOK)
            os.chmod(p, 0o755)
        self.log = os.path.join(b.out, "hooks.log")
        b.config["hooks"] = {}

    def add(self, kind, name=None, fail=False, timeout=None, script=None, sleep=None):
        in_container = kind == "startContainer"
        path = "/out/hook.sh" if in_container else self.host_script
        log = "/out/hooks.log" if in_container else self.log
        env = ["FOO=bar"] + (["HOOK_EXIT=1"] if fail else []) + ([f"HOOK_SLEEP={sleep}"] if sleep else [])
        hook = {"path": script or path, "args": ["hook.sh", name or kind, log, "extra"], "env": env}
        if timeout:
            hook["timeout"] = timeout
        self.b.config["hooks"].setdefault(kind, []).append(hook)
        return hook

    def calls(self):
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                name, ns, parent_ns, foo, args, state = line.rstrip("\n").split("\t", 5)
                out.append({"name": name, "ns": ns, "parent_ns": parent_ns, "foo": foo, "args": args,
                            "state": json.loads(state) if state else None})
        return out

    def names(self):
        return [c["name"] for c in self.calls()]


def lifecycle(ct, b, wait_exit=True):
    ct.create(b)
    ct.rt("start", b.cid)
    if wait_exit:
        ct.rt.wait_status(b.cid, "stopped")
    ct.rt("delete", "--force", b.cid)


@clause("config.hooks.order.1", "config.hooks.prestart.order.1", "config.hooks.createContainer.order.1",
        "runtime.lifecycle.prestart.1", "runtime.lifecycle.createRuntime.1",
        "runtime.lifecycle.createContainer.1", "runtime.lifecycle.startContainer.1",
        "runtime.lifecycle.poststart.1", "runtime.lifecycle.poststop.1", "features.hooks.1")
def test_hooks_run_in_lifecycle_and_listed_order(ct):
    b = ct.bundle("echo program >> /out/hooks.log.program")
    h = Hooks(b)
    for kind, name in (("poststop", "poststop"), ("poststart", "poststart"),
                       ("startContainer", "startContainer"), ("createContainer", "createContainer"),
                       ("createRuntime", "createRuntime1"), ("createRuntime", "createRuntime2"),
                       ("prestart", "prestart")):
        h.add(kind, name)
    ct.create(b)
    assert h.names() == ["prestart", "createRuntime1", "createRuntime2", "createContainer"]
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    assert h.names()[4:] == ["startContainer", "poststart"]
    assert b.read_out("hooks.log.program") == "program\n"
    ct.rt("delete", b.cid)
    assert h.names()[6:] == ["poststop"]


@clause("config.hooks.state.1", "runtime.lifecycle.createRuntime.1")
def test_hooks_get_state_on_stdin_args_and_env(ct):
    b = ct.bundle("sleep 30")
    h = Hooks(b)
    for kind in ("createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        h.add(kind)
    ct.create(b)
    ct.rt("start", b.cid)
    pid = ct.rt.state(b.cid)["pid"]
    ct.rt("delete", "--force", b.cid)
    calls = {c["name"]: c for c in h.calls()}
    assert sorted(calls) == sorted(["createRuntime", "createContainer", "startContainer", "poststart",
                                    "poststop"])
    for name, c in calls.items():
        st = c["state"]
        assert st["id"] == b.cid and st["bundle"] in (b.path, os.path.realpath(b.path)), (name, st)
        assert isinstance(st["ociVersion"], str), (name, st)
        assert c["foo"] == "bar", name
        assert c["args"] == f"{name} {'/out/hooks.log' if name == 'startContainer' else h.log} extra", name
    for name in ("createRuntime", "poststart"):
        assert calls[name]["state"]["pid"] == pid, (name, calls[name]["state"])


@clause("config.hooks.state.1")
def test_hook_state_status(ct):
    b = ct.bundle("sleep 30")
    h = Hooks(b)
    for kind in ("createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        h.add(kind)
    lifecycle(ct, b, wait_exit=False)
    status = {c["name"]: c["state"]["status"] for c in h.calls()}
    assert status == {"createRuntime": "creating", "createContainer": "creating",
                      "startContainer": "created", "poststart": "running", "poststop": "stopped"}


@clause("config.hooks.state.1")
def test_container_namespace_hooks_get_the_pid_seen_by_the_container(ct):
    b = ct.bundle("true")
    h = Hooks(b)
    h.add("startContainer")
    lifecycle(ct, b)
    assert h.calls()[0]["state"]["pid"] == 1


@clause("config.hooks.prestart.ns.1", "config.hooks.createRuntime.ns.1", "config.hooks.createContainer.ns.1",
        "config.hooks.startContainer.ns.1", "config.hooks.poststart.ns.1", "config.hooks.poststop.ns.1",
        "config.hooks.prestart.path.1", "config.hooks.createRuntime.path.1",
        "config.hooks.createContainer.path.1", "config.hooks.startContainer.path.1",
        "config.hooks.poststart.path.1", "config.hooks.poststop.path.1")
def test_hook_namespaces_and_path_resolution(ct):
    b = ct.bundle("true")
    h = Hooks(b)
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        h.add(kind)
    # the runtime-namespace script exists only on the host, /out/hook.sh only in the container
    assert not os.path.exists("/out/hook.sh")
    lifecycle(ct, b)
    calls = {c["name"]: c for c in h.calls()}
    assert set(calls) == {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                          "poststop"}
    container_ns = calls["startContainer"]["ns"]
    assert calls["createContainer"]["ns"] == container_ns
    # The runtime namespace is the runtime's own: that of the hook's parent, the runtime
    # (not necessarily this test's: a wrapper may run the runtime in a namespace of its own).
    for name in RUNTIME_NS:
        assert calls[name]["ns"] == calls[name]["parent_ns"] != container_ns, (name, calls[name])


@clause("config.hooks.createContainer.when.1", "config.hooks.createRuntime.when.1",
        "config.hooks.prestart.when.1")
def test_create_hooks_run_before_pivot_root(ct):
    # Before pivot_root the host's / is still the hook's root; the bundle's config.json
    # is visible by its host path only there.
    b = ct.bundle("true")
    marker = os.path.join(b.path, "config.json")
    b.config["hooks"] = {kind: [{"path": "/bin/sh", "args": [
        "sh", "-c", f"test -e {marker} && echo {kind} >> {b.out}/seen"]}] for kind in CREATE_KINDS}
    ct.create(b)
    assert sorted(b.read_out("seen").split()) == sorted(CREATE_KINDS)


@clause("config.hooks.startContainer.when.1", "config.hooks.poststart.when.1")
def test_start_hooks_run_around_the_program(ct):
    b = ct.bundle("echo program > /out/program; sleep 30")
    h = Hooks(b)
    # A slow startContainer hook still completes before the program, so before poststart.
    h.add("startContainer", sleep="0.5")
    h.add("poststart")
    ct.create(b)
    assert h.names() == []
    ct.rt("start", b.cid)
    # startContainer before the program; poststart completes before start returns
    assert h.names() == ["startContainer", "poststart"]
    deadline = time.monotonic() + 5
    while not os.path.exists(os.path.join(b.out, "program")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.read_out("program") == "program\n"


@clause("config.hooks.poststop.when.1")
def test_poststop_runs_after_container_deleted_before_delete_returns(ct):
    b = ct.bundle("true")
    b.config["hooks"] = {"poststop": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"cat > {b.out}/state"]}]}
    lifecycle(ct, b)
    assert os.path.exists(os.path.join(b.out, "state")), "poststop did not run before delete returned"
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.lifecycle.createRuntime.2", "runtime.errors.1")
def test_hook_timeout_aborts_create(ct):
    b = ct.bundle("true")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}
    t0 = time.monotonic()
    res = ct.create(b, check=False)
    assert res.rc != 0
    assert time.monotonic() - t0 < 10
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.lifecycle.prestart.2", "runtime.lifecycle.createRuntime.2",
        "runtime.lifecycle.createContainer.2", "runtime.errors.1")
@pytest.mark.parametrize("kind", CREATE_KINDS)
def test_create_hook_failure_errors_and_leaves_nothing(ct, kind):
    b = ct.bundle("echo ran > /out/ran")
    h = Hooks(b)
    h.add(kind, fail=True)
    assert ct.create(b, check=False).rc != 0
    assert h.names() == [kind]
    assert not os.path.exists(os.path.join(b.out, "ran"))
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.lifecycle.prestart.2", "runtime.lifecycle.createRuntime.2",
        "runtime.lifecycle.createContainer.2", "runtime.lifecycle.poststop.1")
@pytest.mark.parametrize("kind", CREATE_KINDS)
def test_create_hook_failure_continues_at_destroy_and_poststop(ct, kind):
    b = ct.bundle("true")
    h = Hooks(b)
    h.add(kind, fail=True)
    h.add("poststop")
    ct.create(b, check=False)
    ct.rt("delete", "--force", b.cid, check=False)
    assert h.names() == [kind, "poststop"]


@clause("runtime.lifecycle.startContainer.2")
def test_start_container_hook_failure_stops_container(ct):
    b = ct.bundle("echo ran > /out/ran; sleep 30")
    h = Hooks(b)
    h.add("startContainer", fail=True)
    ct.create(b)
    pid = ct.rt.state(b.cid)["pid"]
    assert ct.rt("start", b.cid, check=False).rc != 0
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(b.out, "ran"))
    assert not pid_alive(pid)


@clause("runtime.lifecycle.startContainer.2", "runtime.lifecycle.poststop.1")
def test_start_container_hook_failure_runs_poststop(ct):
    b = ct.bundle("sleep 30")
    h = Hooks(b)
    h.add("startContainer", fail=True)
    h.add("poststop")
    ct.create(b)
    ct.rt("start", b.cid, check=False)
    ct.rt("delete", "--force", b.cid, check=False)
    assert h.names() == ["startContainer", "poststop"]


@clause("runtime.lifecycle.poststart.2")
def test_poststart_hook_failure_errors_and_stops_container(ct):
    b = ct.bundle("sleep 30")
    h = Hooks(b)
    h.add("poststart", fail=True)
    ct.create(b)
    pid = ct.rt.state(b.cid)["pid"]
    assert ct.rt("start", b.cid, check=False).rc != 0
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


@clause("runtime.lifecycle.poststop.2", "runtime.warnings.1")
def test_poststop_hook_failure_is_only_a_warning(ct):
    b = ct.bundle("true")
    h = Hooks(b)
    h.add("poststop", "poststop1", fail=True)
    h.add("poststop", "poststop2")
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    assert ct.rt("delete", b.cid, check=False).rc == 0
    assert h.names() == ["poststop1", "poststop2"]
    assert leftovers(ct.rt, b, ct.rootfs) == []
