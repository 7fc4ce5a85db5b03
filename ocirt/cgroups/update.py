"""`update`: the LinuxResources to apply, from runc 1.1's flags or a JSON
document, and how they merge into the container's recorded resources.
Pure, so it is tested without root."""
from ..errors import OcirtError

_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# update flag -> (section, key); the parse differs per group as in runc's update.go
_UINT = {"cpu-period": ("cpu", "period"), "cpu-rt-period": ("cpu", "realtimePeriod"),
         "cpu-share": ("cpu", "shares")}
_INT = {"cpu-quota": ("cpu", "quota"), "cpu-rt-runtime": ("cpu", "realtimeRuntime")}
_RAM = {"memory": ("memory", "limit"), "memory-swap": ("memory", "swap"),
        "memory-reservation": ("memory", "reservation")}
_STR = {"cpuset-cpus": ("cpu", "cpus"), "cpuset-mems": ("cpu", "mems")}
_IGNORED = ("kernel-memory", "kernel-memory-tcp")     # runc 1.1 warns and ignores them
# Values that only mean something together: when one is updated, the
# cgroup needs the other too (v2's cpu.max holds both quota and period; a v2
# swap limit is memory+swap minus the memory limit).
_PAIRS = {"memory": ("limit", "swap"), "cpu": ("quota", "period")}
# What runc 1.1 takes from `update -r` (and records); the rest of a
# LinuxResources (devices, hugepageLimits, network, rdma, blockIO devices) is
# not updated. Rewriting devices on a running container, as a CRI update's
# full LinuxResources would, opens a deny-all window on v1.
_UPDATABLE = {"memory": ("limit", "reservation", "swap", "checkBeforeUpdate"),
              "cpu": ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod",
                      "cpus", "mems", "idle"),
              "blockIO": ("weight",), "pids": ("limit",), "unified": None}


def ram_in_bytes(text):
    """A size as docker/go-units RAMInBytes reads it (binary units): "64m",
    "1.5g", "512 KiB", "1048576"."""
    s = text
    if s.endswith(("b", "B")):
        s = s[:-1]
    if s.endswith(("i", "I")):
        s = s[:-1]
    unit = s[-1].lower() if s and s[-1].lower() in "kmgtp" else ""
    num = s[:len(s) - len(unit)]
    if num.endswith(" "):
        num = num[:-1]
    parts = num.split(".")
    if not num or len(parts) > 2 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"invalid size: '{text}'")
    return int(float(num) * _BINARY[unit])


def _go_int(text, flag, unsigned):
    digits = text[1:] if text[:1] in "+-" and not unsigned else text
    if not (digits.isdigit() and digits.isascii()):
        kind = "ParseUint" if unsigned else "ParseInt"
        raise OcirtError(f'invalid value for {flag}: strconv.{kind}: parsing "{text}": invalid syntax')
    return int(text)


def _int_flag(text, flag):
    """An integer flag, parsed by the flag library in runc (base 0, as Go's)."""
    try:
        return int(text, 0)
    except ValueError:
        raise OcirtError(f'invalid value "{text}" for flag -{flag}: parse error') from None


def from_flags(flags, warn):
    """The LinuxResources runc 1.1 builds from update's flags (flags keyed by
    long name, values as strings; "" = not given). A pids limit or blkio
    weight of 0 means unchanged, as there."""
    out = {}

    def put(where, value):
        out.setdefault(where[0], {})[where[1]] = value

    for flag, where in _STR.items():
        if flags.get(flag):
            put(where, flags[flag])
    for table, unsigned in ((_UINT, True), (_INT, False)):
        for flag, where in table.items():
            if flags.get(flag):
                put(where, _go_int(flags[flag], flag, unsigned))
    for flag, where in _RAM.items():
        v = flags.get(flag)
        if v:
            try:
                put(where, -1 if v == "-1" else ram_in_bytes(v))
            except ValueError as e:
                raise OcirtError(f"invalid value for {flag}: {e}") from None
    for flag, where in (("pids-limit", ("pids", "limit")), ("blkio-weight", ("blockIO", "weight"))):
        if flags.get(flag):
            n = _int_flag(flags[flag], flag)
            if n:
                put(where, n)
    for flag in _IGNORED:
        if flags.get(flag):
            warn(f"Setting --{flag} is ignored and will be removed")
    return out


def from_json(doc, source):
    """The updatable part of a LinuxResources document; wrong types are
    errors naming the field (the driver checks the values themselves)."""
    if not isinstance(doc, dict):
        raise OcirtError("a LinuxResources JSON object is required", "", source)
    out = {}
    for section, keys in _UPDATABLE.items():
        v = doc.get(section)
        if v is None:
            continue
        if not isinstance(v, dict):
            raise OcirtError("must be an object", section, source)
        picked = dict(v) if keys is None else {k: v[k] for k in keys if v.get(k) is not None}
        if picked:
            out[section] = picked
    return out


def merge(recorded, new):
    """-> (the resources to record, the resources to apply now). The first
    is `recorded` with `new` laid over it, section by section; the second is
    `new` plus, for each pair in _PAIRS, the partner value from the merge."""
    apply = {k: dict(v) for k, v in new.items()}
    mem = apply.get("memory", {})
    if mem.get("limit") == -1 and "swap" not in mem:
        mem["swap"] = -1                # unlimited memory: unlimited swap too (runc)
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (recorded or {}).items()}
    for section, values in apply.items():
        merged.setdefault(section, {}).update(values)
    for section, keys in _PAIRS.items():
        if any(k in apply.get(section, {}) for k in keys):
            for k in keys + (("checkBeforeUpdate",) if section == "memory" else ()):
                if merged[section].get(k) is not None:
                    apply[section][k] = merged[section][k]
    return merged, apply
