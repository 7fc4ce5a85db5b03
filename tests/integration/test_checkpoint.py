"""checkpoint and restore through CRIU, on real containers: a busybox
counter is dumped, killed, restored and counts on from where it was. CRIU
needs a kernel it supports: these skip where `criu check` fails (this
host's 6.18) and run in the VM (tests/vm/run-criu-tests.sh, kernel 6.1),
on ocirt and on runc (OCIRT=/usr/sbin/runc)."""
import fcntl
import json
import os
import signal
import subprocess
import termios
import time

import pytest

from conftest import OCIRT, ConsoleSocket, read_until

CRIU = "/usr/sbin/criu"
IS_RUNC = os.path.basename(OCIRT) == "runc"
# n is renamed into place: a dump between the truncation and the write of an
# `echo > n` would leave it empty for good
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /count/n.new; mv /count/n.new /count/n; sleep 0.2; done"


def _criu_works():
    if not os.access(CRIU, os.X_OK):
        return False
    return subprocess.run([CRIU, "check"], capture_output=True).returncode == 0


needs_criu = pytest.mark.skipif(not _criu_works(), reason="criu check fails on this kernel")


def counter(oci, tmp_path, script=COUNTER, edit=None):
    """A detached busybox that writes an ever larger number to /count/n (a
    bind mount); edit(bundle, count dir) may change its config first."""
    out = tmp_path / f"count-{len(oci.bundles)}"
    out.mkdir()
    b = oci.bundle(script)
    b.config["mounts"].append({"destination": "/count", "type": "bind", "source": str(out),
                               "options": ["rbind", "rw"]})
    if edit is not None:
        edit(b, out)
    b.write()
    with_pipes(oci, "run", "--detach", "--bundle", b.path, b.cid)
    oci.pids.append(oci.state(b.cid)["pid"])
    return b, out / "n"


PIPES = []   # the ends the test keeps of the containers' stdio pipes


def with_pipes(oci, *args):
    """ocirt ARGS with pipes as stdio, as podman and containerd give a
    container (CRIU cannot dump the host's /dev/null or an unlinked file:
    they are not in the container's mounts)."""
    ends = [os.pipe() for _ in range(3)]
    theirs = [ends[0][0], ends[1][1], ends[2][1]]
    PIPES.extend([ends[0][1], ends[1][0], ends[2][0]])
    try:
        p = subprocess.run([OCIRT, "--root", oci.root, *args], stdin=theirs[0], stdout=theirs[1],
                           stderr=theirs[2], timeout=60)
    finally:
        for fd in theirs:
            os.close(fd)
    if p.returncode:   # its error is in the pipe, which the container (if any) keeps open
        os.set_blocking(ends[2][0], False)
        try:
            err = os.read(ends[2][0], 65536).decode(errors="replace")
        except BlockingIOError:
            err = ""
        img = args[args.index("--image-path") + 1] if "--image-path" in args else ""
        raise AssertionError(f"{args}: rc={p.returncode} {err}\n{_log_tail(img)}")
    return p


def _log_tail(img):
    logs = [os.path.join(img, f) for f in ("dump.log", "restore.log") if img and os.path.exists(os.path.join(img, f))]
    return "".join("".join(open(f, errors="replace").readlines()[-15:]) for f in logs)


def _wait_count(path, done, failing, timeout):
    """The count once done(count) holds (it moves); else fail saying `failing`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            n = int(path.read_text() or 0)
        except (OSError, ValueError):
            n = None
        if n is not None and done(n):
            return n
        time.sleep(0.05)
    raise AssertionError(f"{path}: {failing}")


def read_count(path, above=0, timeout=20):
    """The count, once it is above `above`."""
    return _wait_count(path, lambda n: n > above, f"the count did not pass {above}", timeout)


def next_count(path, old, timeout=20):
    """The first value other than old that the counter writes."""
    return _wait_count(path, lambda n: n != old, f"the count stayed at {old}", timeout)


def criu_cmd(oci, *args):
    """checkpoint/restore ARGS: on failure, the error with the tail of CRIU's log."""
    res = oci(*args, check=False)
    if res.rc:
        raise AssertionError(f"{res!r}\n{_log_tail(args[args.index('--image-path') + 1])}")
    return res


def checkpointed(oci, tmp_path, counted):
    """A counter checkpointed (so stopped) once it has counted past `counted`:
    -> its bundle, count file, image dir and the count where it stopped."""
    b, n = counter(oci, tmp_path)
    read_count(n, counted)
    img = tmp_path / "img"
    criu_cmd(oci, "checkpoint", "--image-path", str(img), b.cid)
    return b, n, img, int(n.read_text())


def test_host_dev_null_stdio_becomes_the_containers(oci):
    """As runc: the init's stdio that is the host's /dev/null is reopened
    on the container's (CRIU cannot dump a file of a mount outside the
    container, and podman gives a detached container /dev/null as stdin)."""
    b = oci.bundle("for i in 0 1; do [ \"$(stat -L -c %d:%i /proc/1/fd/$i)\" = \"$(stat -c %d:%i /dev/null)\" ]"
                   " && echo same >&2 || echo other >&2; done")
    b.write()
    # detached: runc's foreground run gives the container pipes of its own
    p = subprocess.run([OCIRT, "--root", oci.root, "run", "--detach", "--bundle", b.path, b.cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p
    assert p.stderr.split() == [b"same", b"same"], p.stderr


@pytest.mark.skipif(IS_RUNC, reason="ocirt's own message")
def test_missing_criu_is_one_line(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    res = oci("--criu", "/nonexistent/criu", "checkpoint", "--image-path", str(tmp_path / "img"), b.cid,
              check=False)
    assert res.rc == 1
    assert res.err.strip() == "ocirt: checkpoint: criu is not installed (/nonexistent/criu not found)"
    assert oci.status(b.cid) == "running"


@needs_criu
def test_leave_running(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    read_count(n, 1)
    img = tmp_path / "img"
    criu_cmd(oci, "checkpoint", "--leave-running", "--image-path", str(img), b.cid)
    assert (img / "inventory.img").exists()
    assert oci.status(b.cid) == "running"
    read_count(n, int(n.read_text()) + 2)     # still counting


@needs_criu
def test_pre_dump_then_dump(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    read_count(n, 1)
    (tmp_path / "img").mkdir()
    pre, final = tmp_path / "img" / "pre", tmp_path / "img" / "final"
    criu_cmd(oci, "checkpoint", "--pre-dump", "--image-path", str(pre), b.cid)
    assert oci.status(b.cid) == "running"
    criu_cmd(oci, "checkpoint", "--parent-path", "../pre", "--image-path", str(final), b.cid)
    assert oci.status(b.cid) is None
    assert os.readlink(final / "parent") == "../pre"


def restore(oci, b, img, cid=None, *flags):
    """restore --detach of b's bundle from img as cid (default b's id)."""
    cid = cid or b.cid
    with_pipes(oci, "restore", "--detach", "--bundle", b.path, "--image-path", str(img), *flags, cid)
    oci.pids.append(oci.state(cid)["pid"])
    return cid


@needs_criu
def test_checkpoint_kill_restore_counts_on(oci, tmp_path):
    b, n, img, stopped = checkpointed(oci, tmp_path, 3)
    assert oci.status(b.cid) is None          # as runc: gone after a dump
    assert (img / "inventory.img").exists()
    time.sleep(1)
    assert int(n.read_text()) == stopped      # nothing counts any more
    restore(oci, b, img)
    st = oci.state(b.cid)
    assert st["status"] == "running" and st["pid"] > 0
    now = next_count(n, stopped)          # counts on from where it was: a restart would write 1
    assert now > stopped, (stopped, now)
    oci("kill", b.cid, "KILL")
    deadline = time.monotonic() + 10
    while oci.status(b.cid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    oci("delete", b.cid)
    assert oci.status(b.cid) is None


def renamed(oci, b):
    """A new id for a restore of b's checkpoint, and a cgroup of its own in b's config."""
    b2 = oci.bundle()                     # for its cleanup: the new id's cgroup
    b2.cid = b.cid + "-r"
    b2.config["linux"]["cgroupsPath"] = b.config["linux"]["cgroupsPath"] + "-r"
    b.config["linux"]["cgroupsPath"] = b2.config["linux"]["cgroupsPath"]
    b.write()
    return b2.cid


@needs_criu
def test_restore_into_a_new_id(oci, tmp_path):
    b, n, img, stopped = checkpointed(oci, tmp_path, 2)
    new = renamed(oci, b)
    restore(oci, b, img, new)
    assert oci.status(new) == "running"
    assert next_count(n, stopped) > stopped
    oci("delete", "--force", new)
    assert oci.status(new) is None


# ---------------------------------------------------------------- page server, lazy pages

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def await_nul(r, proc, what, timeout=30):
    """The NUL a --status-fd gets when its writer is ready (then r is closed)."""
    import select
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        assert ready and os.read(r, 1) == b"\0", f"{what} did not say it was ready (exit {proc.poll()})"
    finally:
        os.close(r)


def background(argv, log, what):
    """argv in the background, once it is ready: its --status-fd is "FD"."""
    r, w = os.pipe()
    with open(log, "w") as out:
        p = subprocess.Popen([str(w) if a == "FD" else a for a in argv], pass_fds=(w,),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    os.close(w)
    try:
        await_nul(r, p, what)
    except BaseException:
        p.kill()
        p.wait()
        raise
    return p


def ended(p, log, timeout=60):
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = "hung"
    assert rc == 0, f"{p.args[:3]}: {rc}: {open(log, errors='replace').read()[-2000:]}"


@needs_criu
def test_page_server(oci, tmp_path):
    """--page-server: the memory pages go to a `criu page-server` (which
    writes them where it is told), the rest to --image-path; both together
    restore a counter that counts on."""
    b, n = counter(oci, tmp_path)
    read_count(n, 2)
    img, served = tmp_path / "img", tmp_path / "served"
    img.mkdir()
    served.mkdir()
    port = free_port()
    log = tmp_path / "page-server.out"
    srv = background([CRIU, "page-server", "-D", str(served), "-o", "ps.log", "-v4", "--address", "127.0.0.1",
                      "--port", str(port), "--status-fd", "FD"], log, "criu page-server")
    criu_cmd(oci, "checkpoint", "--page-server", f"127.0.0.1:{port}", "--image-path", str(img), b.cid)
    ended(srv, log)
    assert not list(img.glob("pages-*.img")) and list(served.glob("pages-*.img"))
    assert (img / "inventory.img").exists()
    stopped = int(n.read_text())
    for f in served.glob("*.img"):
        f.rename(img / f.name)
    restore(oci, b, img)
    assert next_count(n, stopped) > stopped
    oci("delete", "--force", b.cid)


def _uffd():
    return _criu_works() and subprocess.run([CRIU, "check", "--feature", "uffd-noncoop"],
                                            capture_output=True).returncode == 0


@pytest.mark.skipif(not _uffd(), reason="criu has no lazy pages on this kernel (uffd-noncoop)")
def test_lazy_pages(oci, tmp_path):
    """runc's lazy migration: the dump leaves the pages with a page server
    of its own and says so on --status-fd; `criu lazy-pages` fetches them
    for a restore --lazy-pages (into a new id: the dumped one stays until
    its last page is gone), which counts on; then the dump ends, and its
    container with it."""
    b, n = counter(oci, tmp_path)
    read_count(n, 2)
    img, work = tmp_path / "img", tmp_path / "work"
    img.mkdir()
    port = free_port()
    dump_log = tmp_path / "dump.out"
    dump = background([OCIRT, "--root", oci.root, "checkpoint", "--lazy-pages", "--status-fd", "FD",
                       "--page-server", f"127.0.0.1:{port}", "--work-path", str(work),
                       "--image-path", str(img), b.cid], dump_log, "checkpoint --lazy-pages")
    lazy = None
    try:
        assert (img / "inventory.img").exists()
        stopped = int(n.read_text())
        lazy_log = tmp_path / "lazy-pages.out"
        lazy = background([CRIU, "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", str(port),
                           "-D", str(img), "-o", "lazy-pages.log", "-v4", "--status-fd", "FD"],
                          lazy_log, "criu lazy-pages")
        new = restore(oci, b, img, renamed(oci, b), "--lazy-pages")
        assert next_count(n, stopped) > stopped
        ended(dump, dump_log)
        ended(lazy, lazy_log)
    finally:
        for p in (dump, lazy):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert oci.status(b.cid) is None
    assert oci.status(new) == "running"
    oci("delete", "--force", new)


# ---------------------------------------------------------------- a terminal

TTY_LOOP = "n=0; while read l; do n=$((n+1)); echo got-$n-$l; done"


def tty_talk(master, line, want, timeout=20):
    os.write(master, line.encode() + b"\n")
    out = read_until(master, want.encode(), timeout)
    assert want.encode() in out, out


def console(tmp_path, name):
    rcv = ConsoleSocket(str(tmp_path / name))
    rcv.start()
    return rcv


def got_master(rcv):
    rcv.join(30)
    assert rcv.master is not None, "no pty master received"
    return rcv.master


def tty_checkpointed(oci, tmp_path):
    """A shell on a terminal (its master from --console-socket) that has
    answered once, then checkpointed (and so gone): -> (bundle, image dir)."""
    b = oci.bundle(TTY_LOOP)
    b.process["terminal"] = True
    b.write()
    rcv = console(tmp_path, "c1.sock")
    oci("run", "--detach", "--console-socket", rcv.srv.getsockname(), "--bundle", b.path, b.cid)
    oci.pids.append(oci.state(b.cid)["pid"])
    master = got_master(rcv)
    tty_talk(master, "one", "got-1-one")
    img = tmp_path / "img"
    criu_cmd(oci, "checkpoint", "--image-path", str(img), b.cid)
    os.close(master)
    return b, img


@needs_criu
def test_terminal_restored_through_console_socket(oci, tmp_path):
    """The container's pty was an orphan at the dump (its master is the
    console peer's); restore makes a new one, whose master comes to
    --console-socket and talks to the same shell: its count goes on."""
    b, img = tty_checkpointed(oci, tmp_path)
    assert oci.status(b.cid) is None
    rcv = console(tmp_path, "c2.sock")
    criu_cmd(oci, "restore", "--detach", "--console-socket", rcv.srv.getsockname(), "--bundle", b.path,
             "--image-path", str(img), b.cid)
    oci.pids.append(oci.state(b.cid)["pid"])
    master = got_master(rcv)
    try:
        assert rcv.data, "the console message has no data"
        tty_talk(master, "two", "got-2-two")      # the same shell: 2, not 1
        assert oci.state(b.cid)["status"] == "running"
    finally:
        os.close(master)
    oci("delete", "--force", b.cid)


@needs_criu
def test_terminal_restored_in_the_foreground(oci, tmp_path):
    """Without --detach and a console socket, the runtime keeps the new
    pty's master and copies between it and its own terminal."""
    b, img = tty_checkpointed(oci, tmp_path)
    # the runtime's stdio is a terminal of ours (runc opens /dev/tty in the foreground)
    ours, theirs = os.openpty()
    err = open(tmp_path / "err", "w+")
    p = subprocess.Popen([OCIRT, "--root", oci.root, "restore", "--bundle", b.path, "--image-path", str(img),
                          b.cid], stdin=theirs, stdout=theirs, stderr=err, start_new_session=True,
                         preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(theirs)
    try:
        os.write(ours, b"two\n")
        got = read_until(ours, b"got-2-two", 30)
        assert b"got-2-two" in got, (got, (tmp_path / "err").read_text())
        oci("kill", b.cid, "KILL")
        assert p.wait(timeout=30) == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(ours)
    assert oci.status(b.cid) is None


@pytest.mark.parametrize("terminal, flags, err", [
    (True, ["--detach"], "cannot allocate tty if"),
    (False, ["--detach", "--console-socket", "/absent.sock"], "cannot use console socket if"),
    (True, ["--console-socket", "/absent.sock"], "cannot use console socket if"),
])
def test_terminal_and_console_socket_as_runc(oci, tmp_path, terminal, flags, err):
    """runc's rule of create (a detached terminal needs a console socket,
    which is for it only), checked before anything is made."""
    b = oci.bundle("true")
    b.process["terminal"] = terminal
    b.write()
    (tmp_path / "img").mkdir()
    res = oci("restore", *flags, "--bundle", b.path, "--image-path", str(tmp_path / "img"), b.cid,
              check=False)
    assert res.rc == 1 and err in res.err, res
    assert len(res.err.strip().splitlines()) == 1, res
    assert oci.status(b.cid) is None


# ---------------------------------------------------------------- hooks

HOOK_KINDS = ("prestart", "createRuntime", "poststart", "poststop")   # those run in the runtime's namespaces


def with_hooks(b, out):
    b.config["hooks"] = {k: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{k}"]}] for k in HOOK_KINDS}


@needs_criu
def test_hooks_at_restore(oci, tmp_path):
    """As runc: prestart and createRuntime run once CRIU has made the
    namespaces, with the restored init's pid; poststart does not run (the
    restored process is past its start); poststop at delete."""
    b, n = counter(oci, tmp_path, edit=with_hooks)
    out = n.parent
    read_count(n, 1)
    assert sorted(p.name for p in out.iterdir() if p.name not in ("n", "n.new")) == sorted(HOOK_KINDS[:-1])
    img = tmp_path / "img"
    criu_cmd(oci, "checkpoint", "--image-path", str(img), b.cid)
    assert (out / "poststop").exists()       # the dump's end deleted the container
    for k in HOOK_KINDS:
        (out / k).unlink()
    restore(oci, b, img)
    pid = oci.state(b.cid)["pid"]
    ran = sorted(p.name for p in out.iterdir() if p.name not in ("n", "n.new"))
    assert ran == ["createRuntime", "prestart"], ran
    for k in ran:
        st = json.loads((out / k).read_text())
        assert st["id"] == b.cid and st["pid"] == pid, st
        assert st["status"] == ("stopped" if IS_RUNC else "creating"), st
        assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path), st
    oci("delete", "--force", b.cid)
    assert json.loads((out / "poststop").read_text())["id"] == b.cid


@needs_criu
def test_failing_prestart_at_restore_leaves_nothing(oci, tmp_path):
    b, n, img, stopped = checkpointed(oci, tmp_path, 1)
    before = oci.host_view()
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    b.write()
    res = oci("restore", "--detach", "--bundle", b.path, "--image-path", str(img), b.cid, check=False)
    assert res.rc != 0, res
    if not IS_RUNC:
        assert "hooks.prestart[0]" in res.err and "exit status 3" in res.err, res
    assert oci.status(b.cid) is None
    assert oci.host_view() == before
    time.sleep(1)
    assert int(n.read_text()) == stopped      # nothing was left counting


# ---------------------------------------------------------------- a foreground restore

TRAP = "trap 'echo term > /count/t; exit 7' TERM; " + COUNTER


@needs_criu
def test_foreground_restore_forwards_signals(oci, tmp_path):
    """restore without --detach waits for the init and exits with its
    status; a SIGTERM to the runtime reaches the init (its trap exits 7)."""
    b, n = counter(oci, tmp_path, TRAP)
    read_count(n, 1)
    img = tmp_path / "img"
    criu_cmd(oci, "checkpoint", "--image-path", str(img), b.cid)
    stopped = int(n.read_text())
    ends = [os.pipe() for _ in range(3)]
    PIPES.extend([ends[0][1], ends[1][0], ends[2][0]])
    p = subprocess.Popen([OCIRT, "--root", oci.root, "restore", "--bundle", b.path, "--image-path", str(img),
                          b.cid], stdin=ends[0][0], stdout=ends[1][1], stderr=ends[2][1])
    for fd in (ends[0][0], ends[1][1], ends[2][1]):
        os.close(fd)
    try:
        next_count(n, stopped)                # restored, counting on
        oci.pids.append(oci.state(b.cid)["pid"])
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (n.parent / "t").read_text().strip() == "term"
    assert oci.status(b.cid) is None          # gone, as after a foreground run
