"""The plan's step vocabulary, declared once: each step's name, the process
that runs it and its fields. tools/gen_steps.py makes the helper's op table
and field indexes (ocirt/_native/steps_gen.h) from it.

A step on the wire is (name, where, *fields): `where` is the config.json
path it comes from. A list field (argv_fields) is its length, then its
items; lists come after the fixed fields. Only the tests and the generator
import this module: the hot path encodes plans without it."""
from dataclasses import dataclass

# Who runs a step: the helper (before the clone, or after it for the child
# it made: the id maps), the child (the container's init or exec'd
# process), or whichever of the two reaches it (before or after the clone).
HELPER, CHILD, ANY = "helper", "child", "any"


@dataclass(frozen=True)
class Step:
    name: str
    stage: str
    fields: tuple = ()  # after name and where
    lists: tuple = ()   # after the fields, each its length then its items
    log: str = ""       # the field --debug shows (default: the first)

    @property
    def argc(self):
        """The fields a record has before its lists, name and where included."""
        return 2 + len(self.fields)

    @property
    def logged(self):
        """Index of the field --debug shows."""
        return 2 + self.fields.index(self.log) if self.log else 2


def _s(name, stage, fields="", lists="", log=""):
    return Step(name, stage, tuple(fields.split()), tuple(lists.split()), log)


STEPS = {s.name: s for s in (
    # helper, before the clone
    _s("debug", HELPER, "fd json"),
    _s("setns", HELPER, "path type"),
    _s("timens", HELPER, "offsets"),
    _s("seccomp-listener", HELPER, "path"),
    _s("cgroup", HELPER, "procs"),
    _s("cgroup2", HELPER, "dir"),
    _s("hold", HELPER),
    _s("oom", HELPER, "score"),
    _s("idmap-tree", HELPER, "src uidmap gidmap rbind ridmap"),
    _s("fifo-open", HELPER, "path"),
    _s("leave-cgroup", HELPER, "procs"),
    _s("clone", HELPER, "flags mode"),
    # helper, after the clone: the child's id maps (tool: newuidmap/newgidmap
    # to run, or "" to write the map itself)
    _s("uidmap", HELPER, "map tool"),
    _s("gidmap", HELPER, "map tool"),
    _s("affinity", ANY, "cpus"),
    # child: the rootfs
    _s("mount", CHILD, "src dst fstype flags data kind remount propagation attr_set attr_clr extra",
       log="dst"),
    _s("mknod", CHILD, "path type major minor mode uid gid policy"),
    _s("binddev", CHILD, "path"),
    _s("symlink", CHILD, "target link"),
    _s("mkfile", CHILD, "path"),
    _s("rootprop", CHILD, "flags"),
    _s("parent-private", CHILD, "rootfs"),
    _s("bindroot", CHILD, "rootfs"),
    _s("pivot", CHILD, "rootfs"),
    _s("chroot-move", CHILD, "rootfs"),
    _s("root-ro", CHILD),
    _s("readonly", CHILD, "path"),
    _s("remount-ro", CHILD, "path"),
    _s("mask", CHILD, "path"),
    # child: kernel settings and process attributes
    _s("sysctl", CHILD, "key value"),
    _s("hostname", CHILD, "name"),
    _s("domainname", CHILD, "name"),
    _s("rlimit", CHILD, "resource soft hard name"),
    _s("personality", CHILD, "domain"),
    _s("sched", CHILD, "policy nice priority flags runtime_ns deadline_ns period_ns"),
    _s("ioprio", CHILD, "prio"),
    _s("mempolicy", CHILD, "mode nodes"),
    _s("lsm", CHILD, "attr value"),
    _s("keyring", CHILD, "name perm"),
    _s("console", CHILD, "sock rows cols uid dev_console"),
    # child: credentials, then ready and exec
    _s("bounding", CHILD, "keep"),
    _s("user", CHILD, "uid gid umask", lists="groups"),
    _s("caps", CHILD, "effective permitted inheritable ambient keep_admin"),
    _s("nnp", CHILD),
    _s("cwd", CHILD, "path create"),
    _s("home", CHILD, "uid"),
    _s("lookup", CHILD, "name path"),
    _s("fifo-wait", CHILD),
    _s("fifo-go", CHILD),
    _s("ready", CHILD, "keep"),
    _s("hooks", CHILD),
    _s("hook", CHILD, "timeout status flags path", lists="args env"),
    _s("seccomp", CHILD, "flags bpf", lists="parts"),
    _s("close-fds", CHILD, "first"),
    _s("exec", CHILD, lists="args env"),
)}


def check(step):
    """Raise ValueError unless STEP is a declared step with its fields."""
    decl = STEPS.get(step[0])
    if decl is None:
        raise ValueError(f"unknown plan step {step[0]!r}")
    n = decl.argc
    for name in decl.lists:
        if len(step) <= n or not isinstance(step[n], int) or step[n] < 0:
            raise ValueError(f"step {step[0]}: no length of its list {name} at field {n}: {step!r}")
        n += 1 + step[n]
    if len(step) != n:
        raise ValueError(f"step {step[0]}: {len(step)} fields, {n} declared: {step!r}")
