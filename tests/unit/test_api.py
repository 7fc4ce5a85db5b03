"""ocirt.api without root: its typed results, its errors (NotFound,
WrongStatus, ConfigError naming the field), its arguments, and that the
command line prints the API's results as before. The containers here are
state records whose init is this test process."""
import io
import json
import os
import sys
import threading
from contextlib import redirect_stdout

import pytest

from ocirt import SPEC_VERSION
from ocirt.api import (ConfigError, Event, ExitStatus, NotFound, OcirtError, Runtime, State, WrongStatus,
                       features)
from ocirt.cli import main
from ocirt.errors import typed
from ocirt.state import Container, proc_start_time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def recorded(root, cid, pid=None, annotations=None, cgroup=None):
    """A container of root whose init is pid (ours: "running")."""
    pid = os.getpid() if pid is None else pid
    c = Container(str(root), cid)
    c.create_dir()
    c.state = {"ociVersion": SPEC_VERSION, "id": cid, "pid": pid, "pidStart": proc_start_time(pid)[0],
               "bundle": "/b", "rootfs": "/b/rootfs", "created": "2026-12-04T00:00:00.000000000Z",
               "owner": "", "cgroup": cgroup, "config": {"annotations": annotations or {}, "process": {"args": ["sh"]}}}
    c.save()
    c.unlock()
    return c


def bundle_with(tmp_path, change):
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        config = json.load(f)
    config["root"]["path"] = str(tmp_path)  # a directory: the loader checks only that
    change(config)
    d = tmp_path / "bundle"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return str(d)


def test_state_is_typed_and_prints_as_runc(tmp_path):
    recorded(tmp_path, "a", annotations={"k": "v"})
    st = Runtime(str(tmp_path)).state("a")
    assert isinstance(st, State)
    assert (st.id, st.status, st.pid, st.bundle, st.annotations) == ("a", "running", os.getpid(), "/b", {"k": "v"})
    assert list(st.to_dict()) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner",
                                  "annotations"]
    assert State.from_dict(st.to_dict()) == st
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--root", str(tmp_path), "state", "a"]) == 0
    assert json.loads(out.getvalue()) == st.to_dict()


def test_a_stopped_state_has_pid_0_and_no_empty_annotations(tmp_path):
    recorded(tmp_path, "gone", pid=2**22 + 1)  # above pid_max: no such process
    st = Runtime(str(tmp_path)).state("gone")
    assert (st.status, st.pid) == ("stopped", 0)
    assert "annotations" not in st.to_dict()


def test_list_is_by_id_and_empty_for_a_missing_root(tmp_path):
    for cid in ("b", "a"):
        recorded(tmp_path, cid)
    assert [s.id for s in Runtime(str(tmp_path)).list()] == ["a", "b"]
    assert Runtime(str(tmp_path / "none")).list() == []


def test_missing_containers_are_not_found(tmp_path):
    rt = Runtime(str(tmp_path))
    for call in (lambda: rt.state("x"), lambda: rt.start("x"), lambda: rt.kill("x", 0),
                 lambda: rt.delete("x"), lambda: rt.pause("x"), lambda: rt.config("x")):
        with pytest.raises(NotFound, match='"x" does not exist'):
            call()


def test_wrong_status_is_its_own_error(tmp_path):
    recorded(tmp_path, "a")
    rt = Runtime(str(tmp_path))
    with pytest.raises(WrongStatus, match="already running"):
        rt.start("a")
    with pytest.raises(WrongStatus, match="not stopped: running"):
        rt.delete("a")
    with pytest.raises(WrongStatus, match="not paused"):
        rt.resume("a")
    assert issubclass(WrongStatus, OcirtError)


def test_kill_takes_numbers_and_names_and_releases_the_lock(tmp_path):
    recorded(tmp_path, "a")
    rt = Runtime(str(tmp_path))
    rt.kill("a", 0)       # signal 0 probes: our own process is the "init"
    rt.kill("a", "0")
    with pytest.raises(OcirtError, match="unknown signal 'NOPE'"):
        rt.kill("a", "NOPE")
    Container(str(tmp_path), "a").load().unlock()  # not held by the calls above


def test_a_config_error_names_the_field_and_leaves_nothing(tmp_path):
    root = tmp_path / "root"
    b = bundle_with(tmp_path, lambda c: c["process"].update(args="echo"))
    with pytest.raises(ConfigError) as e:
        Runtime(str(root)).create("bad", b)
    assert (e.value.where, e.value.source) == ("process.args", "config.json")
    assert str(e.value) == "config.json: process.args: must be an array"
    assert not os.path.exists(root / "bad")


def test_typed_keeps_plain_errors_and_types_field_errors():
    plain = OcirtError("no")
    assert typed(plain) is plain
    field = typed(OcirtError("bad", "linux.sysctl", "config.json"))
    assert type(field) is ConfigError and str(field) == "config.json: linux.sysctl: bad"


def test_arguments_are_checked_before_anything_is_made(tmp_path):
    rt = Runtime(str(tmp_path))
    with pytest.raises(OcirtError, match="invalid container id"):
        rt.create("../x", str(tmp_path))
    with pytest.raises(OcirtError, match="must be greater than 0"):
        rt.events("x", interval=0)
    with pytest.raises(ValueError, match="unknown log format"):
        Runtime(str(tmp_path), log_format="xml")
    assert os.listdir(tmp_path) == []


def test_rootless_is_runcs_flag(tmp_path, capfd):
    assert Runtime(str(tmp_path), rootless="true").rootless is True
    assert Runtime(str(tmp_path), rootless="false").rootless is False
    assert Runtime(str(tmp_path)).rootless is (os.geteuid() != 0)  # auto: root of the host here
    assert capfd.readouterr().err == ""


def test_results_are_plain_values():
    assert ExitStatus(0).ok and not ExitStatus(137).ok
    assert ExitStatus(3) == ExitStatus(3) != ExitStatus(4)
    assert repr(ExitStatus(3)) == "ExitStatus(code=3)"
    assert Event("oom", "a").to_dict() == {"type": "oom", "id": "a"}
    assert Event("stats", "a", {"x": 1}).to_dict() == {"type": "stats", "id": "a", "data": {"x": 1}}


def test_features_is_the_document():
    doc = features()
    assert doc["ociVersionMax"] == SPEC_VERSION and "namespaces" in doc["linux"]


def test_the_hot_commands_import_no_lifecycle_module_they_do_not_use(tmp_path):
    """state goes through the API without the create or exec side."""
    recorded(tmp_path, "a")
    code = ("import sys; sys.argv = ['ocirt', '--root', %r, 'state', 'a']; from ocirt.cli import main; main(); "
            "import json; print(json.dumps([m for m in sys.modules if m.startswith('ocirt')]), file=sys.stderr)"
            % str(tmp_path))
    import subprocess
    p = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    loaded = json.loads(p.stderr)
    assert "ocirt.api" in loaded
    assert not {"ocirt.create", "ocirt.launch", "ocirt.execproc", "ocirt.teardown", "ocirt.clicmds", "ocirt.cliexec"} & set(loaded)


def test_state_start_kill_delete_load_only_what_they_use(tmp_path):
    """Each import costs these commands at Python's floor 30-900 us: `os`
    (~0.9 ms, ocirt/pathops.py) none of them, through the cgroup driver
    delete uses; the flock's fcntl, the fifo's select, --rootless and a
    cgroup driver only the commands that use them."""
    import subprocess
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        cg = tmp_path / "cg"  # a stand-in for its cgroup, which delete removes
        cg.mkdir()
        recorded(tmp_path, "a", pid=sleeper.pid, cgroup={"version": 1, "dirs": {"pids": str(cg)}, "made": [str(cg)]})
        fifo = str(tmp_path / "a" / "exec.fifo")
        os.mkfifo(fifo)  # "created": start reads the init's "0" from it

        def init_waits():
            with open(fifo, "wb") as f:
                f.write(b"0")
        threading.Thread(target=init_waits, daemon=True).start()
        never = ("os", "_stat", "ocirt.rootless")
        for argv, unused, then in ((["state", "a"], ("fcntl", "select", "ocirt.cgroups"), None),
                                   (["start", "a"], ("ocirt.cgroups",), None),
                                   (["kill", "a", "TERM"], ("select", "ocirt.cgroups"), sleeper.wait),
                                   (["delete", "a"], (), None)):
            code = ("import sys; sys.argv = ['ocirt', '--root', %r] + %r; from ocirt.cli import main; "
                    "rc = main(); print(rc, [m for m in %r if m in sys.modules], file=sys.stderr)"
                    % (str(tmp_path), argv, never + unused))
            p = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True)
            assert p.stderr.splitlines()[-1] == "0 []", (argv, p.stderr)
            if then:
                then()
        assert not (tmp_path / "a").exists() and not cg.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
