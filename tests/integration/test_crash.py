"""Crash consistency: a SIGKILL of `create` or `delete` at any point, or of
the init between create and start, and `delete -f` then leaves nothing (no
state entry, no cgroup directory in any hierarchy, parents made for the
container included, no process, no mount), and the id can be created again.

The runtime is killed at its Nth call of a syscall (strace's fault
injection, on the runtime only: not -f). `make test` sweeps every point of
the syscalls that make things and every 4th openat; OCIRT_CRASH_SWEEP=full
sweeps every point of more syscalls. The timed kills run on any runtime
(OCIRT=/usr/sbin/runc counts its debris the same way)."""
import os
import signal
import subprocess
import time
import uuid

from conftest import OCIRT, cgroup_dirs_existing, mountinfo, pid_alive, procs_rooted_at

FULL = os.environ.get("OCIRT_CRASH_SWEEP") == "full"
CREATE_SYSCALLS = ["mkdir", "mknodat", "write", "rename", "clone3", "recvfrom", "openat"]
DELETE_SYSCALLS = ["kill", "rmdir", "unlink", "write", "openat"]
if FULL:
    CREATE_SYSCALLS += ["close", "read", "newfstatat", "fcntl", "sendto", "wait4", "unlink", "flock"]
    DELETE_SYSCALLS += ["close", "read", "newfstatat", "pidfd_open", "ppoll", "poll", "wait4"]


def crash_bundle(oci):
    """A bundle under a cgroup parent of its own, which create makes."""
    b = oci.bundle("sleep 100")
    b.cid = "cr-" + uuid.uuid4().hex[:10]
    b.parent = f"{oci.cg_parent}/cr-p{uuid.uuid4().hex[:8]}"
    b.config["linux"]["cgroupsPath"] = f"{b.parent}/{b.cid}"
    b.write()
    return b


def debris(oci, b):
    """What is left of b on the host after its delete -f."""
    left = []
    if os.path.exists(os.path.join(oci.root, b.cid)):
        left.append(f"state {sorted(os.listdir(os.path.join(oci.root, b.cid)))}")
    left += [f"cgroup {d}" for d in cgroup_dirs_existing(b.config["linux"]["cgroupsPath"])]
    left += [f"parent cgroup {d}" for d in cgroup_dirs_existing(b.parent)]
    left += [f"process {p}" for p in _procs(oci)]
    left += [f"mount {m['point']}" for m in mountinfo() if oci.root in m["point"]]
    return left


def _procs(oci):
    """Live processes of the container: rooted in its rootfs, or holding
    a file of the state dir (the helper and an init before pivot_root)."""
    found = set(procs_rooted_at(oci.rootfs))
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{p}/fd/{fd}").startswith(oci.root + "/")
                   for fd in os.listdir(f"/proc/{p}/fd")):
                found.add(int(p))
        except OSError:
            pass
    return sorted(p for p in found if pid_alive(p))


def run_killed(argv, syscall, n):
    """argv under strace, SIGKILLed at its nth `syscall`; -> its exit status."""
    st = ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
          "-e", f"inject={syscall}:signal=SIGKILL:when={n}", *argv]
    return subprocess.run(st, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=30).returncode


def points(argv, syscalls, after):
    """(syscall, n) for each call of syscalls that argv makes once `after`
    shows in the trace (the calls before cannot leave anything)."""
    out = os.path.join(os.path.dirname(argv[argv.index("--root") + 1]), "trace")
    subprocess.run(["strace", "-qq", "-o", out, "-e", "trace=" + ",".join(syscalls), *argv],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=30)
    counts, seen = dict.fromkeys(syscalls, 0), False
    with open(out) as f:
        for line in f:
            name = line.split("(", 1)[0]
            if name not in counts:
                continue
            counts[name] += 1
            seen = seen or after in line
            if seen and (FULL or name != "openat" or counts[name] % 4 == 0):
                yield name, counts[name]


def argv_create(oci, b):
    return [OCIRT, "--root", oci.root, "create", "--bundle", b.path, b.cid]


def assert_clean_and_reusable(oci, b, what, failures):
    oci("delete", "--force", b.cid, check=False)
    left = debris(oci, b)
    if left:
        failures.append(f"{what}: {left}")
        return
    oci("create", "--bundle", b.path, b.cid)
    oci("delete", "--force", b.cid)


def test_create_killed_at_each_syscall_then_delete_force_leaves_nothing(oci):
    b = crash_bundle(oci)
    todo = list(points(argv_create(oci, b), CREATE_SYSCALLS, f"/{b.cid}\""))
    oci("delete", "--force", b.cid)
    assert len(todo) > 20, todo  # the trace saw create's work
    failures = []
    for syscall, n in todo:
        rc = run_killed(argv_create(oci, b), syscall, n)
        assert rc in (0, 128 + signal.SIGKILL, -signal.SIGKILL), (syscall, n, rc)
        assert_clean_and_reusable(oci, b, f"create killed at {syscall} #{n}", failures)
    assert not failures, f"{len(failures)} of {len(todo)} kill points left debris: {failures[:5]}"


def test_create_killed_then_plain_delete_removes_its_debris(oci):
    """runc's delete without --force removes an aborted create's directory
    (and says the container does not exist); ocirt also undoes what it
    recorded, so the id is free without a -f."""
    b = crash_bundle(oci)
    todo = list(points(argv_create(oci, b), CREATE_SYSCALLS, f"/{b.cid}\""))[::5]
    oci("delete", "--force", b.cid)
    failures = []
    for syscall, n in todo:
        run_killed(argv_create(oci, b), syscall, n)
        r = oci("delete", b.cid, check=False)
        if r.rc not in (0, 1) or (r.rc and "does not exist" not in r.err):
            failures.append(f"{syscall} #{n}: delete said {r.rc} {r.err!r}")
        elif left := debris(oci, b):
            failures.append(f"create killed at {syscall} #{n}: {left}")
        oci("delete", "--force", b.cid, check=False)
    assert not failures, f"{len(failures)} of {len(todo)} kill points: {failures[:5]}"


def test_delete_killed_at_each_syscall_then_delete_force_leaves_nothing(oci):
    b = crash_bundle(oci)
    oci("create", "--bundle", b.path, b.cid)
    todo = list(points([OCIRT, "--root", oci.root, "delete", "--force", b.cid], DELETE_SYSCALLS, f"/{b.cid}\""))
    assert len(todo) > 10, todo
    failures = []
    for syscall, n in todo:
        oci("create", "--bundle", b.path, b.cid)
        run_killed([OCIRT, "--root", oci.root, "delete", "--force", b.cid], syscall, n)
        assert_clean_and_reusable(oci, b, f"delete killed at {syscall} #{n}", failures)
    assert not failures, f"{len(failures)} of {len(todo)} kill points left debris: {failures[:5]}"


def test_init_killed_between_create_and_start_then_delete_force_leaves_nothing(oci):
    b = crash_bundle(oci)
    oci("create", "--bundle", b.path, b.cid)
    os.kill(oci.state(b.cid)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while oci.status(b.cid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert oci.status(b.cid) == "stopped"
    failures = []
    assert_clean_and_reusable(oci, b, "init killed", failures)
    assert not failures, failures


def test_create_killed_after_a_delay_then_delete_force_leaves_nothing(oci, runs=30):
    """Kills at times spread over a create's duration: the same cases for any runtime."""
    b = crash_bundle(oci)
    t0 = time.monotonic()
    oci("create", "--bundle", b.path, b.cid)
    took = time.monotonic() - t0
    oci("delete", "--force", b.cid)
    failures = []
    for i in range(runs):
        p = subprocess.Popen(argv_create(oci, b), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(took * i / runs)
        p.kill()
        p.wait()
        assert_clean_and_reusable(oci, b, f"create killed after {took * i / runs * 1000:.1f} ms", failures)
    assert not failures, f"{len(failures)} of {runs} kills left debris: {failures[:5]}"
