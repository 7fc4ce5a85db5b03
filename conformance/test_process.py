"""config.md: process, root, hostname, domainname, annotations, extensibility."""
import contextlib
import os
import pty
import resource
import select
import socket
import time

import pytest

from .harness import (applied_or_rejected, cap_mask, kill_pid, leftovers, read, read_only_dev, status_field,
                      userns_bundle)

clause = pytest.mark.clause


def proc_status(ct, b):
    return ct.run(b.sh("cat /proc/self/status")).out


# ------------------------------------------------------------------ args, env, cwd

@clause("runtime.lifecycle.start.1", "runtime.lifecycle.create.1")
def test_args_passed_verbatim(ct):
    b = ct.bundle(args=["/bin/sh", "-c", 'for a in "$0" "$@"; do printf "[%s]" "$a"; done', "x y", "", "z"])
    assert ct.run(b).out == "[x y][][z]"


@clause("runtime.lifecycle.start.1")
def test_args_executable_found_on_path(ct):
    assert ct.run(ct.bundle(args=["echo", "via", "PATH"])).out == "via PATH\n"


@clause("runtime.lifecycle.create.1")
def test_env_is_exactly_the_configured_environment(ct):
    b = ct.bundle(args=["env"])
    b.process["env"] = ["PATH=/bin:/usr/bin", "HOME=/root", "FOO=bar baz", "EMPTY=", "X=a=b"]
    assert sorted(ct.run(b).out.splitlines()) == sorted(b.process["env"])


@clause("runtime.lifecycle.create.1")
def test_cwd(ct):
    b = ct.bundle('pwd; readlink /proc/self/cwd')
    b.process["cwd"] = "/tmp"
    assert ct.run(b).out == "/tmp\n/tmp\n"


@clause("config.process.cwd.1", "config.valid-values.1", "runtime.errors.1")
def test_relative_cwd_is_rejected(ct):
    b = ct.bundle("pwd")
    b.process["cwd"] = "tmp"
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


# ------------------------------------------------------------------ terminal

def recv_console(srv, timeout=10):
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    return fds[0]


def read_all(fd, timeout=10):
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: every slave end is closed
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").replace("\r\n", "\n")


@contextlib.contextmanager
def console_server(ct):
    """(listening socket, its path) for --console-socket, where the runtime
    (as its user, rootless) may connect."""
    sock = os.path.join(ct.base, "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(sock)
        if ct.rt.user:
            os.chown(sock, ct.rt.user.uid, ct.rt.user.gid)
        srv.listen(1)
        yield srv, sock
    os.unlink(sock)


def run_with_terminal(ct, b):
    b.process["terminal"] = True
    with console_server(ct) as (srv, sock):
        ct.create(b, extra=["--console-socket", sock])
        master = recv_console(srv)
    try:
        ct.rt("start", b.cid)
        return read_all(master)
    finally:
        os.close(master)


@clause("runtime.lifecycle.create.1", "linux.default-devices.1")
def test_terminal_is_a_pty_on_stdio_and_dev_console(ct):
    b = ct.bundle('tty; test -t 0 -a -t 1 -a -t 2 && echo all-tty; '
                  'stat -c "%t:%T" /dev/console "$(tty)"')
    out = run_with_terminal(ct, b).split()
    assert out[0].startswith("/dev/pts/"), out
    assert out[1] == "all-tty"
    assert out[2] == out[3], "/dev/console is not the container's pty"


@clause("runtime.lifecycle.create.1")
def test_terminal_with_read_only_dev(ct):
    """/dev/console is made before /dev becomes read-only."""
    b = read_only_dev(ct.bundle('stat -c "%t:%T" /dev/console "$(tty)"; touch /dev/x'))
    out = run_with_terminal(ct, b).split("\n")
    assert out[0] == out[1], "/dev/console is not the container's pty"
    assert "Read-only file system" in out[2], out


def on_a_terminal(argv, timeout=30):
    """Run argv as from a user's shell: a new pty as its controlling terminal
    and stdio. Returns (exit status, output)."""
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    try:
        out = read_all(master, timeout)
    finally:
        os.close(master)
    kill_pid(pid)  # only if still running after the timeout (else a zombie)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out


OWNERS = 'stat -c %u:%g "$(tty)"'


def non_root(b):
    b.process["user"] = {"uid": 1000, "gid": 1000}
    return b


# What runc's users rely on: a non-root process can use its terminal. It owns
# the pty; the group stays the one devpts gives it (gid=5 in the config: tty).
@clause("runtime.lifecycle.create.1")
def test_terminal_belongs_to_the_process_user(ct):
    b = non_root(ct.bundle(OWNERS + " /dev/console"))
    assert run_with_terminal(ct, b).split() == ["1000:5", "1000:5"]


@clause("runtime.lifecycle.create.1")
def test_run_on_the_callers_terminal_gives_the_pty_to_the_process_user(ct):
    b = non_root(ct.bundle(OWNERS))
    b.process["terminal"] = True
    b.write()
    rc, out = on_a_terminal(ct.rt.argv("run", "--bundle", b.path, b.cid))
    assert (rc, out.split()) == (0, ["1000:5"]), out


@pytest.mark.parametrize("how", ["console-socket", "foreground"])
def test_exec_tty_belongs_to_the_exec_user(ct, how):
    b = ct.bundle("sleep 30")
    ct.create(b)
    ct.rt("start", b.cid)
    args = ["exec", "-t", "-u", "1000:1000"]
    if how == "foreground":
        rc, out = on_a_terminal(ct.rt.argv(*args, b.cid, "sh", "-c", OWNERS))
        assert (rc, out.split()) == (0, ["1000:5"]), out
        return
    with console_server(ct) as (srv, sock):
        ct.rt(*args, "-d", "--console-socket", sock, b.cid, "sh", "-c", OWNERS)
        master = recv_console(srv)
    try:
        assert read_all(master).split() == ["1000:5"]
    finally:
        os.close(master)


@clause("runtime.lifecycle.create.1")
def test_console_size(ct):
    b = ct.bundle("stty size")
    b.process["consoleSize"] = {"height": 33, "width": 111}
    assert run_with_terminal(ct, b).strip() == "33 111"


@clause("config.process.consoleSize.1")
def test_console_size_ignored_without_terminal(ct):
    b = ct.bundle("test -t 0 || echo no-tty")
    b.process["consoleSize"] = {"height": 33, "width": 111}
    assert ct.run(b).out == "no-tty\n"


# ------------------------------------------------------------------ user

@clause("runtime.lifecycle.create.1")
def test_user_uid_gid_additional_gids_umask(ct):
    b = ct.bundle()
    b.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 65534], "umask": 0o027}
    st = proc_status(ct, b)
    assert status_field(st, "Uid").split() == ["1000"] * 4
    assert status_field(st, "Gid").split() == ["1001"] * 4
    assert sorted(map(int, status_field(st, "Groups").split())) == [5, 65534]
    assert status_field(st, "Umask") == "0027"


@clause("runtime.lifecycle.create.1")
def test_no_additional_gids_means_no_supplementary_groups(ct):
    b = ct.bundle()
    b.process["user"] = {"uid": 1000, "gid": 1000}
    assert status_field(proc_status(ct, b), "Groups") == ""


# ------------------------------------------------------------------ rlimits

def below_hard(kind, want):
    hard = resource.getrlimit(kind)[1]
    return want if hard == resource.RLIM_INFINITY else min(want, hard)


def limits_row(limits, title):
    for line in limits.splitlines():
        if line.startswith(title):
            return line[len(title):].split()[:2]
    raise AssertionError(f"{title} not in /proc/self/limits")


@clause("config.process.rlimits.2", "config.process.rlimits.3", "config.process.rlimits.4")
def test_rlimits_soft_and_hard(ct):
    nofile_hard = below_hard(resource.RLIMIT_NOFILE, 512)
    mq_hard = below_hard(resource.RLIMIT_MSGQUEUE, 8192)
    b = ct.bundle("cat /proc/self/limits")
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": nofile_hard // 2, "hard": nofile_hard},
        {"type": "RLIMIT_MSGQUEUE", "soft": mq_hard // 2, "hard": mq_hard},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    limits = ct.run(b).out
    assert limits_row(limits, "Max open files") == [str(nofile_hard // 2), str(nofile_hard)]
    assert limits_row(limits, "Max msgqueue size") == [str(mq_hard // 2), str(mq_hard)]
    assert limits_row(limits, "Max core file size") == ["0", "0"]


@clause("config.process.rlimits.1", "runtime.errors.1")
def test_unknown_rlimit_type_is_rejected(ct):
    b = ct.bundle()
    b.process["rlimits"] = [{"type": "RLIMIT_NO_SUCH_THING", "soft": 1, "hard": 1}]
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("config.process.rlimits.5", "runtime.errors.1")
def test_duplicate_rlimit_type_is_rejected(ct):
    b = ct.bundle()
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                            {"type": "RLIMIT_NOFILE", "soft": 50, "hard": 60}]
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


# ------------------------------------------------------------------ capabilities, privileges

def cap_hex(st, key):
    return int(status_field(st, key), 16)


@clause("runtime.lifecycle.create.1")
def test_capability_sets_non_root(ct):
    bnd = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"]
    b = ct.bundle()
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["capabilities"] = {"bounding": bnd, "permitted": ["CAP_KILL", "CAP_CHOWN"],
                                 "effective": ["CAP_KILL", "CAP_CHOWN"],
                                 "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"], "ambient": ["CAP_CHOWN"]}
    st = proc_status(ct, b)
    assert cap_hex(st, "CapBnd") == cap_mask(bnd)
    assert cap_hex(st, "CapInh") == cap_mask(["CAP_CHOWN", "CAP_NET_RAW"])
    assert cap_hex(st, "CapAmb") == cap_mask(["CAP_CHOWN"])
    # after execve a non-root process keeps exactly its ambient set (capabilities(7))
    assert cap_hex(st, "CapPrm") == cap_hex(st, "CapEff") == cap_mask(["CAP_CHOWN"])


@clause("runtime.lifecycle.create.1")
def test_capability_sets_root(ct):
    bnd = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"]
    prm = ["CAP_KILL", "CAP_CHOWN"]
    b = ct.bundle()
    b.process["noNewPrivileges"] = True
    b.process["capabilities"] = {"bounding": bnd, "permitted": prm, "effective": prm}
    st = proc_status(ct, b)
    assert cap_hex(st, "CapBnd") == cap_mask(bnd)
    assert cap_hex(st, "CapInh") == 0 and cap_hex(st, "CapAmb") == 0
    # root's execve would grant bounding | inheritable, but no_new_privs caps that at
    # the permitted set held before execve, i.e. the configured one (capabilities(7))
    assert cap_hex(st, "CapPrm") == cap_hex(st, "CapEff") == cap_mask(prm)


@clause("runtime.lifecycle.create.1")
def test_no_capabilities_object_means_empty_sets_for_non_root(ct):
    b = ct.bundle()
    b.process["user"] = {"uid": 1000, "gid": 1000}
    del b.process["capabilities"]
    st = proc_status(ct, b)
    assert cap_hex(st, "CapEff") == 0 and cap_hex(st, "CapAmb") == 0


@clause("config.process.caps.1", "config.process.caps.2")
def test_capability_that_cannot_be_granted_is_not_fatal(ct):
    """The runtime runs without CAP_SYS_RESOURCE in its bounding set (setpriv):
    the container gets the rest, and a warning names the one it cannot have."""
    b = ct.bundle()
    wanted = ["CAP_KILL", "CAP_SYS_RESOURCE"]
    b.process["capabilities"] = dict.fromkeys(("bounding", "permitted", "effective"), wanted)
    res = ct.run(b.sh("cat /proc/self/status"), check=False,
                 prefix=("setpriv", "--bounding-set", "-sys_resource", "--"))
    assert res.rc == 0, res
    assert cap_hex(res.out, "CapBnd") == cap_mask(["CAP_KILL"])
    assert "warn" in res.err.lower() and "CAP_SYS_RESOURCE" in res.err, res.err


@clause("runtime.lifecycle.create.1")
@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(ct, nnp):
    b = ct.bundle()
    b.process["noNewPrivileges"] = nnp
    assert status_field(proc_status(ct, b), "NoNewPrivs") == ("1" if nnp else "0")


@clause("config.process.oomScoreAdj.1")
def test_oom_score_adj_set(ct):
    b = ct.bundle("cat /proc/self/oom_score_adj")
    b.process["oomScoreAdj"] = 123
    assert ct.run(b).out.strip() == "123"


@clause("config.process.oomScoreAdj.1")
def test_oom_score_adj_set_in_a_user_namespace(ct):
    """Set as the host's root (runc: before the clone), though the
    container's root is a mapped user."""
    b = userns_bundle(ct, "cat /proc/self/oom_score_adj")
    b.process["oomScoreAdj"] = 123
    assert ct.run(b).out.strip() == "123"


@clause("config.process.oomScoreAdj.2")
def test_oom_score_adj_unset_is_inherited(ct):
    b = ct.bundle("cat /proc/self/oom_score_adj")
    b.process.pop("oomScoreAdj", None)
    assert ct.run(b).out.strip() == read("/proc/self/oom_score_adj").strip()


@clause("config.valid-values.1")
def test_scheduler_applied_or_rejected(ct):
    b = ct.bundle("cat /proc/self/stat; grep '^policy' /proc/self/sched")
    b.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    out = applied_or_rejected(ct, b)
    if out is not None:
        stat, sched = out.splitlines()[0], out.splitlines()[1]
        assert stat.rsplit(") ", 1)[1].split()[16] == "7", "nice not applied"
        assert sched.split(":")[1].strip() == "3", "SCHED_BATCH not applied"


@clause("config.valid-values.1")
def test_io_priority_applied_or_rejected(ct):
    b = ct.bundle("ionice -p $$")
    b.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    out = applied_or_rejected(ct, b)
    if out is not None:
        assert out.strip() == "best-effort: prio 6"


@clause("runtime.lifecycle.create.1")
def test_apparmor_profile(ct):
    if not os.path.isdir("/sys/kernel/security/apparmor"):
        pytest.skip("AppArmor is not enabled on this machine")
    b = ct.bundle("cat /proc/self/attr/current")
    b.process["apparmorProfile"] = "unconfined"
    assert ct.run(b).out.strip().startswith("unconfined")


@clause("runtime.lifecycle.create.1")
def test_selinux_label(ct):
    if not os.path.isdir("/sys/fs/selinux"):
        pytest.skip("SELinux is not enabled on this machine")
    b = ct.bundle("cat /proc/self/attr/current")
    b.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    assert "container_t" in ct.run(b).out


# ------------------------------------------------------------------ root

def root_mount(out):
    for line in out.splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields
    raise AssertionError("no / in mountinfo")


@clause("config.root.readonly.1")
def test_readonly_root(ct):
    b = ct.bundle("cat /proc/self/mountinfo; touch /newfile 2>/dev/null && echo WROTE; true")
    b.config["root"]["readonly"] = True
    out = ct.run(b).out
    assert "WROTE" not in out
    assert "ro" in root_mount(out)[5].split(",")


@clause("config.root.readonly.1")
def test_readonly_false_root_is_writable_mount(ct):
    b = ct.bundle("cat /proc/self/mountinfo")
    b.config["root"]["readonly"] = False
    assert "rw" in root_mount(ct.run(b).out)[5].split(",")


@clause("config.root.path.1", "runtime.errors.1")
def test_missing_root_path_is_rejected(ct, tmp_path):
    b = ct.bundle()
    b.config["root"]["path"] = str(tmp_path / "no-such-rootfs")
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause("runtime.lifecycle.create.1")
def test_relative_root_path_is_relative_to_bundle(ct):
    # the shared rootfs is <session dir>/rootfs: a bundle in <session dir> names it "rootfs"
    b = ct.bundle("echo ok", path=os.path.dirname(ct.rootfs))
    b.config["root"]["path"] = "rootfs"
    assert ct.run(b).out == "ok\n"


# ------------------------------------------------------------------ hostname, domainname

@clause("runtime.lifecycle.create.1")
def test_hostname_and_domainname(ct):
    b = ct.bundle("hostname; cat /proc/sys/kernel/domainname")
    b.config["hostname"] = "conf-host"
    b.config["domainname"] = "example.test"
    assert ct.run(b).out == "conf-host\nexample.test\n"
    assert os.uname().nodename != "conf-host"


# ------------------------------------------------------------------ annotations, extensibility

@clause("config.extensibility.1", "config.annotations.unknown.1")
def test_unknown_properties_and_annotations_are_ignored(ct):
    b = ct.bundle("echo ok")
    b.config["org.example.unknownTopLevel"] = {"x": [1, 2]}
    b.process["unknownProcessField"] = True
    b.linux["unknownLinuxField"] = "y"
    b.config["annotations"] = {"org.example.unknown": "v", "com.example.empty": ""}
    assert ct.run(b).out == "ok\n"


@clause("config.valid-values.1", "runtime.errors.1")
def test_invalid_namespace_type_is_rejected(ct):
    b = ct.bundle()
    b.linux["namespaces"].append({"type": "no-such-namespace"})
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []

