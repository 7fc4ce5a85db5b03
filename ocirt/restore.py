"""`restore`: a container made from a bundle as create makes it (state
directory, cgroup), but whose processes CRIU restores from a checkpoint's
images instead of the helper starting them. As runc: the rootfs is bound
to a mount point of its own for CRIU's root, the bind mounts and masked
files the dump named external are bound again, the network and pid
namespaces given by path are handed in, the container's stdio pipes are
the caller's, and the processes go into the new container's cgroup. A
container with a terminal gets a new pty from CRIU (the dump's was an
orphan: its master was the console socket peer's), whose master goes to
--console-socket. prestart and createRuntime run when CRIU has made the
namespaces (its setup-namespaces notification), as runc runs them."""
import os

from ocirt import SPEC_VERSION
from ocirt.errors import OcirtError
from ocirt.state import Container, check_id, now_rfc3339, proc_start_time

MS_BIND, MS_REC, MNT_DETACH = 0x1000, 0x4000, 2
DESCRIPTORS = "descriptors.json"   # runc's name: podman and containerd read it


class Options:
    """runc's restore flags (dashes as underscores); the CRIU ones as
    checkpoint's."""

    def __init__(self, bundle=".", detach=False, pid_file="", console_socket="", no_subreaper=False,
                 no_pivot=False, image_path="", work_path="", tcp_established=False, ext_unix_sk=False,
                 shell_job=False, file_locks=False, manage_cgroups_mode="", empty_ns=(),
                 auto_dedup=False, lazy_pages=False, lsm_profile="", lsm_mount_context=""):
        from ocirt import checkpoint
        self.bundle, self.detach, self.pid_file = bundle or ".", detach, pid_file
        self.console_socket, self.no_subreaper, self.no_pivot = console_socket, no_subreaper, no_pivot
        self.dump = checkpoint.Options(image_path=image_path, work_path=work_path,
                                       tcp_established=tcp_established, ext_unix_sk=ext_unix_sk,
                                       shell_job=shell_job, file_locks=file_locks,
                                       manage_cgroups_mode=manage_cgroups_mode, empty_ns=empty_ns,
                                       auto_dedup=auto_dedup, lazy_pages=lazy_pages)
        self.lsm_profile = lsm_profile
        if lsm_mount_context:
            raise OcirtError("--lsm-mount-context: not supported by ocirt")


def restore_opts(spec, opts, root, cgroup_roots, stdio_keys):
    """The criu_opts of the restore (without the fds but the inherited ones'
    numbers). root: the mount point holding the rootfs; cgroup_roots: the
    new cgroup's cg_root entries; stdio_keys: descriptors.json's list."""
    from ocirt import criu
    from ocirt.checkpoint import bind_mounts
    from ocirt.plan.namespaces import CLONE_FLAGS
    d = opts.dump
    linux = spec.get("linux") or {}
    o = {"log_level": 4, "log_file": "restore.log", "rst_sibling": True, "root": root,
         "manage_cgroups": True, "notify_scripts": True, "evasive_devices": True,
         "shell_job": d.shell_job, "ext_unix_sk": d.ext_unix_sk, "tcp_established": d.tcp_established,
         "file_locks": d.file_locks, "orphan_pts_master": True, "auto_dedup": d.auto_dedup,
         "empty_ns": sum(CLONE_FLAGS[ns] for ns in d.empty_ns), "cg_root": cgroup_roots}
    if d.manage_cgroups_mode:
        o["manage_cgroups_mode"] = criu.CG_MODES[d.manage_cgroups_mode]
    if opts.lsm_profile:
        o["lsm_profile"] = opts.lsm_profile
    if d.lazy_pages:    # the pages come from the `criu lazy-pages` daemon of the work directory
        o["lazy_pages"] = True
    external = [f"mnt[{m['destination']}]:{m['source']}" for m in bind_mounts(spec)]
    if linux.get("maskedPaths"):
        external.append("mnt[/dev/null]:/dev/null")
    o["external"] = external
    # the stdio pipes the dumped init had are the restoring caller's 0, 1, 2
    o["inherit_fd"] = [{"key": k, "fd": i} for i, k in enumerate(stdio_keys[:3]) if k.startswith("pipe:")]
    return o


def cgroup_roots(cgroup):
    """cg_root entries: each hierarchy's new container directory, relative to
    its mount (CRIU puts the restored tasks there)."""
    from ocirt.cgroups import paths
    out = []
    for ctrl, d in cgroup.dirs.items():
        if not ctrl:
            base = paths.HYBRID_UNIFIED if d.startswith(paths.HYBRID_UNIFIED + "/") else paths.ROOT
            out.append({"path": "/" + os.path.relpath(d, base)})
        else:
            from ocirt.create import _mount_name
            rel = os.path.relpath(d, os.path.join(paths.ROOT, _mount_name(ctrl)))
            out.append({"ctrl": ctrl.split("=", 1)[-1] if ctrl.startswith("name=") else ctrl,
                        "path": "/" + rel})
    return out


class Restoration:
    """One `restore` in progress, undone entirely if it fails."""

    def __init__(self, rt, cid, opts):
        from ocirt import bundle
        check_id(cid)
        self.rt, self.log, self.opts = rt, rt.log, opts
        self.spec, self.rootfs = bundle.load(opts.bundle)
        self.bundle = os.path.abspath(opts.bundle)
        self.terminal = bool((self.spec.get("process") or {}).get("terminal"))
        from ocirt.launch import check_terminal
        check_terminal(self.terminal, opts.detach, opts.console_socket, "process.terminal")
        self.c = Container(rt.root, cid)
        self.cgroup = None
        # the terminal: the --console-socket connection, or (in the
        # foreground without one) the master we keep to proxy
        self.console_fd = self.master = None
        self.sent_tty = False

    def run(self):
        """-> the restored init's pid."""
        from ocirt import criu
        why = criu.missing()
        if why:
            raise OcirtError(f"restore: {why}")
        self.c.create_dir()
        try:
            if self.opts.console_socket:
                from ocirt.console import connect
                self.console_fd = connect(self.opts.console_socket)
            return self._restore()
        except BaseException:
            self._abort()
            if self.master is not None:
                os.close(self.master)
            raise
        finally:
            self.c.unlock()
            if self.console_fd is not None:
                os.close(self.console_fd)

    def _restore(self):
        from ocirt import cgroups, criu
        from ocirt.checkpoint import criu_error, open_dir
        linux = self.spec["linux"]
        cgroup = cgroups.for_container(linux.get("cgroupsPath"), self.c.id, self.rt.systemd_cgroup)
        cgroup.plan_made()
        self.c.record_intent({"cgroup": cgroup.to_state()})
        cgroup.create(linux.get("resources"))
        self.cgroup = cgroup
        d = self.opts.dump
        fds = [open_dir(d.image_path, "--image-path", create=False)]
        root = None
        try:
            root = self._mount_root()
            o = restore_opts(self.spec, self.opts, root, cgroup_roots(cgroup), _descriptors(d.image_path))
            o["images_dir_fd"], logdir = fds[0], d.image_path
            if d.work_path:
                fds.append(open_dir(d.work_path, "--work-path", create=True))
                o["work_dir_fd"], logdir = fds[1], d.work_path
            o["inherit_fd"] += self._namespaces(fds)
            self.log.debug(f"restore {self.c.id}: criu restore from {d.image_path}")
            resp = criu.call(criu.RESTORE, o, pass_fds=fds, on_start=self._join_cgroup, cwd=self.c.dir,
                             notify=self._notify)
        finally:
            for fd in fds:
                os.close(fd)
            if root:
                self._unmount_root(root)
        if not resp.success:
            raise OcirtError(f"restore: criu failed ({criu_error(resp)}): see {logdir}/restore.log")
        if self.terminal and not self.sent_tty and self.master is None:
            raise OcirtError("restore: criu gave no terminal: was the container checkpointed with one?",
                             "process.terminal")
        self._record(resp.restore_pid)
        if self.opts.pid_file:
            from ocirt.launch import write_pid_file
            write_pid_file(self.opts.pid_file, resp.restore_pid)
        return resp.restore_pid

    def _mount_root(self):
        """The rootfs bound onto ROOT/ID/criu-root (as runc): CRIU wants its
        root to be a mount point whose parent is not overmounted. Unmounted
        once CRIU is done. (Not in a mount namespace of ocirt's own: CRIU
        then fails to mount its cgroup yard, EINVAL.)"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        root = os.path.join(self.c.dir, "criu-root")
        os.mkdir(root, 0o755)
        if libc.mount(self.rootfs.encode(), root.encode(), None, MS_BIND | MS_REC, None):
            err = ctypes.get_errno()
            os.rmdir(root)
            raise OcirtError(f"restore: binding the rootfs for criu: {os.strerror(err)}")
        return root

    @staticmethod
    def _unmount_root(root):
        import ctypes
        ctypes.CDLL(None, use_errno=True).umount2(root.encode(), MNT_DETACH)
        os.rmdir(root)

    def _namespaces(self, fds):
        """The network and pid namespaces the config joins by path, handed
        to CRIU under the keys the dump named them (extRootNetNS...)."""
        from ocirt.checkpoint import EXTERNAL_NS, external_ns_key
        out = []
        for ns in self.spec["linux"].get("namespaces") or ():
            if ns.get("type") in EXTERNAL_NS and ns.get("path"):
                try:
                    fds.append(os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC))
                except OSError as e:
                    raise OcirtError(f"{ns['path']}: {e.strerror}", "linux.namespaces") from None
                out.append({"key": external_ns_key(ns["type"]), "fd": fds[-1]})
        return out

    def _notify(self, script, pid, fds):
        """CRIU's notifications that concern us (the others: nothing to do)."""
        if script == "setup-namespaces":
            self._hooks(pid)
        elif script == "orphan-pts-master" and fds:
            if self.console_fd is not None:
                from ocirt.console import send_master
                send_master(self.console_fd, fds[0])
                self.sent_tty = True
            else:
                self.master = fds.pop(0)

    def _hooks(self, pid):
        """prestart then createRuntime, in the runtime's namespaces, once
        CRIU has made the container's (runc's order and moment). The state:
        status "creating", as create gives them (runc 1.1 says "stopped")."""
        hs = self.spec.get("hooks") or {}
        if not (hs.get("prestart") or hs.get("createRuntime")):
            return
        from ocirt import hooks
        state = {"ociVersion": SPEC_VERSION, "id": self.c.id, "status": "creating", "pid": pid,
                 "bundle": self.bundle}
        if self.spec.get("annotations"):
            state["annotations"] = self.spec["annotations"]
        hooks.run(hs, "prestart", state, log=self.log)
        hooks.run(hs, "createRuntime", state, log=self.log)

    def _join_cgroup(self, pid):
        """criu swrk goes into the new cgroup before it restores anything (as runc)."""
        if self.cgroup.holds_helper:
            self.cgroup.start_around(pid, self.c.id)
        else:
            self.cgroup.add(pid)

    def _record(self, pid):
        start, _ = proc_start_time(pid)
        self.c.state = {
            "ociVersion": SPEC_VERSION, "id": self.c.id, "pid": pid, "pidStart": start,
            "bundle": self.bundle, "rootfs": self.rootfs, "created": now_rfc3339(),
            "owner": "", "cgroup": self.cgroup.to_state(), "intelRdt": None, "config": self.spec,
            "terminal": self.terminal, "noNewKeyring": False,
        }
        self.c.save()

    def _abort(self):
        from ocirt import teardown
        if self.cgroup is None:
            teardown.undo_aborted_create(self.log, self.c)
            return
        from ocirt.signals import SIGKILL
        self.cgroup.kill_all(SIGKILL)   # what CRIU restored before it failed
        self.cgroup.destroy()
        self.c.remove()


def write_descriptors(image_path, pid):
    """descriptors.json: what the init's 0, 1, 2 were, for restore (runc's file)."""
    from ocirt import jsonio
    fds = []
    for i in range(3):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{i}"))
        except OSError:
            fds.append("/dev/null")
    with open(os.path.join(image_path, DESCRIPTORS), "w") as f:
        f.write(jsonio.dumps(fds))


def _descriptors(image_path):
    from ocirt import jsonio
    try:
        return list(jsonio.load_file(os.path.join(image_path, DESCRIPTORS)))
    except (OSError, ValueError):
        return []
