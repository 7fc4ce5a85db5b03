"""ocirt.criu: the hand-written protobuf subset matches CRIU's rpc.proto
(checked against pycriu's rpc_pb2 in the system Python when it has it),
and a real `criu swrk` answers over the socketpair."""
import json
import os
import subprocess

import pytest

from ocirt import criu

SYS_PY = "/usr/bin/python3"
OPTS = {"images_dir_fd": 5, "pid": 1234, "leave_running": True, "log_level": 4,
        "log_file": "dump.log", "root": "/r", "work_dir_fd": -1,
        "ext_mnt": [{"key": "/a", "val": "/a"}, {"key": "/b", "val": "/b"}],
        "manage_cgroups_mode": 3, "external": ["mnt[/x]:/x"], "empty_ns": 0x40000000,
        "join_ns": [{"ns": "net", "ns_file": "/proc/self/ns/net"}]}


def _pycriu(script):
    probe = subprocess.run([SYS_PY, "-c", "import pycriu.rpc_pb2"], capture_output=True)
    if probe.returncode:
        pytest.skip("pycriu (python3-criu, python3-protobuf) not in the system Python")
    return subprocess.run([SYS_PY, "-c", script], capture_output=True, check=True).stdout


def test_request_decodes_with_pycriu():
    data = criu.encode("criu_req", {"type": criu.DUMP, "opts": OPTS, "keep_open": False})
    out = _pycriu(
        "import sys, json; from pycriu import rpc_pb2 as r; from google.protobuf import json_format\n"
        "m = r.criu_req(); m.ParseFromString(bytes.fromhex(%r))\n"
        "print(json.dumps(json_format.MessageToDict(m, preserving_proto_field_name=True)))"
        % data.hex())
    got = json.loads(out)
    assert got["type"] == "DUMP"
    o = got["opts"]
    assert o["images_dir_fd"] == 5 and o["pid"] == 1234 and o["leave_running"] is True
    assert o["work_dir_fd"] == -1 and o["log_file"] == "dump.log" and o["root"] == "/r"
    assert o["ext_mnt"] == OPTS["ext_mnt"] and o["external"] == ["mnt[/x]:/x"]
    assert o["manage_cgroups_mode"] == "SOFT" and o["empty_ns"] == 0x40000000
    assert o["join_ns"] == OPTS["join_ns"]


def test_response_from_pycriu():
    out = _pycriu(
        "from pycriu import rpc_pb2 as r\n"
        "m = r.criu_resp(type=r.RESTORE, success=False, cr_errno=-2, cr_errmsg='no images')\n"
        "m.restore.pid = 4242\n"
        "print(m.SerializeToString().hex())")
    resp = criu.Response(bytes.fromhex(out.decode().strip()))
    assert (resp.type, resp.success, resp.cr_errno) == (criu.RESTORE, False, -2)
    assert resp.errmsg == "no images" and resp.restore_pid == 4242


def test_notify_response():
    inner = criu.encode("ext_mount_map", {"key": "post-dump", "val": ""})  # fields 1, 2
    buf = bytes([0x08, criu.NOTIFY, 0x10, 1, 0x2a, len(inner)]) + inner
    resp = criu.Response(buf)
    assert resp.type == criu.NOTIFY and resp.success and resp.script == "post-dump"


@pytest.mark.skipif(not os.access(criu.CRIU, os.X_OK), reason="criu not installed")
def test_version_over_swrk():
    resp = criu.call(criu.VERSION)
    assert resp.success and resp.version[0] >= 3


def test_missing_names_an_absent_criu(monkeypatch):
    monkeypatch.setattr(criu, "CRIU", "/nonexistent/criu")
    assert criu.missing() == "criu is not installed (/nonexistent/criu not found)"


# ---- ocirt.checkpoint: what the dump asks of CRIU -------------------------------

from ocirt import checkpoint  # noqa: E402
from ocirt.errors import OcirtError  # noqa: E402

STATE = {"pid": 77, "rootfs": "/b/rootfs",
         "cgroup": {"version": 2, "dirs": {"": "/sys/fs/cgroup/ocirt/c1"}},
         "config": {"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                               {"destination": "/data", "type": "bind", "source": "/srv/d",
                                "options": ["rbind"]},
                               {"destination": "/etc/hosts", "source": "/h", "options": ["bind", "ro"]}],
                    "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/absent"],
                              "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}]}}}


def _root(tmp_path):
    (tmp_path / "proc" / "acpi").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc" / "kcore").write_text("")
    return str(tmp_path)


def test_dump_opts(tmp_path):
    o = checkpoint.dump_opts(STATE, checkpoint.Options(image_path="/i"), _root(tmp_path))
    assert o["pid"] == 77 and o["root"] == "/b/rootfs" and o["freeze_cgroup"] == "/sys/fs/cgroup/ocirt/c1"
    assert o["leave_running"] is False and o["manage_cgroups"] and o["orphan_pts_master"]
    ino = os.stat("/proc/self/ns/net").st_ino
    assert o["external"] == [f"net[{ino}]:extRootNetNS", "mnt[/data]:/data", "mnt[/etc/hosts]:/etc/hosts",
                             "mnt[/proc/kcore]:/dev/null"]   # a masked directory is a tmpfs: dumped
    assert "parent_img" not in o and "track_mem" not in o and "manage_cgroups_mode" not in o


def test_pre_dump_and_parent(tmp_path):
    pre = checkpoint.dump_opts(STATE, checkpoint.Options(pre_dump=True), _root(tmp_path))
    assert pre["leave_running"] and pre["track_mem"]
    assert all(not e.startswith("mnt[") for e in pre["external"])
    dump = checkpoint.dump_opts(STATE, checkpoint.Options(parent_path="../pre", manage_cgroups_mode="strict",
                                                          empty_ns=["network"]), _root(tmp_path))
    assert dump["parent_img"] == "../pre" and dump["track_mem"]
    assert dump["manage_cgroups_mode"] == 5 and dump["empty_ns"] == 0x40000000


@pytest.mark.parametrize("flags, msg", [
    ({"manage_cgroups_mode": "hard"}, "--manage-cgroups-mode: invalid value 'hard'"),
    ({"empty_ns": ["pid"]}, "--empty-ns: 'pid': only network is supported"),
    ({"empty_ns": ["bogus"]}, "--empty-ns: unknown namespace 'bogus'"),
    ({"page_server": "1.2.3.4"}, "--page-server '1.2.3.4': use ADDRESS:PORT"),
    ({"page_server": ":27277"}, "--page-server ':27277': use ADDRESS:PORT"),
    ({"page_server": "1.2.3.4:http"}, "--page-server '1.2.3.4:http': invalid port number 'http'"),
    ({"page_server": "1.2.3.4:65536"}, "--page-server '1.2.3.4:65536': invalid port number"),
    ({"lazy_pages": True, "status_fd": 999}, "--status-fd 999: Bad file descriptor"),
])
def test_refused_flags(flags, msg):
    with pytest.raises(OcirtError, match="^" + msg.replace("[", r"\[")):
        checkpoint.Options(**flags)


@pytest.mark.parametrize("value, want", [
    ("127.0.0.1:27277", {"address": "127.0.0.1", "port": 27277}),
    ("[::1]:5", {"address": "::1", "port": 5}),
    ("node-2:1", {"address": "node-2", "port": 1}),
])
def test_page_server(tmp_path, value, want):
    opts = checkpoint.Options(page_server=value, lazy_pages=True)
    o = checkpoint.dump_opts(STATE, opts, _root(tmp_path))
    assert o["ps"] == want and o["lazy_pages"] is True
    assert criu.decode(criu.encode("criu_opts", {"ps": want}))[11] == [criu.encode("criu_page_server_info", want)]


def test_status_fd_must_be_the_callers_and_writable():
    r, w = os.pipe()
    try:
        with pytest.raises(OcirtError, match=f"^--status-fd {w}: the fd was not passed to ocirt$"):
            checkpoint.Options(lazy_pages=True, status_fd=w)      # one of ours: not inheritable
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        with pytest.raises(OcirtError, match=f"^--status-fd {r}: not open for writing$"):
            checkpoint.Options(lazy_pages=True, status_fd=r)
        assert checkpoint.Options(lazy_pages=True, status_fd=w).status_fd == w
        assert checkpoint.Options(status_fd=r).status_fd == r   # without --lazy-pages: unused, as runc
    finally:
        os.close(r)
        os.close(w)


def test_status_ready_writes_one_nul_and_closes():
    r, w = os.pipe()
    os.set_inheritable(w, True)
    opts = checkpoint.Options(lazy_pages=True, status_fd=w)
    checkpoint._notified(opts, "post-dump")
    assert opts.status_fd == w
    checkpoint._notified(opts, "status-ready")
    assert opts.status_fd == -1
    assert os.read(r, 10) == b"\0" and os.read(r, 10) == b""    # written, then closed
    os.close(r)


def test_first_error_of_the_check_log(tmp_path):
    log = tmp_path / "check.log"
    log.write_text("(00.1) info\nError (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n"
                   "Error (criu/kerndat.c:1615): later\n")
    assert criu._first_error(str(log)) == "vdso: Unexpected rt vDSO area bounds"
    assert criu._first_error(str(tmp_path / "absent")) == ""


def test_restore_opts():
    from ocirt import restore
    opts = restore.Options(image_path="/i", tcp_established=True)
    o = restore.restore_opts(STATE["config"], opts, "/s/criu-root", [{"path": "/ocirt/c2"}],
                             ["pipe:[12]", "/dev/null", "pipe:[13]"])
    assert o["root"] == "/s/criu-root" and o["rst_sibling"] and o["tcp_established"]
    assert o["external"] == ["mnt[/data]:/srv/d", "mnt[/etc/hosts]:/h", "mnt[/dev/null]:/dev/null"]
    assert o["inherit_fd"] == [{"key": "pipe:[12]", "fd": 0}, {"key": "pipe:[13]", "fd": 2}]
    assert o["cg_root"] == [{"path": "/ocirt/c2"}]
    assert "lazy_pages" not in o
    assert restore.restore_opts(STATE["config"], restore.Options(lazy_pages=True), "/r", [], [])["lazy_pages"]
    data = criu.encode("criu_req", {"type": criu.RESTORE, "opts": o})   # every field is in the schema
    assert criu.decode(data)[1] == [criu.RESTORE]


def test_notification_fds_are_received():
    """orphan-pts-master comes with the pty master as SCM_RIGHTS."""
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    try:
        socket.send_fds(b, [b"packet"], [w])
        data, fds = criu._recv(a)
        assert data == b"packet" and len(fds) == 1
        os.write(fds[0], b"x")
        os.close(fds[0])
        assert os.read(r, 1) == b"x"
        b.send(b"plain")
        assert criu._recv(a) == (b"plain", [])
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()


def test_send_master_names_the_pty():
    import socket
    from ocirt.console import send_master
    master, slave = os.openpty()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        send_master(b.fileno(), master)
        data, fds, _, _ = socket.recv_fds(a, 100, 1)
        assert data == os.ttyname(slave).encode() and len(fds) == 1
        os.write(fds[0], b"hi\n")
        os.close(fds[0])
        assert os.read(slave, 10) == b"hi\n"
    finally:
        for fd in (master, slave):
            os.close(fd)
        a.close()
        b.close()


def test_cgroup_roots_of_a_v1_and_a_v2_container():
    """CRIU's cg_root: each hierarchy's directory relative to its root (v1's
    named hierarchies by their name; the hybrid unified one and pure v2 with
    no controller)."""
    from types import SimpleNamespace
    from ocirt.restore import cgroup_roots
    v1 = SimpleNamespace(dirs={"cpu": "/sys/fs/cgroup/cpu/ocirt/c1",
                               "memory": "/sys/fs/cgroup/memory/user.slice/c1",
                               "name=systemd": "/sys/fs/cgroup/systemd/ocirt/c1",
                               "": "/sys/fs/cgroup/unified/ocirt/c1"})
    assert cgroup_roots(v1) == [{"ctrl": "cpu", "path": "/ocirt/c1"}, {"ctrl": "memory", "path": "/user.slice/c1"},
                                {"ctrl": "systemd", "path": "/ocirt/c1"}, {"path": "/ocirt/c1"}]
    assert cgroup_roots(SimpleNamespace(dirs={"": "/sys/fs/cgroup/system.slice/c2"})) == \
        [{"path": "/system.slice/c2"}]
