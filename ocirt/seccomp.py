"""linux.seccomp -> a raw BPF program, compiled in the parent with
libseccomp from the rules ocirt/plan/seccomp.py parsed.

The container side only installs the program: seccomp(SECCOMP_SET_MODE_FILTER,
compiled.flags, {len(bpf) // 8, bpf}) after no_new_privs or with
CAP_SYS_ADMIN. Programs are cached by content hash: a cache hit neither
loads libseccomp nor validates again (only valid sections are cached).

Syscalls newer than every one the profile names (per architecture) return
ENOSYS instead of the default action, as with runc: a profile written
before clone3 or close_range existed then makes libc fall back to clone or
close, instead of failing with EPERM (or being killed) on a new kernel.
"""
import errno
import json
import os
import struct

from ocirt.errors import OcirtError, jpath
from ocirt.plan.seccomp import (ACTIONS, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_WAIT_KILLABLE_RECV, FLAGS,
                                Compiled, parse, quote)

try:  # hashlib would load OpenSSL (~5 ms); the builtin module is enough
    from _sha256 import sha256
except ImportError:  # Python >= 3.12 renamed it
    from _sha2 import sha256

# Above this many rules, use libseccomp's binary tree (as runc does; below,
# libseccomp <= 2.5.4 can misbehave with it).
_TREE_MIN_RULES = 32
# Bump when the compiled output for a given section changes.
_CACHE_FORMAT = b"ocirt-seccomp-2"


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
        rules = parse(seccomp, where)
        bpf, flags, lib_id = _build(rules, where)
        if path:
            _cache_write(path, bpf, flags, lib_id)
    return Compiled(bpf, flags, seccomp.get("listenerPath"), seccomp.get("listenerMetadata"))


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
    if r.default & _ACTION_MASK not in (ACTIONS["SCMP_ACT_ALLOW"], ACTIONS["SCMP_ACT_LOG"]):
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
    code.append((_RET, None, None, ACTIONS["SCMP_ACT_ERRNO"] | _ENOSYS))
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
            raise OcirtError(f"libseccomp cannot add a rule for {quote(name)}: {os.strerror(-rc)}", where)
    return len(groups)


def _kernel_flags(lib, r, where):
    """r.flags, checked against the running kernel."""
    flags = r.flags
    if lib.ocirt_seccomp_flags_check(flags) == 0:
        return flags
    if not r.explicit_flags:  # the implicit SPEC_ALLOW only where it exists
        flags &= ~FLAG_SPEC_ALLOW
        if lib.ocirt_seccomp_flags_check(flags) == 0:
            return flags
    for name, bit in FLAGS.items():  # name the flag whose removal helps
        if bit & flags and lib.ocirt_seccomp_flags_check(flags & ~bit) == 0:
            raise OcirtError(f"{name} is not supported by this kernel", jpath(where, "flags"))
    rc = lib.ocirt_seccomp_flags_check(flags)
    raise OcirtError(f"the kernel refuses seccomp flags {flags:#x}: {os.strerror(-rc)}", where)


def kernel_flags():
    """The SECCOMP_FLAGS this kernel accepts (for `ocirt features`)."""
    from ocirt._native._lib import lib
    # WAIT_KILLABLE_RECV is only valid with a listener
    probe = {FLAG_WAIT_KILLABLE_RECV: FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER}
    return [name for name, bit in FLAGS.items() if lib.ocirt_seccomp_flags_check(probe.get(bit, bit)) == 0]


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
