"""The whole plan of a `create` and of an `exec`, assembled from the
per-area modules in the order the kernel and the spec need."""
import posix

from ocirt import SPEC_VERSION
from ocirt.errors import OcirtError
from ocirt.plan import argv_fields, keyring, namespaces, process

# What the helper does after the clone (ocirt/_native/clone.c, op_clone): leave once the
# init waits for `start`; report the execve, wait and report the exit
# status (run, exec); report the execve and leave (exec -d).
CLONE_CREATE, CLONE_WAIT, CLONE_DETACH = 0, 1, 2

# create_plan's other modules are imported where used: exec (the exec-probe
# hot path) never loads them, nor create those of fields its config lacks
# (hooks, sysctl, host, devices).

# ctx: an ocirt.plan.context.Context (the host facts are ctx.host).


# The fields plan/host.py checks: it is loaded only for a config with one.
HOST_FIELDS = ("intelRdt", "netDevices", "mountLabel")


def create_plan(spec, ctx):
    from ocirt.plan import mounts
    linux = spec.get("linux") or {}
    proc = spec.get("process") or {}
    ns = namespaces.namespaces(linux)
    hooks_ = _checked_hooks(spec)
    if any(linux.get(k) is not None for k in HOST_FIELDS):
        from ocirt.plan import host
        host.check(linux, ns, ctx.host)
    userns = "user" in ns
    id_maps = namespaces.id_map_steps(linux, ns, ctx.host)
    mount_ns = "mount" in ns
    if mount_ns:
        # a sysfs is the network namespace's: a new user namespace may mount one only in its own
        own_netns = "network" in ns and not ns["network"]
        rootfs = _rootfs(spec, linux, ctx, userns, tuple(s[2] for s in id_maps),
                         sysfs_bind=bool(id_maps) and not own_netns)
    else:
        rootfs = _shared_mount_ns(spec, ctx)
    # The idmapped mounts' user namespaces and the exec fifo come first,
    # while the helper is still in the host's user and mount namespaces.
    steps = [s for s in rootfs if s[0] == "idmap-tree"]
    if ctx.fifo:
        steps.append(("fifo-open", "process", ctx.fifo))
    steps += process.affinity(proc, "initial")
    steps += process.oom_steps(proc)
    steps += _cgroup_steps(ctx)
    pre, flags = namespaces.helper_steps(linux, ns)
    steps += pre
    steps += _listener_steps(ctx)
    mode = CLONE_WAIT if ctx.wait else CLONE_CREATE
    steps.append(("clone", "linux.namespaces", flags, mode))
    steps += id_maps
    steps += keyring.init_steps(ctx, userns)
    steps += [s for s in rootfs if s[0] != "idmap-tree"]
    if hooks_ or linux.get("netDevices"):
        # the runtime moves the devices, then runs its hooks (ocirt/create.py)
        steps.append(("hooks", "hooks"))
    proc_env = process.env_of(proc)
    steps += _hook_steps(hooks_, "createContainer", proc_env)
    if mount_ns:
        steps.append(("chroot-move" if ctx.no_pivot else "pivot", "root.path", ctx.rootfs))
    if linux.get("sysctl"):
        from ocirt.plan import sysctl
        steps += sysctl.sysctl_steps(linux, ns)
    if spec.get("hostname"):
        steps.append(_uts_step(ns, "hostname", spec["hostname"]))
    if spec.get("domainname"):
        steps.append(_uts_step(ns, "domainname", spec["domainname"]))
    if mount_ns:
        steps += mounts.finish_steps(spec, linux)
    # start returns once the program runs (execve closes the fifo), or
    # reads why not from the fifo; with a seccomp agent, which may be what
    # calls start, once the startContainer hooks are to be run.
    after_ready = _hook_steps(hooks_, "startContainer", proc_env)
    if ctx.fifo:
        after_ready = [("fifo-wait", "process"), *after_ready]
        if _notify(ctx):
            after_ready.append(("fifo-go", "process"))
    init_steps = process.personality_steps(linux) + process.mempolicy_steps(linux)
    steps += process_steps(proc, ctx, init_steps=init_steps, after_ready=after_ready,
                           dev_console=mount_ns and not _dev_is_bind(spec), report_exec=mode != CLONE_CREATE,
                           annotations=spec.get("annotations"))
    return steps


def _checked_hooks(spec):
    """The config's hooks, checked, if it has any of a known kind, else {}:
    plan/hooks.py is loaded only then."""
    if not spec.get("hooks"):
        return {}
    from ocirt.plan import hooks
    hooks_ = hooks.check_hooks(spec)
    return hooks_ if any(hooks_.get(k) for k in hooks.KINDS) else {}


def _hook_steps(hooks_, kind, proc_env):
    if not hooks_:
        return []
    from ocirt.plan import hooks
    return hooks.hook_steps(hooks_, kind, proc_env)


def _shared_mount_ns(spec, ctx):
    """No mount namespace in linux.namespaces: the container inherits the
    runtime's, and its root (as with runc, nothing is mounted and there is
    no pivot_root). Refuse what would then change the host's mounts."""
    linux = spec.get("linux") or {}
    for key in ("maskedPaths", "readonlyPaths", "rootfsPropagation"):
        if linux.get(key):
            raise OcirtError("needs a mount namespace of the container (linux.namespaces): "
                             "without one it would apply to the host's mounts", f"linux.{key}")
    if (spec.get("root") or {}).get("readonly"):
        raise OcirtError("needs a mount namespace of the container (linux.namespaces): "
                         "without one the host's / would become read-only", "root.readonly")
    if ctx.no_pivot:
        raise OcirtError("--no-pivot needs a mount namespace of the container", "linux.namespaces")
    return []


def ignored_without_mount_ns(spec):
    """(field, why) of what a container sharing the runtime's mount
    namespace does not get; the runtime warns of each."""
    linux = spec.get("linux") or {}
    if any(ns.get("type") == "mount" for ns in linux.get("namespaces") or []):
        return []
    why = "not used: the container shares the runtime's mount namespace and root"
    fields = [("root.path", why)]
    if spec.get("mounts"):
        fields.append(("mounts", "not mounted: the container shares the runtime's mount namespace"))
    if linux.get("devices"):
        fields.append(("linux.devices", "not created: the container shares the runtime's /dev "
                                        "(the device cgroup still applies)"))
    return fields


def _rootfs(spec, linux, ctx, userns, id_maps, sysfs_bind):
    """id_maps: (uid_map, gid_map) text of the container's user namespace, or ();
    sysfs_bind: bind the host's /sys where a sysfs is asked for."""
    from ocirt.plan import mounts
    steps = mounts.rootfs_steps(spec, ctx)
    for i, m in enumerate(spec.get("mounts") or []):
        steps += mounts.mount_step(m, i, ctx, id_maps, sysfs_bind)
    if not _dev_is_bind(spec):
        # no mknod in a user namespace, the container's or the runtime's own (rootless podman's)
        nodes_bound = userns or ctx.host.in_userns
        if linux.get("devices"):
            from ocirt.plan import devices
            steps += devices.device_steps(linux, nodes_bound)
        steps += mounts.dev_steps(spec, linux.get("devices") or [], nodes_bound, ctx.host)
    return steps


def _dev_is_bind(spec):
    """Is the container's /dev a bind of a host directory (left as it is)?"""
    from ocirt.plan import mounts
    dev = mounts.dev_mount(spec)
    return bool(dev and dev[1])


def _uts_step(ns, key, value):
    if "uts" not in ns:
        raise OcirtError("needs a uts namespace of the container", key)
    return (key, key, value)


def process_steps(proc, ctx, where="process", init_steps=(), after_ready=(), dev_console=False,
                  report_exec=True, annotations=None):
    """What every container process gets, init or exec'd: attributes set as
    root, then the credentials, then ready/exec. The seccomp filter is
    loaded last, right before execve, so that a strict profile needs no
    syscall of the runtime's (without noNewPrivileges the caps step keeps
    CAP_SYS_ADMIN for it, which execve drops); with a listener it is loaded
    before `ready`, so that the agent gets its fd during create, as with
    runc. report_exec: the helper waits for the execve (run, exec);
    annotations: the config's, for the state sent to a seccomp agent."""
    steps = list(init_steps)
    steps += process.tuning_steps(proc, where)
    steps += process.rlimit_steps(proc, where)
    steps += process.lsm_steps(proc, ctx.host, where)
    if proc.get("terminal") and ctx.console_fd is not None:
        steps.append(process.console_step(proc, ctx.console_fd, where, dev_console))
    elif proc.get("terminal"):
        raise OcirtError("a terminal needs --console-socket (or `run` in the foreground)",
                         f"{where}.terminal")
    steps.append(process.cwd_step(proc, where, ctx.create_cwd))
    nnp = bool(proc.get("noNewPrivileges"))
    seccomp = ctx.seccomp
    notify = _notify(ctx)
    steps += process.home_steps(proc, where)
    steps += process.cred_steps(proc, ctx.host.last_cap, where, keep_admin=seccomp is not None and not nnp,
                                grantable=ctx.host.bounding)
    lookup, exec_ = process.exec_steps(proc, where)
    steps += lookup
    if nnp:
        steps.append(("nnp", f"{where}.noNewPrivileges"))
    # close-on-exec only: the runtime's own fds work until execve
    steps.append(("close-fds", where, 3 + ctx.preserve_fds))
    if notify:
        steps.append(_seccomp_step(seccomp, ctx, annotations))
    steps.append(("ready", where, int(report_exec)))
    steps += after_ready
    steps += process.affinity(proc, "final", where)
    if seccomp is not None and not notify:
        steps.append(_seccomp_step(seccomp, ctx, annotations))
    steps += exec_
    return steps


def _notify(ctx):
    return ctx.seccomp is not None and bool(ctx.seccomp.listener_path)


def _seccomp_step(c, ctx, annotations):
    """Load the filter; with a listener, send it the fd and the state,
    whose pid (twice in it) only the helper knows: the payload travels in
    parts that ocirt-init joins with that pid."""
    if not c.listener_path:
        return ("seccomp", "linux.seccomp", c.flags, c.bpf, 0)
    from ocirt.plan.seccomp import notify_state
    token = int.from_bytes(posix.urandom(8), "little") | 1 << 63  # cannot occur by chance
    state = {"ociVersion": SPEC_VERSION, "id": ctx.id, "status": "creating", "pid": token,
             "bundle": ctx.bundle}
    if annotations:
        state["annotations"] = annotations
    parts = notify_state(state, c).decode().split(str(token))
    return ("seccomp", "linux.seccomp", c.flags, c.bpf, *argv_fields(parts))


def _listener_steps(ctx):
    c = ctx.seccomp
    if c is None or not c.listener_path:
        return []
    return [("seccomp-listener", "linux.seccomp.listenerPath", c.listener_path)]


def _cgroup_steps(ctx):
    # leave-cgroup: opened now, written by a waiting helper after the clone
    # hold: the helper waits for its cgroup to be made around it (systemd)
    steps = [("hold", "linux.cgroupsPath")] if ctx.cgroup_hold else []
    steps += [("leave-cgroup", "linux.cgroupsPath", f) for f in ctx.cgroup_leave]
    steps += [("cgroup", "linux.cgroupsPath", f) for f in ctx.cgroup_files]
    steps += [("cgroup", "linux.intelRdt", f) for f in ctx.rdt_tasks]
    if ctx.cgroup_v2_dir:
        steps.append(("cgroup2", "linux.cgroupsPath", ctx.cgroup_v2_dir))
    return steps


def exec_plan(ns_paths, proc, ctx):
    """Join the container (ns_paths: [(type, /proc/PID/ns/..)]) and exec."""
    steps = process.affinity(proc, "initial")
    steps += process.oom_steps(proc)
    steps += _cgroup_steps(ctx)
    steps += _listener_steps(ctx)  # listenerPath is a host path: connect before setns(mount)
    order = {t: i for i, t in enumerate(namespaces.JOIN_ORDER)}
    for t, path in sorted(ns_paths, key=lambda x: order[x[0]]):
        steps.append(("setns", "linux.namespaces", path, t))
    mode = CLONE_WAIT if ctx.wait else CLONE_DETACH
    steps.append(("clone", "process", 0, mode))
    steps += keyring.exec_steps(ctx)
    steps += process_steps(proc, ctx)
    return steps
