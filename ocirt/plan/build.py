"""The whole plan of a `create` and of an `exec`, assembled from the
per-area modules in the order the kernel and the spec need."""
from ocirt.errors import OcirtError
from ocirt.plan import devices, hooks, mounts, namespaces, process, sysctl

# ctx keys (filled by the runtime; plain data so tests can build plans):
#   rootfs, bundle        absolute paths
#   cgroup_files          cgroup.procs files the helper joins before clone
#   cgroup_v2_dir         cgroup2 dir for CLONE_INTO_CGROUP ("" if none)
#   cgroup_dirs           [(name, host dir)] for a v1 "cgroup" mount
#   cgroup2_host          True on a pure cgroup v2 host
#   fifo                  exec fifo path (create); None for run-and-wait
#   console_fd            fd of the --console-socket connection, or None
#   preserve_fds          number of fds after stdio to pass on
#   no_pivot, wait        bools
#   seccomp               compiled program (ocirt.plan.seccomp.Compiled) or None


def create_plan(spec, ctx):
    linux = spec.get("linux") or {}
    proc = spec.get("process") or {}
    ns = namespaces.namespaces(linux)
    hooks_ = hooks.check_hooks(spec)
    userns = "user" in ns
    steps = process.affinity(proc, "initial")
    steps += [("cgroup", "linux.cgroupsPath", f) for f in ctx.get("cgroup_files", ())]
    pre, flags = namespaces.helper_steps(linux, ns, ctx.get("wait"))
    steps += pre
    steps.append(("clone", "linux.namespaces", flags, ctx.get("cgroup_v2_dir") or "", int(bool(ctx.get("wait")))))
    steps += namespaces.id_map_steps(linux, ns)
    if "mount" not in ns:
        raise OcirtError("a mount namespace is required", "linux.namespaces")
    steps += _rootfs(spec, linux, ctx, userns)
    if any(hooks_.get(k) for k in hooks.KINDS):
        steps.append(("hooks", "hooks"))
    steps += hooks.hook_steps(hooks_, "createContainer")
    steps.append(("chroot-move" if ctx.get("no_pivot") else "pivot", "root.path", ctx["rootfs"]))
    steps += sysctl.sysctl_steps(linux, ns)
    if spec.get("hostname"):
        steps.append(_uts_step(ns, "hostname", spec["hostname"]))
    if spec.get("domainname"):
        steps.append(_uts_step(ns, "domainname", spec["domainname"]))
    steps += mounts.finish_steps(spec, linux)
    after_ready = [("fifo-wait", "process")] if ctx.get("fifo") else []
    after_ready += hooks.hook_steps(hooks_, "startContainer")
    steps += process_steps(proc, ctx, personality=process.personality_steps(linux),
                           after_ready=after_ready)
    return steps


def _rootfs(spec, linux, ctx, userns):
    steps = mounts.rootfs_steps(spec, ctx)
    if ctx.get("fifo"):
        steps.append(("fifo-open", "process", ctx["fifo"]))
    mctx = dict(ctx, userns=userns)
    dev_bind = False
    for i, m in enumerate(spec.get("mounts") or []):
        steps += mounts.mount_step(m, i, mctx)
        if mounts.clean_dest(m.get("destination", ""), "") == "/dev":
            dev_bind = "bind" in (m.get("options") or []) or "rbind" in (m.get("options") or []) \
                or m.get("type") == "bind"
    devs = linux.get("devices") or []
    if not dev_bind:
        steps += devices.device_steps(linux, userns)
        steps += mounts.dev_steps(spec, dict(mctx, dev_is_tmpfs=True), devs)
    return steps


def _uts_step(ns, key, value):
    if "uts" not in ns:
        raise OcirtError("needs a uts namespace of the container", key)
    return (key, key, value)


def process_steps(proc, ctx, where="process", personality=(), after_ready=()):
    """What every container process gets, init or exec'd: attributes set as
    root, then the credentials, then ready/exec. Seccomp goes before the
    credentials when noNewPrivileges is off (loading it then needs
    CAP_SYS_ADMIN, as in runc), else last."""
    steps = list(personality)
    steps += process.tuning_steps(proc, where)
    steps += process.rlimit_steps(proc, where)
    steps += process.lsm_steps(proc, where)
    if proc.get("terminal") and ctx.get("console_fd") is not None:
        steps.append(process.console_step(proc, ctx["console_fd"], where))
    elif proc.get("terminal"):
        raise OcirtError("a terminal needs --console-socket (or `run` in the foreground)",
                         f"{where}.terminal")
    steps.append(process.cwd_step(proc, where))
    nnp = bool(proc.get("noNewPrivileges"))
    seccomp = ctx.get("seccomp")
    if seccomp is not None and not nnp:
        steps.append(_seccomp_step(seccomp))
    steps += process.cred_steps(proc, where)
    lookup, exec_ = process.exec_steps(proc, where)
    steps += lookup
    if nnp:
        steps.append(("nnp", f"{where}.noNewPrivileges"))
    steps.append(("ready", where))
    steps += after_ready
    steps += process.affinity(proc, "final", where)
    if seccomp is not None and nnp:
        steps.append(_seccomp_step(seccomp))
    steps.append(("close-fds", where, 3 + int(ctx.get("preserve_fds") or 0)))
    steps += exec_
    return steps


def _seccomp_step(c):
    return ("seccomp", "linux.seccomp", c.flags, c.bpf)


def exec_plan(ns_paths, proc, ctx):
    """Join the container (ns_paths: [(type, /proc/PID/ns/..)]) and exec."""
    steps = process.affinity(proc, "initial")
    steps += [("cgroup", "linux.cgroupsPath", f) for f in ctx.get("cgroup_files", ())]
    order = {t: i for i, t in enumerate(namespaces.JOIN_ORDER)}
    for t, path in sorted(ns_paths, key=lambda x: order[x[0]]):
        steps.append(("setns", "linux.namespaces", path, t))
    steps.append(("clone", "process", 0, ctx.get("cgroup_v2_dir") or "", int(bool(ctx.get("wait")))))
    steps += process_steps(proc, ctx)
    return steps
