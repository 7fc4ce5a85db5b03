"""linux.resources.devices: validated rules, as v1 devices.allow/deny lines
and as a cgroup v2 eBPF (BPF_PROG_TYPE_CGROUP_DEVICE) program."""
import _struct  # not struct.py, which only re-exports it (~0.4 M instructions)

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


# Denied before the config's rules (as runc does): a device node the image
# ships is unusable unless a rule or the defaults allow it.
DENY_ALL = Rule((False, "a", None, None, "rwm"))


def rules(devices, where):
    """Deny all, the config's rules, then runc's defaults, validated."""
    out = [DENY_ALL]
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
# v1 decides each access bit (m, r, w) on its own, the last written rule
# that covers the bit winning; a request is allowed when all its bits are.
# So, for each requested bit, the program checks the rules naming that bit
# last to first and the first match decides; no match means allowed, as in
# a new v1 cgroup (runc's emulator starts from allow-all too).
_ACC = {"m": 1, "r": 2, "w": 4}
_DEV = {"b": 1, "c": 2}
R0, R1, R2, R3, R4, R5 = range(6)
_JEQ, _JNE, _JA = 0x15, 0x55, 0x05            # BPF_JMP | op | BPF_K


def _insn(code, dst=0, src=0, off=0, imm=0):
    return _struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _ldxw(dst, off):
    return _insn(0x61, dst, R1, off)          # BPF_LDX | BPF_MEM | BPF_W


def _and(dst, imm):
    return _insn(0x57, dst, imm=imm)          # BPF_ALU64 | BPF_AND | BPF_K


def _ret(verdict):
    return [_insn(0xb7, R0, imm=verdict), _insn(0x95)]   # mov r0, imm; exit


def _jump(op, reg, imm, label):
    return ("jump", op, reg, imm, label)


def _rule_checks(r, miss):
    """Jumps to `miss` unless the device matches r (type "a" matches all)."""
    if r.type == "a":
        return []
    out = [_jump(_JNE, R2, _DEV[r.type], miss)]
    if r.major is not None:
        out.append(_jump(_JNE, R4, r.major, miss))
    if r.minor is not None:
        out.append(_jump(_JNE, R5, r.minor, miss))
    return out


def _bit_section(rs, bit, done):
    out = [_insn(0xbf, R1, R3), _and(R1, bit), _jump(_JEQ, R1, 0, done)]   # bit not requested
    for i, r in enumerate(reversed(rs)):
        if r.type != "a" and bit not in (_ACC[c] for c in r.access):
            continue
        miss = ("rule", bit, i)
        out += _rule_checks(r, miss)
        out += [_jump(_JA, 0, 0, done)] if r.allow else _ret(0)
        out.append(("label", miss))
        if r.type == "a":
            break                         # covers everything: earlier rules never decide
    out.append(("label", done))
    return out


def _assemble(items):
    pos, n = {}, 0
    for it in items:
        if isinstance(it, tuple) and it[0] == "label":
            pos[it[1]] = n
        else:
            n += 1
    out, n = [], 0
    for it in items:
        if isinstance(it, tuple):
            if it[0] == "jump":
                _, op, reg, imm, label = it
                out.append(_insn(op, reg, off=pos[label] - n - 1, imm=imm))
                n += 1
        else:
            out.append(it)
            n += 1
    return b"".join(out)


def bpf_program(rs):
    """The device filter for these rules, as raw eBPF instructions."""
    items = [_ldxw(R2, 0), _and(R2, 0xFFFF),              # device type
             _ldxw(R3, 0), _insn(0x77, R3, imm=16),       # access bits (rsh 16)
             _ldxw(R4, 4), _ldxw(R5, 8)]                  # major, minor
    for bit in (1, 2, 4):
        items += _bit_section(rs, bit, ("done", bit))
    return _assemble(items + _ret(1))
