"""ocirt.api as root, in this process: a lifecycle, run and exec with their
output captured, kill and delete, the first event, and a create that fails
late naming the field and leaving nothing; also examples/run_busybox.py."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO, TIMEOUT
from ocirt.api import ConfigError, Event, ExitStatus, NotFound, Runtime, WrongStatus


@pytest.fixture
def rt(oci):
    """A Runtime on the test's root (the fixture's clean-up deletes by id)."""
    return Runtime(oci.root)


def created(oci, rt, script):
    b = oci.bundle(script)
    b.write()
    st = rt.create(b.cid, b.path)
    oci.pids.append(st.pid)
    return b, st


def wait_status(rt, cid, want):
    deadline = time.monotonic() + TIMEOUT
    while rt.state(cid).status != want:
        assert time.monotonic() < deadline, rt.state(cid)
        time.sleep(0.05)


def output(f):
    f.seek(0)
    return f.read().decode()


def test_a_lifecycle_through_the_api(oci, rt):
    before = oci.host_view()
    b, st = created(oci, rt, "sleep 100")
    assert (st.id, st.status, st.bundle) == (b.cid, "created", b.path) and st.pid > 0
    assert rt.state(b.cid) == st
    rt.start(b.cid)
    assert rt.state(b.cid).status == "running"
    assert [s.id for s in rt.list()] == [b.cid]
    with pytest.raises(WrongStatus):
        rt.start(b.cid)
    rt.pause(b.cid)
    assert rt.state(b.cid).status == "paused"
    rt.resume(b.cid)
    assert st.pid in rt.ps(b.cid)
    with pytest.raises(WrongStatus, match="not stopped: running"):
        rt.delete(b.cid)
    rt.kill(b.cid, "KILL")
    wait_status(rt, b.cid, "stopped")
    rt.delete(b.cid)
    with pytest.raises(NotFound):
        rt.state(b.cid)
    assert oci.host_view() == before


def test_run_captures_the_output_and_the_exit_status(oci, rt):
    b = oci.bundle("echo hello; echo oops >&2; exit 3")
    b.write()
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        assert rt.run(b.cid, b.path, stdout=out, stderr=err) == ExitStatus(3)
        assert (output(out), output(err)) == ("hello\n", "oops\n")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    with pytest.raises(NotFound):  # run deletes what it ran
        rt.state(b.cid)


def test_exec_runs_a_process_spec(oci, rt):
    b, _ = created(oci, rt, "sleep 100")
    rt.start(b.cid)
    base = rt.config(b.cid)["process"]
    proc = dict(base, args=["sh", "-c", "echo $X in $(pwd); exit 4"], env=base["env"] + ["X=1"], cwd="/tmp")
    with tempfile.TemporaryFile() as out:
        assert rt.exec(b.cid, proc, stdout=out) == ExitStatus(4)
        assert output(out) == "1 in /tmp\n"
    assert rt.exec(b.cid, dict(proc, args=["sleep", "0"]), detach=True) is None


def test_an_exec_error_names_the_process_field(oci, rt):
    b, _ = created(oci, rt, "sleep 100")
    rt.start(b.cid)
    with pytest.raises(ConfigError) as e:
        rt.exec(b.cid, dict(rt.config(b.cid)["process"], args="sh"))
    assert (e.value.source, e.value.where) == ("process", "process.args")


def test_the_first_event_is_stats(oci, rt):
    b, _ = created(oci, rt, "sleep 100")
    rt.start(b.cid)
    events = rt.events(b.cid, interval=0.05)
    first = next(events)
    events.close()
    assert isinstance(first, Event) and (first.type, first.id) == ("stats", b.cid)
    assert "memory" in first.data and "pids" in first.data


def test_a_late_failure_names_the_field_and_leaves_nothing(oci, rt):
    b = oci.bundle("true")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-ocirt-api",
                               "options": ["bind"]})
    b.write()
    before = oci.host_view()
    with pytest.raises(ConfigError) as e:
        rt.create(b.cid, b.path)
    assert e.value.where.startswith("mounts[4]"), e.value
    assert oci.host_view() == before
    with pytest.raises(NotFound):
        rt.state(b.cid)


def test_the_example_runs_a_command_and_prints_its_output(oci):
    assert os.path.exists(os.path.join(REPO, "bundles", "busybox", "rootfs", "bin", "busybox")), \
        "make rootfs builds the example's bundle"
    p = subprocess.run([sys.executable, os.path.join(REPO, "examples", "run_busybox.py"), "--root", oci.root],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert (p.returncode, p.stdout, p.stderr) == (0, "hello\n", "")
    assert not os.listdir(oci.root)
