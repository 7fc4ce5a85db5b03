"""process: user, capabilities, rlimits, noNewPrivileges, oomScoreAdj,
scheduler, ioPriority, execCPUAffinity, personality, LSM labels, terminal,
cwd, env, args."""
from ocirt.errors import OcirtError, jpath
from ocirt.plan import argv_fields

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


def cap_masks(caps, last=len(CAPABILITIES) - 1, where="process.capabilities"):
    """{set: bitmask}; unknown names are errors, names the kernel lacks
    (above `last`, its highest capability number) are dropped."""
    masks = {}
    for s in CAP_SETS:
        mask = 0
        for i, name in enumerate((caps or {}).get(s) or []):
            try:
                bit = CAPABILITIES.index(name)
            except ValueError:
                raise OcirtError(f'unknown capability "{name}"', jpath(jpath(where, s), i)) from None
            if bit <= last:
                mask |= 1 << bit
        masks[s] = mask
    # The kernel refuses an ambient capability that is not both permitted
    # and inheritable; runc skips those rather than fail (its own `spec`
    # lists ambient capabilities without inheritable ones).
    masks["ambient"] &= masks["permitted"] & masks["inheritable"]
    return masks


def ungranted(caps, grantable, where="process.capabilities"):
    """A warning (an OcirtError, at its first listing) for each capability
    outside `grantable`, the runtime's own bounding set (which also lacks
    what the kernel does not know): the helper leaves them out, and the
    spec wants a warning rather than a failure. cap_masks checked the names."""
    seen, out = set(), []
    for s in CAP_SETS:
        for i, name in enumerate((caps or {}).get(s) or []):
            if name not in seen and not grantable >> CAPABILITIES.index(name) & 1:
                seen.add(name)
                out.append(OcirtError(f"{name}: not in the runtime's bounding set: not granted",
                                      jpath(jpath(where, s), i)))
    return out


def _id(value, where):
    """A uid or gid to set: (uid_t)-1 would mean "unchanged" to the kernel,
    which keeps the runtime's root."""
    if not 0 <= value < 0xFFFFFFFF:
        raise OcirtError(f"{value}: ids go from 0 to 4294967294", where)
    return value


def cred_steps(proc, last_cap=len(CAPABILITIES) - 1, where="process", keep_admin=False, grantable=-1):
    """Bounding set, then uid/gids (keeping caps), then the other sets
    (keep_admin: with CAP_SYS_ADMIN effective until execve, for seccomp);
    last_cap: the kernel's highest capability number; grantable: the
    runtime's bounding set, outside which nothing is granted (ungranted()
    warns of it): a new user namespace starts with every capability, its
    bounding set too, so the kernel would not leave them out there."""
    user = proc.get("user") or {}
    w = jpath(where, "user")
    caps = {s: m & grantable for s, m in
            cap_masks(proc.get("capabilities"), last_cap, jpath(where, "capabilities")).items()}
    umask = user.get("umask")
    groups = [_id(int(g), jpath(w, "additionalGids")) for g in user.get("additionalGids") or []]
    return [
        ("bounding", jpath(where, "capabilities.bounding"), caps["bounding"]),
        ("user", w, _id(user.get("uid", 0), jpath(w, "uid")), _id(user.get("gid", 0), jpath(w, "gid")),
         umask if umask is not None else 0o022, *argv_fields(groups)),
        ("caps", jpath(where, "capabilities"), caps["effective"], caps["permitted"],
         caps["inheritable"], caps["ambient"], int(keep_admin)),
    ]


def rlimit_steps(proc, where="process"):
    steps = []
    seen = set()
    for i, rl in enumerate(proc.get("rlimits") or []):
        w = jpath(jpath(where, "rlimits"), i)
        t = rl.get("type")
        if t not in RLIMITS:
            raise OcirtError(f'unknown rlimit "{t}"', jpath(w, "type"))
        if t in seen:
            raise OcirtError(f'duplicate rlimit "{t}"', jpath(w, "type"))
        seen.add(t)
        if rl["soft"] > rl["hard"]:
            raise OcirtError("soft limit is above the hard limit", jpath(w, "soft"))
        steps.append(("rlimit", w, RLIMITS[t], rl["soft"], rl["hard"], t))
    return steps


def oom_steps(proc, where="process"):
    """oomScoreAdj, set by the helper on itself before the clone (the child
    inherits it), as runc does: through the host's /proc, which nothing in
    the container can cover, and as the host's root, also for a user
    namespace (whose init, not dumpable, could not write its own)."""
    if proc.get("oomScoreAdj") is None:
        return []
    return [("oom", jpath(where, "oomScoreAdj"), proc["oomScoreAdj"])]


def tuning_steps(proc, where="process"):
    """scheduler, ioPriority: process attributes set as root."""
    steps = []
    sch = proc.get("scheduler")
    if sch:
        w = jpath(where, "scheduler")
        pol = sch.get("policy")
        if pol not in SCHED_POLICIES:
            raise OcirtError(f'unknown policy "{pol}"', jpath(w, "policy"))
        flags = 0
        for i, f in enumerate(sch.get("flags") or []):
            if f not in SCHED_FLAGS:
                raise OcirtError(f'unknown flag "{f}"', jpath(jpath(w, "flags"), i))
            flags |= SCHED_FLAGS[f]
        steps.append(("sched", w, SCHED_POLICIES[pol], sch.get("nice", 0), sch.get("priority", 0),
                      flags, sch.get("runtime", 0), sch.get("deadline", 0), sch.get("period", 0)))
    io = proc.get("ioPriority")
    if io:
        w = jpath(where, "ioPriority")
        cls = io.get("class")
        if cls not in IOPRIO_CLASSES:
            raise OcirtError(f'unknown class "{cls}"', jpath(w, "class"))
        prio = io.get("priority", 0)
        if not 0 <= prio <= 7:
            raise OcirtError("must be between 0 and 7", jpath(w, "priority"))
        steps.append(("ioprio", w, IOPRIO_CLASSES[cls] << 13 | prio))
    return steps


MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}
MAX_NODES = 1024  # the nodemask ocirt-init passes to set_mempolicy


def mempolicy_steps(linux):
    """linux.memoryPolicy: set_mempolicy(2) for the container process."""
    mp = linux.get("memoryPolicy")
    if not mp:
        return []
    w = "linux.memoryPolicy"
    mode = mp.get("mode")
    if mode not in MPOL_MODES:
        raise OcirtError(f'unknown mode "{mode}"', f"{w}.mode")
    flags = 0
    for i, f in enumerate(mp.get("flags") or []):
        if f not in MPOL_FLAGS:
            raise OcirtError(f'unknown flag "{f}"', jpath(f"{w}.flags", i))
        flags |= MPOL_FLAGS[f]
    nodes = mp.get("nodes") or ""
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL"):
        if nodes or flags:
            raise OcirtError(f"{mode} takes no nodes and no flags", w)
    elif not nodes:
        raise OcirtError(f"{mode} needs nodes", f"{w}.nodes")
    if nodes:
        parse_list(nodes, MAX_NODES, f"{w}.nodes")
    return [("mempolicy", w, MPOL_MODES[mode] | flags, nodes)]


def parse_list(text, limit, where):
    """A kernel list ("0-3,7") -> sorted ints below limit; errors name where."""
    out = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise OcirtError(f'"{text}" is not a list like 0-3,7', where) from None
        if not 0 <= a <= b < limit:
            raise OcirtError(f'"{part}" is not a range of numbers below {limit}', where)
        out.update(range(a, b + 1))
    return sorted(out)


def personality_steps(linux):
    p = linux.get("personality")
    if not p:
        return []
    dom = p.get("domain")
    if dom not in PERSONALITY_DOMAINS:
        raise OcirtError(f'unknown domain "{dom}"', "linux.personality.domain")
    if p.get("flags"):
        raise OcirtError("no personality flags are supported", "linux.personality.flags")
    return [("personality", "linux.personality", PERSONALITY_DOMAINS[dom])]


def lsm_steps(proc, host, where="process"):
    """AppArmor profile / SELinux label for the exec, where the LSM is on."""
    steps = []
    prof = proc.get("apparmorProfile")
    if prof:
        if not host.apparmor:
            raise OcirtError("apparmor is not enabled on this host", jpath(where, "apparmorProfile"))
        steps.append(("lsm", jpath(where, "apparmorProfile"), "exec", f"exec {prof}"))
    label = proc.get("selinuxLabel")
    if label:
        if not host.selinux:
            raise OcirtError("selinux is not enabled on this host", jpath(where, "selinuxLabel"))
        steps.append(("lsm", jpath(where, "selinuxLabel"), "exec", label))
    return steps


def affinity(proc, which, where="process"):
    w = jpath(jpath(where, "execCPUAffinity"), which)
    cpus = (proc.get("execCPUAffinity") or {}).get(which)
    if not cpus:
        return []
    parse_list(cpus, 1024, w)  # CPU_SETSIZE of ocirt-init
    return [("affinity", w, cpus)]


def env_of(proc):
    return list(proc.get("env") or [])


def home_steps(proc, where="process"):
    """Without HOME in process.env, the user's home from the container's
    /etc/passwd (else "/"), as runc gives it (read as root, before the
    credentials change)."""
    if any(e.startswith("HOME=") for e in env_of(proc)):
        return []
    uid = _id((proc.get("user") or {}).get("uid", 0), jpath(where, "user.uid"))
    return [("home", jpath(where, "env"), uid)]


def path_of(env):
    for e in reversed(env):
        if e.startswith("PATH="):
            return e[5:]
    return ""


def exec_steps(proc, where="process"):
    """Resolve the executable (before `ready`, so create reports a missing
    one, as runc does) and exec."""
    args = proc.get("args") or []
    if not args:
        raise OcirtError("must name the program to run", jpath(where, "args"))
    env = env_of(proc)
    return [("lookup", jpath(where, "args[0]"), args[0], path_of(env))], \
           [("exec", jpath(where, "args"), *argv_fields(args), *argv_fields(env))]


def cwd_step(proc, where="process", create=True):
    """chdir; a missing cwd is created for the container's init (as runc
    does), not for an exec'd process."""
    cwd = proc.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise OcirtError(f'"{cwd}" must be an absolute path', jpath(where, "cwd"))
    return ("cwd", jpath(where, "cwd"), cwd, "create" if create else "")


def console_step(proc, sock_fd, where="process", dev_console=False):
    """Make a pty owned by the process's user (as runc), send its master to
    sock_fd, use it as stdio (and bind it on /dev/console for the
    container's init)."""
    size = proc.get("consoleSize") or {}
    uid = _id((proc.get("user") or {}).get("uid", 0), jpath(where, "user.uid"))
    return ("console", jpath(where, "terminal"), sock_fd, size.get("height", 0), size.get("width", 0),
            uid, int(dev_console))
