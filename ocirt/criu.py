"""Talk to CRIU over its RPC interface: `criu swrk FD` on a socketpair.

CRIU's RPC messages are protobuf (rpc.proto, shipped by Debian's criu
package at /usr/include/criu/rpc.proto). We encode the few messages we use
ourselves instead of importing pycriu's rpc_pb2: pycriu lives in the system
Python's dist-packages and needs python3-protobuf, neither of which the
/opt/ocirt venv has, and `import google.protobuf` would cost far more than
this module. The subset is small (varints, strings, nested messages, one
packet per message on a SOCK_SEQPACKET socket) and unit tests check it
against pycriu's rpc_pb2 when the system Python has it.

Imported only by checkpoint, restore and features: never on the hot path.
"""
import os
import socket
import subprocess

from .errors import OcirtError

CRIU = "/usr/sbin/criu"


def use(path):
    """Use the criu of runc's --criu flag (a name is looked up in PATH)."""
    global CRIU
    if "/" not in path:
        import shutil
        path = shutil.which(path) or path
    CRIU = path

# criu_req_type
DUMP, RESTORE, CHECK, PRE_DUMP, NOTIFY, FEATURE_CHECK, VERSION = 1, 2, 3, 4, 6, 9, 10
CG_MODES = {"soft": 3, "full": 4, "strict": 5, "ignore": 0}

# criu_opts: name -> (field number, kind); kind "msg:NAME" nests a message.
_OPTS = {
    "images_dir_fd": (1, "int"), "pid": (2, "int"), "leave_running": (3, "bool"),
    "ext_unix_sk": (4, "bool"), "tcp_established": (5, "bool"), "evasive_devices": (6, "bool"),
    "shell_job": (7, "bool"), "file_locks": (8, "bool"), "log_level": (9, "int"),
    "log_file": (10, "str"), "notify_scripts": (12, "bool"), "root": (13, "str"),
    "parent_img": (14, "str"), "track_mem": (15, "bool"), "auto_dedup": (16, "bool"),
    "work_dir_fd": (17, "int"), "ext_mnt": (23, "msg:ext_mount_map"),
    "ps": (11, "msg:criu_page_server_info"),
    "manage_cgroups": (24, "bool"), "cg_root": (25, "msg:cgroup_root"),
    "rst_sibling": (26, "bool"), "inherit_fd": (27, "msg:inherit_fd"),
    "manage_cgroups_mode": (34, "int"), "external": (37, "str"),
    "empty_ns": (38, "int"), "join_ns": (39, "msg:join_namespace"),
    "freeze_cgroup": (44, "str"), "lazy_pages": (48, "bool"), "orphan_pts_master": (50, "bool"),
    "lsm_profile": (53, "str"),
}
_SCHEMAS = {
    "criu_opts": _OPTS,
    "ext_mount_map": {"key": (1, "str"), "val": (2, "str")},
    "cgroup_root": {"ctrl": (1, "str"), "path": (2, "str")},
    "criu_page_server_info": {"address": (1, "str"), "port": (2, "int")},
    "inherit_fd": {"key": (1, "str"), "fd": (2, "int")},
    "join_namespace": {"ns": (1, "str"), "ns_file": (2, "str"), "extra_opt": (3, "str")},
    "criu_req": {"type": (1, "int"), "opts": (2, "msg:criu_opts"),
                 "notify_success": (3, "bool"), "keep_open": (4, "bool"),
                 "features": (5, "msg:criu_features")},
    "criu_features": {"mem_track": (1, "bool"), "lazy_pages": (2, "bool")},
}


def _varint(n):
    n &= (1 << 64) - 1          # int32 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(schema, msg):
    """Encode dict msg as protobuf message `schema`; lists are repeated fields."""
    fields = _SCHEMAS[schema]
    out = bytearray()
    for name, value in msg.items():
        number, kind = fields[name]
        for v in value if isinstance(value, list) else [value]:
            if kind in ("int", "bool"):
                out += _varint(number << 3) + _varint(int(v))
            else:
                data = v.encode() if kind == "str" else encode(kind[4:], v)
                out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def _read_varint(buf, i):
    n = shift = 0
    while True:
        byte = buf[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i


def decode(buf):
    """Decode any protobuf message into {field number: [int | bytes, ...]}."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
            if value >= 1 << 63:
                value -= 1 << 64
        elif wire == 2:
            size, i = _read_varint(buf, i)
            value, i = bytes(buf[i:i + size]), i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = int.from_bytes(buf[i:i + size], "little"), i + size
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
        fields.setdefault(key >> 3, []).append(value)
    return fields


class Response:
    """A criu_resp: type, success, errno and message, and the nested replies."""

    def __init__(self, buf):
        f = decode(buf)
        self.type = f.get(1, [0])[0]
        self.success = bool(f.get(2, [0])[0])
        self.cr_errno = f.get(7, [0])[0]
        self.errmsg = f[9][0].decode(errors="replace") if 9 in f else ""
        self.restore_pid = decode(f[4][0]).get(1, [0])[0] if 4 in f else 0
        notify = decode(f[5][0]) if 5 in f else {}
        self.script = notify.get(1, [b""])[0].decode()
        self.notify_pid = notify.get(2, [0])[0]
        feat = decode(f[8][0]) if 8 in f else {}
        self.features = {"mem_track": bool(feat.get(1, [0])[0]), "lazy_pages": bool(feat.get(2, [0])[0])}
        ver = decode(f[10][0]) if 10 in f else {}
        self.version = tuple(ver.get(n, [0])[0] for n in (1, 2, 4))


def missing():
    """Why CRIU cannot be used here, in one phrase, or None: CHECK with a
    log in a scratch directory, whose first error names what is missing."""
    if "/" not in CRIU or not os.access(CRIU, os.X_OK):
        return "criu is not installed (%s not found)" % CRIU
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="ocirt-criu-check-")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        resp = call(CHECK, {"images_dir_fd": fd, "log_file": "check.log", "log_level": 1},
                    pass_fds=(fd,), quiet=True)
        if resp.success:
            return None
        return "criu check fails on this kernel: " + (_first_error(os.path.join(d, "check.log"))
                                                      or resp.errmsg or "no reason given")
    except OcirtError as e:
        return str(e)
    finally:
        os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


def _first_error(log):
    """ "vdso: Unexpected rt vDSO area bounds" from "Error (criu/vdso.c:381): vdso: ..." """
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("Error"):
                    return line.partition("): ")[2].strip()
    except OSError:
        pass
    return ""


def _recv(sock):
    """One packet and the fds it carries (SCM_RIGHTS)."""
    import array
    fds = array.array("i")
    data, anc, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(4 * fds.itemsize), socket.MSG_CMSG_CLOEXEC)
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
    return data, list(fds)


def call(req_type, opts=None, notify=None, pass_fds=(), features=None, on_start=None, quiet=False,
         cwd=None):
    """Run one request through a fresh `criu swrk`; answer notifications.

    notify(script, pid, fds) is called for each notification CRIU sends
    (with opts notify_scripts), before CRIU is told to go on; fds: those
    it came with (orphan-pts-master's pty master), closed after unless
    notify takes them out of the list. on_start(pid)
    before the request is sent. CRIU gets this process's stdio (a restore
    hands it to the restored processes), but its stdout only unless quiet.
    cwd: where CRIU makes its scratch directories (the cgroup yard, which
    it mounts a tmpfs on: not on the caller's directory, which may be 9p or
    a FUSE).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        try:
            proc = subprocess.Popen([CRIU, "swrk", str(theirs.fileno())],
                                    pass_fds=(theirs.fileno(),) + tuple(pass_fds),
                                    stdout=subprocess.DEVNULL if quiet else None, cwd=cwd)
        except OSError as e:
            raise OcirtError("criu: cannot run %s: %s" % (CRIU, e.strerror))
        theirs.close()
        if on_start is not None:
            on_start(proc.pid)
        req = {"type": req_type}
        if opts is not None:
            req["opts"] = opts
        if features is not None:
            req["features"] = features
        ours.sendall(encode("criu_req", req))
        while True:
            data, fds = _recv(ours)
            if not data:
                raise OcirtError("criu: swrk exited without an answer")
            resp = Response(data)
            if resp.type != NOTIFY:
                return resp
            try:
                if notify is not None:
                    notify(resp.script, resp.notify_pid, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            ours.sendall(encode("criu_req", {"type": NOTIFY, "notify_success": True}))
    finally:
        ours.close()
        theirs.close()
        if "proc" in locals():
            proc.wait()
