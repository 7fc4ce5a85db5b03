"""linux.resources.devices -> systemd's DevicePolicy and DeviceAllow, as
runc 1.1 generates them (libcontainer/cgroups/systemd generateDeviceProperties).
systemd rewrites a scope's device filter on every daemon-reload: unless it
holds the same rules, a reload would open (or close) the container's devices.
Pure: the rules come from devices.rules(), /proc/devices as text."""

WILD = -1   # a wildcard number; sorts first, as in runc's emulator


class Unexpressible(Exception):
    """A deny that would punch a hole in a wildcard allow (or the reverse):
    the devices cgroup cannot hold it, and neither can DeviceAllow."""


def device_properties(rules, proc_devices):
    """-> (properties, warnings). The rules are emulated as the v1 devices
    cgroup applies them; a result that is not an allow list cannot be given
    to systemd: then a temporary deny-all (runc's fallback), our own filter,
    written after, holding the real rules."""
    default_allow, table = emulate(rules)
    if default_allow:
        if not table:
            return [("DevicePolicy", "s", "auto"), ("DeviceAllow", "a(ss)", [])], []
        return _strict([]), ["systemd cannot hold deny rules after an allow-all: "
                             "its device policy is deny-all until our own filter is written"]
    groups = device_groups(proc_devices)
    entries, warnings = [], []
    for (typ, major, minor), perms in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        path, why = _entry_path(typ, major, minor, groups)
        if path is None:
            warnings.append(f"systemd cannot hold the device rule {_rule_text(typ, major, minor, perms)} "
                            f"({why}): only our own filter has it")
            continue
        entries.append((path, perms))
    return _strict(entries), warnings


def _strict(entries):
    return [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", entries)]


def _entry_path(typ, major, minor, groups):
    """The DeviceAllow path of one allow rule, or (None, why not)."""
    prefix = "block-" if typ == "b" else "char-"
    if major == WILD:
        if minor != WILD:
            return None, "a wildcard major with a given minor"
        return prefix + "*", None
    if minor == WILD:   # systemd before v240 wants the group name of /proc/devices
        group = groups.get((typ, major))
        if group is None:
            return None, f"major {major} is not in /proc/devices"
        return prefix + group, None
    return f"/dev/{'block' if typ == 'b' else 'char'}/{major}:{minor}", None


def _rule_text(typ, major, minor, perms):
    num = lambda n: "*" if n == WILD else str(n)
    return f"{typ} {num(major)}:{num(minor)} {perms}"


def emulate(rules):
    """The devices cgroup's state after the rules: (allow by default?,
    {(type, major, minor): perms}), the table holding the exceptions."""
    default_allow, table = False, {}
    for r in rules:
        if r.type == "a":    # "a" resets the cgroup, whatever its numbers and access
            default_allow, table = r.allow, {}
            continue
        key = (r.type, WILD if r.major is None else r.major, WILD if r.minor is None else r.minor)
        if r.allow != default_allow:
            table[key] = "".join(c for c in "rwm" if c in table.get(key, "") + r.access)
        else:
            _remove(table, key, r.access)
    return default_allow, table


def _remove(table, key, access):
    """Take access away from the exception key. A wildcard exception that
    covers key keeps it: the kernel ignores that silently; we refuse it."""
    typ, major, minor = key
    for wider in ((typ, WILD, minor), (typ, major, WILD), (typ, WILD, WILD)):
        if wider != key and set(table.get(wider, "")) & set(access):
            raise Unexpressible(f"{_rule_text(*key, access)} cannot be cut out of "
                                f"{_rule_text(*wider, table[wider])}")
    left = "".join(c for c in table.get(key, "") if c not in access)
    if left:
        table[key] = left
    else:
        table.pop(key, None)


def device_groups(text):
    """/proc/devices -> {(type, major): group name}; the first name of a major wins."""
    groups, typ = {}, None
    for line in (text or "").splitlines():
        line = line.strip()
        if line == "Character devices:":
            typ = "c"
        elif line == "Block devices:":
            typ = "b"
        elif line and typ:
            num, _, name = line.partition(" ")
            if num.isdigit():
                groups.setdefault((typ, int(num)), name.strip())
    return groups
