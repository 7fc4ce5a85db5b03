"""The state root (ocirt.state): container ids checked as runc does, state.json
written atomically and read back, the lock, and what `status` says of an init
that is gone. No root needed."""
import fcntl
import json
import os
import re
import subprocess
import sys

import pytest

from ocirt.errors import OcirtError
from ocirt.state import Container, check_id, list_ids, now_rfc3339, proc_start_time


@pytest.mark.parametrize("cid", ["a", "A9", "web_1", "c+d", "x-y", "v1.2", "..a", "a..", "-", "_", "x" * 1024])
def test_valid_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "/abs", "../x", "a b", "a\nb", "ä", "a:b", "a*",
                                 "x" * 1025, "a\x00b"])
def test_invalid_ids(cid):
    with pytest.raises(OcirtError) as e:
        check_id(cid)
    assert "container id" in str(e.value)


def test_now_is_rfc3339_utc_with_nanoseconds():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", now_rfc3339())


def state_of(pid, start):
    return {"ociVersion": "1.3.0", "id": "c1", "pid": pid, "pidStart": start, "bundle": "/b",
            "rootfs": "/b/rootfs", "created": now_rfc3339(), "owner": "", "config": {"annotations": {"k": "v"}}}


def test_create_dir_refuses_a_duplicate(tmp_path):
    root = str(tmp_path / "root")
    Container(root, "c1").create_dir()
    assert os.path.isdir(os.path.join(root, "c1"))
    with pytest.raises(OcirtError, match='container with id "c1" already exists'):
        Container(root, "c1").create_dir()


def test_missing_container_does_not_exist(tmp_path):
    with pytest.raises(OcirtError, match='container "nope" does not exist'):
        Container(str(tmp_path), "nope").load()


def test_save_is_atomic_and_loads_back(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.create_dir()
    c.state = state_of(os.getpid(), proc_start_time(os.getpid())[0])
    c.save()
    assert sorted(os.listdir(c.dir)) == ["state.json"]  # no temporary file left
    with open(os.path.join(c.dir, "state.json")) as f:
        assert json.load(f) == c.state
    assert Container(str(tmp_path), "c1").load(lock=False).state == c.state
    assert list_ids(str(tmp_path)) == ["c1"]


def test_list_ids_skips_dirs_without_state(tmp_path):
    os.mkdir(tmp_path / "half-made")
    assert list_ids(str(tmp_path)) == []
    assert list_ids(str(tmp_path / "no-root")) == []


def test_corrupt_state_is_a_clear_error(tmp_path):
    os.mkdir(tmp_path / "c1")
    (tmp_path / "c1" / "state.json").write_text("{not json")
    with pytest.raises(OcirtError, match='container "c1": corrupt state.json'):
        Container(str(tmp_path), "c1").load(lock=False)


def test_remove_leaves_nothing(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.create_dir()
    c.state = state_of(1, 1)
    c.save()
    os.mkfifo(c.fifo)
    c.remove()
    assert os.listdir(tmp_path) == []


def test_status_follows_the_init(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        c = Container(str(tmp_path), "c1")
        c.create_dir()
        c.state = state_of(child.pid, proc_start_time(child.pid)[0])
        os.mkfifo(c.fifo)
        assert c.status() == "created"
        os.unlink(c.fifo)
        assert c.status() == "running"
        assert c.oci_state()["pid"] == child.pid
        child.kill()
        child.wait()
        assert c.status() == "stopped"
        assert c.oci_state()["pid"] == 0
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_not_the_init(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.state = state_of(os.getpid(), proc_start_time(os.getpid())[0] + 1)
    assert c.status() == "stopped"


def test_zombie_init_is_stopped(tmp_path):
    child = subprocess.Popen(["true"])
    try:
        start = proc_start_time(child.pid)[0]
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert proc_start_time(child.pid) == (start, True)
        c = Container(str(tmp_path), "c1")
        c.state = state_of(child.pid, start)
        assert c.status() == "stopped"
    finally:
        child.wait()


def test_oci_state_has_runc_fields(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.state = state_of(os.getpid(), proc_start_time(os.getpid())[0])
    st = c.oci_state()
    assert set(st) == {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner", "annotations"}
    assert st["annotations"] == {"k": "v"} and st["status"] == "running"
    c.state["config"]["annotations"] = {}
    assert "annotations" not in c.oci_state()


def test_annotations_are_stored_once(tmp_path):
    """state.json holds the config, which has the annotations: `state` reads
    them there, and a copy beside it would only double the file."""
    c = Container(str(tmp_path), "c1")
    c.create_dir()
    c.state = state_of(os.getpid(), proc_start_time(os.getpid())[0])
    c.state["config"]["annotations"] = {"io.example.unique-key": "v"}
    c.save()
    text = open(os.path.join(c.dir, "state.json")).read()
    assert text.count("io.example.unique-key") == 1
    assert Container(str(tmp_path), "c1").load(lock=False).oci_state()["annotations"] == {"io.example.unique-key": "v"}


def test_lock_serialises_commands(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.create_dir()  # holds the lock
    fd = os.open(c.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_a_json_file_is_read_whole_up_to_the_bound(tmp_path):
    """Read at its size: a file of exactly MAX_FILE bytes is whole, one more
    byte is refused; an empty one is empty (sparse files: no disk used)."""
    from ocirt import jsonio
    path = tmp_path / "f.json"
    path.write_bytes(b'{"a": [1, "\xc3\xa9"]}')
    assert jsonio.load_file(str(path)) == {"a": [1, "é"]}
    path.write_bytes(b"")
    assert jsonio.read_file(str(path)) == b""
    with open(path, "wb") as f:
        f.truncate(jsonio.MAX_FILE)
    assert len(jsonio.read_file(str(path))) == jsonio.MAX_FILE
    with open(path, "wb") as f:
        f.truncate(jsonio.MAX_FILE + 1)
    with pytest.raises(OcirtError, match=f"^{path}: larger than 64 MiB$"):
        jsonio.read_file(str(path))


def test_a_json_file_of_size_0_with_content_is_read_in_few_reads(monkeypatch):
    """/proc and /sys files are regular and of size 0: read at its size, one
    is read a byte at a time (a 64 MiB one, 64 M reads)."""
    from ocirt import jsonio
    reads, read = [], jsonio.posix.read
    monkeypatch.setattr(jsonio.posix, "read", lambda fd, n: reads.append(n) or read(fd, n))
    data = jsonio.read_file("/proc/self/status")
    monkeypatch.undo()
    assert data.startswith(b"Name:") and len(reads) == 2, reads
