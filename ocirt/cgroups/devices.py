"""linux.resources.devices: validated rules, as v1 devices.allow/deny lines
and as a cgroup v2 eBPF (BPF_PROG_TYPE_CGROUP_DEVICE) program."""
import struct

from ..errors import OcirtError, jpath

# What runc always allows after the config's own rules (specconv
# AllowedDevices): mknod of any device, /dev/null, zero, full, random,
# urandom, tty, ptmx and the pty slaves. runc 1.1 also allowed c 10:200
# (/dev/net/tun); runc 1.2 dropped it, and so do we.
DEFAULT_ALLOWED = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
]


class Rule(tuple):
    """(allow, type 'a'|'b'|'c', major or None, minor or None, access)."""
    allow = property(lambda s: s[0])
    type = property(lambda s: s[1])
    major = property(lambda s: s[2])
    minor = property(lambda s: s[3])
    access = property(lambda s: s[4])


def rules(devices, where):
    """The config's rules followed by runc's defaults, validated."""
    out = []
    for i, d in enumerate(list(devices or []) + DEFAULT_ALLOWED):
        w = jpath(where, i) if i < len(devices or []) else "(default device rules)"
        out.append(_rule(d, w))
    return out


def _rule(d, where):
    if not isinstance(d, dict) or not isinstance(d.get("allow"), bool):
        raise OcirtError("a device rule needs a boolean \"allow\"", jpath(where, "allow"))
    typ = d.get("type") or "a"
    if typ not in ("a", "b", "c"):
        raise OcirtError(f"device type {typ!r} is not one of a, b, c", jpath(where, "type"))
    nums = []
    for key in ("major", "minor"):
        v = d.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < -1):
            raise OcirtError(f"{v!r} is not a device number", jpath(where, key))
        nums.append(None if v in (None, -1) else v)
    access = d.get("access") or "rwm"
    if not isinstance(access, str) or set(access) - set("rwm"):
        raise OcirtError(f"access {access!r} is not made of r, w, m", jpath(where, "access"))
    return Rule((d["allow"], typ, nums[0], nums[1], "".join(c for c in "rwm" if c in access)))


def v1_lines(rs):
    """[(file, line)] for devices.allow / devices.deny, in the rules' order."""
    out = []
    for r in rs:
        num = lambda n: "*" if n is None else str(n)
        line = "a" if r.type == "a" else f"{r.type} {num(r.major)}:{num(r.minor)} {r.access}"
        out.append(("devices.allow" if r.allow else "devices.deny", line))
    return out


# --- eBPF ----------------------------------------------------------------
# The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
# u32 minor; } with access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
# It checks the rules last to first and returns the first match's verdict,
# which is what v1 gives for the same list applied in order; a request no
# rule matches is allowed, as in a new v1 cgroup (runc's emulator starts so).
_ACC = {"m": 1, "r": 2, "w": 4}
_DEV = {"b": 1, "c": 2}
R0, R1, R2, R3, R4, R5 = range(6)


def _insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _ldxw(dst, off):
    return _insn(0x61, dst, R1, off)          # BPF_LDX | BPF_MEM | BPF_W


def _alu(op, dst, imm):
    return _insn(op | 0x07, dst, imm=imm)     # BPF_ALU64 | op | BPF_K


_AND, _RSH, _MOV = 0x50, 0x70, 0xb0
_JEQ, _JNE = 0x15, 0x55                       # BPF_JMP | op | BPF_K
_EXIT = _insn(0x95)


def _mov_reg(dst, src):
    return _insn(0xbf, dst, src)              # BPF_ALU64 | BPF_MOV | BPF_X


def _tests(r):
    """(setup instructions, jump opcode, register, immediate) per check of a
    rule; type "a" matches everything, as in v1 (access and numbers ignored)."""
    if r.type == "a":
        return []
    tests = [([], _JNE, R2, _DEV[r.type])]
    acc = sum(_ACC[c] for c in r.access)
    if acc != 7:
        if r.allow:   # every requested bit must be granted by the rule
            tests.append(([_mov_reg(R1, R3), _alu(_AND, R1, ~acc & 7)], _JNE, R1, 0))
        else:         # any requested bit the rule names is denied
            tests.append(([_mov_reg(R1, R3), _alu(_AND, R1, acc)], _JEQ, R1, 0))
    if r.major is not None:
        tests.append(([], _JNE, R4, r.major))
    if r.minor is not None:
        tests.append(([], _JNE, R5, r.minor))
    return tests


def _block(r):
    """One rule: each check jumps past the block on mismatch, else return the verdict."""
    out = []
    for setup, op, reg, imm in _tests(r):
        out.extend(setup)
        out.append((op, reg, imm))
    out += [_alu(_MOV, R0, int(r.allow)), _EXIT]
    n = len(out)
    return [_insn(x[0], x[1], off=n - i - 1, imm=x[2]) if isinstance(x, tuple) else x
            for i, x in enumerate(out)]


def bpf_program(rs):
    """The device filter for these rules, as raw eBPF instructions."""
    prog = [_ldxw(R2, 0), _alu(_AND, R2, 0xFFFF),
            _ldxw(R3, 0), _alu(_RSH, R3, 16),
            _ldxw(R4, 4), _ldxw(R5, 8)]
    for r in reversed(rs):
        prog += _block(r)
        if r.type == "a":
            return b"".join(prog)             # matches everything: earlier rules never run
    prog += [_alu(_MOV, R0, 1), _EXIT]
    return b"".join(prog)
