"""linux.seccomp -> a raw BPF program, compiled in the parent with libseccomp.

The container side only installs the program: seccomp(SECCOMP_SET_MODE_FILTER,
compiled.flags, {len(bpf) // 8, bpf}) after no_new_privs or with
CAP_SYS_ADMIN. Programs are cached by content hash: a cache hit neither
loads libseccomp nor validates again (only valid sections are cached).

Syscalls newer than every one the profile names (per architecture) return
ENOSYS instead of the default action, as with runc: a profile written
before clone3 or close_range existed then makes libc fall back to clone or
close, instead of failing with EPERM (or being killed) on a new kernel.

Behaviour follows runc where the spec leaves room: syscall names this
libseccomp does not know are skipped (profiles list syscalls of newer
kernels), a rule whose action equals the default one is skipped, args
naming one index twice become one rule per arg, errnoRet defaults to EPERM,
and an absent `flags` means SECCOMP_FILTER_FLAG_SPEC_ALLOW (runc and crun).
"""
import errno
import json
import os
import struct

from ocirt.errors import OcirtError, jpath

try:  # hashlib would load OpenSSL (~5 ms); the builtin module is enough
    from _sha256 import sha256
except ImportError:  # Python >= 3.12 renamed it
    from _sha2 import sha256

# Kernel ABI values (SECCOMP_RET_*); the low 16 bits of ERRNO/TRACE carry data.
_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_EPERM = 1

# libseccomp's enum scmp_compare
_OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# SECCOMP_FILTER_FLAG_*
_FLAG_TSYNC, _FLAG_LOG, _FLAG_SPEC_ALLOW = 1, 2, 4
_FLAG_NEW_LISTENER, _FLAG_TSYNC_ESRCH, _FLAG_WAIT_KILLABLE_RECV = 8, 16, 32
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": _FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": _FLAG_WAIT_KILLABLE_RECV,
}

SECCOMP_ACTIONS = tuple(_ACTIONS)
SECCOMP_OPERATORS = tuple(_OPERATORS)
SECCOMP_FLAGS = tuple(_FLAGS)
# The architectures libseccomp 2.5 knows; its name is the lower-cased suffix.
SECCOMP_ARCHES = tuple("SCMP_ARCH_" + a for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32",
    "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
    "S390X", "PARISC", "PARISC64", "RISCV64"))

_MAX_ARGS = 6
# The helper hands the listener fd to the runtime with these after the filter
# is installed: notifying them would hang it, as nobody listens yet (runc
# refuses `write` for the same reason).
_NOTIFY_FORBIDDEN = ("write", "sendmsg")
# Above this many rules, use libseccomp's binary tree (as runc does; below,
# libseccomp <= 2.5.4 can misbehave with it).
_TREE_MIN_RULES = 32
# Bump when the compiled output for a given section changes.
_CACHE_FORMAT = b"ocirt-seccomp-2"


class Compiled:
    """A program ready to install; `flags` include NEW_LISTENER when a rule
    notifies, and the listener fields say where to send the fd then."""
    __slots__ = ("bpf", "flags", "listener_path", "listener_metadata")

    def __init__(self, bpf, flags, listener_path=None, listener_metadata=None):
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    def __eq__(self, other):
        return isinstance(other, Compiled) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return (f"Compiled(<{len(self.bpf) // 8} insns>, flags={self.flags:#x}, "
                f"listener_path={self.listener_path!r})")


def compile_seccomp(seccomp, cache_dir=None, where="linux.seccomp"):
    """Compile a linux.seccomp section; raise OcirtError naming the field at
    fault. With cache_dir, reuse and store programs there."""
    if not isinstance(seccomp, dict):
        raise OcirtError("must be an object", where)
    path = os.path.join(cache_dir, _cache_key(seccomp)) if cache_dir else None
    hit = path and _cache_read(path)
    if hit:
        bpf, flags = hit
    else:
        rules = _parse(seccomp, where)
        bpf, flags, lib_id = _build(rules, where)
        if path:
            _cache_write(path, bpf, flags, lib_id)
    return Compiled(bpf, flags, seccomp.get("listenerPath"), seccomp.get("listenerMetadata"))


# --- validation: OCI JSON -> plain data, no libseccomp ---------------------

class _Rules:
    __slots__ = ("default", "arches", "flags", "explicit_flags", "calls")

    def __init__(self):
        self.default = 0
        self.arches = []       # libseccomp names, e.g. "x86_64"
        self.flags = 0
        self.explicit_flags = False
        self.calls = []        # (where, name, action, [(index, op, value, valueTwo)])


def _parse(sec, where):
    r = _Rules()
    if "defaultAction" not in sec:
        raise OcirtError("is required", jpath(where, "defaultAction"))
    r.default = _action(sec, "defaultAction", "defaultErrnoRet", where)
    if sec["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise OcirtError("SCMP_ACT_NOTIFY cannot be the default action", jpath(where, "defaultAction"))
    for i, arch in enumerate(_list(sec, "architectures", where)):
        if arch not in SECCOMP_ARCHES:
            raise OcirtError(f"unsupported architecture {_q(arch)}", jpath(jpath(where, "architectures"), i))
        r.arches.append(arch[len("SCMP_ARCH_"):].lower())
    notify = False
    for i, call in enumerate(_list(sec, "syscalls", where)):
        notify |= _parse_call(r, call, jpath(jpath(where, "syscalls"), i))
    _parse_flags(r, sec, notify, where)
    _parse_listener(sec, notify, where)
    return r


def _parse_call(r, call, where):
    """Append the rules of one syscalls[] entry; True if it notifies."""
    if not isinstance(call, dict):
        raise OcirtError("must be an object", where)
    if "action" not in call:
        raise OcirtError("is required", jpath(where, "action"))
    action = _action(call, "action", "errnoRet", where)
    names = _list(call, "names", where)
    if not names:
        raise OcirtError("must list at least one syscall", jpath(where, "names"))
    args = [_parse_arg(a, jpath(jpath(where, "args"), j)) for j, a in enumerate(_list(call, "args", where))]
    notify = call["action"] == "SCMP_ACT_NOTIFY"
    for j, name in enumerate(names):
        at = jpath(jpath(where, "names"), j)
        if not isinstance(name, str) or not name:
            raise OcirtError("must be a non-empty syscall name", at)
        if notify and name in _NOTIFY_FORBIDDEN:
            raise OcirtError(f"SCMP_ACT_NOTIFY cannot be used for {_q(name)}: the runtime needs it "
                             "to pass on the listener", at)
        if action != r.default:  # libseccomp refuses rules that repeat the default
            r.calls.append((at, name, action, args))
    return notify


def _parse_arg(arg, where):
    if not isinstance(arg, dict):
        raise OcirtError("must be an object", where)
    for key in ("index", "value", "op"):
        if key not in arg:
            raise OcirtError("is required", jpath(where, key))
    index = arg["index"]
    if not _is_uint(index, 2**32) or index >= _MAX_ARGS:
        raise OcirtError(f"must be an argument index from 0 to {_MAX_ARGS - 1}", jpath(where, "index"))
    op = _OPERATORS.get(arg["op"]) if isinstance(arg["op"], str) else None
    if op is None:
        raise OcirtError(f"unknown operator {_q(arg['op'])}", jpath(where, "op"))
    for key in ("value", "valueTwo"):
        if not _is_uint(arg.get(key, 0), 2**64):
            raise OcirtError("must be an unsigned 64-bit integer", jpath(where, key))
    # libseccomp's MASKED_EQ tests (arg & datum_a) == datum_b; runc passes
    # value as datum_a and valueTwo as datum_b, so value is the mask.
    return (index, op, arg["value"], arg.get("valueTwo", 0))


def _action(obj, key, errno_key, where):
    name = obj[key]
    if not isinstance(name, str) or name not in _ACTIONS:
        raise OcirtError(f"unknown action {_q(name)}", jpath(where, key))
    if errno_key not in obj:
        return _ACTIONS[name] | (_EPERM if name in _WITH_ERRNO else 0)
    ret = obj[errno_key]
    if name not in _WITH_ERRNO:
        raise OcirtError(f"{name} does not take an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
                         jpath(where, errno_key))
    if not _is_uint(ret, 0x10000):
        raise OcirtError("must be an errno number from 0 to 65535", jpath(where, errno_key))
    return _ACTIONS[name] | ret


def _parse_flags(r, sec, notify, where):
    r.explicit_flags = "flags" in sec
    names = _list(sec, "flags", where) if r.explicit_flags else ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in _FLAGS:
            raise OcirtError(f"unknown flag {_q(name)}", jpath(jpath(where, "flags"), i))
        if _FLAGS[name] == _FLAG_WAIT_KILLABLE_RECV and not notify:
            raise OcirtError(f"{name} needs a rule with SCMP_ACT_NOTIFY", jpath(jpath(where, "flags"), i))
        r.flags |= _FLAGS[name]
    if notify:
        r.flags |= _FLAG_NEW_LISTENER
        if r.flags & _FLAG_TSYNC:  # the kernel takes TSYNC with a listener only so
            r.flags |= _FLAG_TSYNC_ESRCH


def _parse_listener(sec, notify, where):
    for key in ("listenerPath", "listenerMetadata"):
        if not isinstance(sec.get(key, ""), str):
            raise OcirtError("must be a string", jpath(where, key))
    if sec.get("listenerMetadata") and not sec.get("listenerPath"):
        raise OcirtError("must not be set without listenerPath", jpath(where, "listenerMetadata"))
    if notify and not sec.get("listenerPath"):
        raise OcirtError("is required when a rule uses SCMP_ACT_NOTIFY", jpath(where, "listenerPath"))


def _list(obj, key, where):
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OcirtError("must be an array", jpath(where, key))
    return value


def _is_uint(v, limit):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit


def _q(v):
    return json.dumps(v)


# --- compilation: libseccomp, loaded only here ------------------------------

def _build(r, where):
    """Return (bpf, flags, lib_id) for parsed rules."""
    from ocirt._native._lib import ffi, lib
    flags = _kernel_flags(lib, r, where)
    ctx = lib.ocirt_scmp_new(r.default)
    if ctx == ffi.NULL:
        raise OcirtError("libseccomp refused the default action (not supported by this kernel?)",
                         jpath(where, "defaultAction"))
    try:
        for i, arch in enumerate(r.arches):
            rc = lib.ocirt_scmp_arch_add(ctx, lib.ocirt_scmp_arch(arch.encode()))
            if rc < 0:
                why = ("its byte order differs from the native architecture's" if rc == -errno.EDOM
                       else os.strerror(-rc))
                raise OcirtError(f"cannot add architecture to the filter: {why}",
                                 jpath(jpath(where, "architectures"), i))
        added = sum(_add_call(ffi, lib, ctx, call) for call in r.calls)
        if added > _TREE_MIN_RULES:
            lib.ocirt_scmp_optimize(ctx, 2)  # a failure only costs speed
        bpf = _export(lib, ctx, where)
    finally:
        lib.ocirt_scmp_free(ctx)
    if r.default & _ACTION_MASK not in (_ACTIONS["SCMP_ACT_ALLOW"], _ACTIONS["SCMP_ACT_LOG"]):
        bpf = enosys_stub(_newest(lib, r)) + bpf
    return bpf, flags, _lib_id(ffi, lib)


# --- ENOSYS for syscalls newer than the profile --------------------------------

_ACTION_MASK = 0xFFFF0000
_X32_BIT = 0x40000000  # x32 shares AUDIT_ARCH_X86_64: its numbers carry this bit
_AUDIT_X86_64 = 0xC000003E
_SCMP_X32 = 0x4000003E  # libseccomp's token for x32 (EM_X86_64 | LE)
_ENOSYS = 38
# classic BPF opcodes
_LD_ABS, _JEQ, _JGE, _JGT, _JA, _RET = 0x20, 0x15, 0x35, 0x25, 0x05, 0x06
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data


def _newest(lib, r):
    """{audit arch: [newest nr below the x32 bit or None, newest x32 nr or None]}
    over every syscall the profile names, for each architecture of the filter."""
    tokens = [lib.ocirt_scmp_arch_native()] + [lib.ocirt_scmp_arch(a.encode()) for a in r.arches]
    names = {call[1].encode() for call in r.calls}
    newest = {}
    for token in dict.fromkeys(tokens):
        audit, half = (_AUDIT_X86_64, 1) if token == _SCMP_X32 else (token, 0)
        nrs = [n for n in (lib.ocirt_scmp_syscall_arch(token, name) for name in names) if n >= 0]
        newest.setdefault(audit, [None, None])[half] = max(nrs, default=None)
    return newest


def enosys_stub(newest):
    """BPF run before libseccomp's program: ENOSYS for a syscall above the
    newest one the profile names on its architecture; all else goes on to
    the program. An architecture (or x32 half) the profile names no syscall
    of is left to the program."""
    code = []  # (opcode, jt label, jf label, k) and ("label", name); None: the next one
    for audit, (low, x32) in newest.items():
        nxt = f"after{len(code)}"
        code.append((_LD_ABS, None, None, _ARCH))
        code.append((_JEQ, None, nxt, audit))
        code.append((_LD_ABS, None, None, _NR))
        if audit == _AUDIT_X86_64:
            code.append((_JGE, "x32", None, _X32_BIT))
        code.append(_above(low))
        if audit == _AUDIT_X86_64:
            code.append(("label", "x32"))
            code.append(_above(x32))
        code.append(("label", nxt))
    code.append((_JA, None, None, "main"))
    code.append(("label", "enosys"))
    code.append((_RET, None, None, _ACTIONS["SCMP_ACT_ERRNO"] | _ENOSYS))
    code.append(("label", "main"))
    return _assemble(code)


def _above(newest):
    if newest is None:
        return (_JA, None, None, "main")
    return (_JGT, "enosys", "main", newest)


def _assemble(code):
    """Resolve labels to relative jumps and pack struct sock_filter entries."""
    at, insns = {}, []
    for item in code:
        if item[0] == "label":
            at[item[1]] = len(insns)
        else:
            insns.append(item)
    out = bytearray()
    for i, (op, jt, jf, k) in enumerate(insns):
        def rel(label):
            return 0 if label is None else at[label] - i - 1
        if op == _JA:
            out += struct.pack("<HBBI", op, 0, 0, rel(k))
        else:
            out += struct.pack("<HBBI", op, rel(jt), rel(jf), k)
    return bytes(out)


def _add_call(ffi, lib, ctx, call):
    """Add one syscall's rules; return how many (0 for unknown names)."""
    where, name, action, args = call
    nr = lib.ocirt_scmp_syscall(name.encode())
    if nr == -1:  # unknown to this libseccomp: skipped, as runc does
        return 0
    indexes = [a[0] for a in args]
    # One index compared twice cannot be one rule (libseccomp refuses it):
    # runc then adds one rule per arg, i.e. a match on any of them.
    groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
    for group in groups:
        cargs = ffi.new("struct ocirt_scmp_arg[]", group) if group else ffi.NULL
        rc = lib.ocirt_scmp_rule_add(ctx, action, nr, len(group), cargs)
        if rc < 0:
            raise OcirtError(f"libseccomp cannot add a rule for {_q(name)}: {os.strerror(-rc)}", where)
    return len(groups)


def _kernel_flags(lib, r, where):
    """r.flags, checked against the running kernel."""
    flags = r.flags
    if lib.ocirt_seccomp_flags_check(flags) == 0:
        return flags
    if not r.explicit_flags:  # the implicit SPEC_ALLOW only where it exists
        flags &= ~_FLAG_SPEC_ALLOW
        if lib.ocirt_seccomp_flags_check(flags) == 0:
            return flags
    for name, bit in _FLAGS.items():  # name the flag whose removal helps
        if bit & flags and lib.ocirt_seccomp_flags_check(flags & ~bit) == 0:
            raise OcirtError(f"{name} is not supported by this kernel", jpath(where, "flags"))
    rc = lib.ocirt_seccomp_flags_check(flags)
    raise OcirtError(f"the kernel refuses seccomp flags {flags:#x}: {os.strerror(-rc)}", where)


def kernel_flags():
    """The SECCOMP_FLAGS this kernel accepts (for `ocirt features`)."""
    from ocirt._native._lib import lib
    # WAIT_KILLABLE_RECV is only valid with a listener
    probe = {_FLAG_WAIT_KILLABLE_RECV: _FLAG_WAIT_KILLABLE_RECV | _FLAG_NEW_LISTENER}
    return [name for name, bit in _FLAGS.items() if lib.ocirt_seccomp_flags_check(probe.get(bit, bit)) == 0]


def libseccomp_version():
    from ocirt._native._lib import lib
    v = lib.ocirt_scmp_version()
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def _export(lib, ctx, where):
    fd = os.memfd_create("ocirt-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.ocirt_scmp_export(ctx, fd)
        if rc < 0:
            raise OcirtError(f"libseccomp cannot export the filter: {os.strerror(-rc)}", where)
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def _lib_id(ffi, lib):
    """What the cache checks, without loading libseccomp, to notice that the
    library was replaced: its path, inode, size and mtime, and version."""
    path = ffi.string(lib.ocirt_scmp_library()).decode()
    st = os.stat(path)
    return [path, st.st_ino, st.st_size, st.st_mtime_ns, libseccomp_version()]


# --- cache: ROOT/seccomp-cache/<sha256> -------------------------------------
# File format: one JSON line {"lib": _lib_id(), "flags": int}, then the BPF.

def _cache_key(sec):
    """sha256 of the canonical section, the kernel and the format version.
    The libseccomp version is checked from the entry (_lib_id)."""
    u = os.uname()
    h = sha256(_CACHE_FORMAT)
    h.update(f"\0{u.machine}\0{u.release}\0".encode())
    h.update(json.dumps(sec, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _cache_read(path):
    """(bpf, flags), or None when absent, unreadable or stale."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        head, _, bpf = data.partition(b"\n")
        meta = json.loads(head)
        lib = meta["lib"]
        st = os.stat(lib[0])
        fresh = lib[1:4] == [st.st_ino, st.st_size, st.st_mtime_ns]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if not fresh or not bpf or len(bpf) % 8:
        return None
    return bpf, meta["flags"]


def _cache_write(path, bpf, flags, lib_id):
    """Atomic (tmp + rename). A cache that cannot be written only costs speed."""
    tmp = f"{path}.{os.getpid()}.tmp"
    head = json.dumps({"lib": lib_id, "flags": flags}, separators=(",", ":")).encode()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(head + b"\n" + bpf)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# --- SCMP_ACT_NOTIFY: the message for listenerPath ---------------------------

def notify_state(container_state, compiled):
    """The payload sent to `compiled.listener_path` with the listener fd.

    Wire format (runtime-spec "container process state", as runc sends it):
    connect an AF_UNIX SOCK_STREAM socket to listenerPath, then ONE sendmsg
    whose data is these bytes (compact UTF-8 JSON, no trailing newline) and
    whose control message is SOL_SOCKET/SCM_RIGHTS carrying exactly one fd,
    the seccomp listener (fds[0] == "seccompFd" names it). Should sendmsg
    send only part of the data, the rest goes in further sends WITHOUT
    fds. Then close the connection: one state per connection. A failure at
    any step fails the container's creation.

    {"ociVersion": ..., "fds": ["seccompFd"], "pid": <container process pid,
     as seen by the runtime>, "metadata": listenerMetadata (omitted when
     unset), "state": <the container state, status "creating">}
    """
    msg = {"ociVersion": container_state["ociVersion"], "fds": ["seccompFd"],
           "pid": container_state["pid"]}
    if compiled.listener_metadata:
        msg["metadata"] = compiled.listener_metadata
    msg["state"] = container_state
    return json.dumps(msg, separators=(",", ":")).encode()
