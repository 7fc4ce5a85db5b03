"""Compiled programs loaded into a real kernel, in a forked child: it sets
no_new_privs, installs the program with the returned flags, makes raw
syscalls and reports what they returned. Root is not needed."""
import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import threading

import pytest

from ocirt._native._lib import ffi, lib
from ocirt.plan.seccomp import notify_state
from ocirt.seccomp import compile_seccomp

PODMAN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "conformance", "fixtures", "clients", "podman-config.json")
libc = ctypes.CDLL(None, use_errno=True)


def nr(name):
    return lib.ocirt_scmp_syscall(name.encode())


def raw(name, *args):
    """(return value, errno) of a raw syscall."""
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr(name)), *(ctypes.c_long(a) for a in args))
    return rc, (ctypes.get_errno() if rc == -1 else 0)


def run_filtered(compiled, probes, after_install=None):
    """Install `compiled` in a child, run the (name, *args) probes there.
    Returns the list of (rc, errno), or ("signal", n) if the child died."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            fd = lib.ocirt_seccomp_install(ffi.from_buffer(compiled.bpf), len(compiled.bpf), compiled.flags)
            if fd < 0:
                os.write(wfd, json.dumps({"install": -fd}).encode())
            else:
                if after_install:
                    after_install(fd)
                os.write(wfd, json.dumps([raw(*p) for p in probes]).encode())
                code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    out = _read_all(rfd, pid)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ("signal", os.WTERMSIG(status))
    result = json.loads(out)
    assert not isinstance(result, dict), f"seccomp install failed: {os.strerror(result['install'])}"
    return [tuple(r) for r in result]


def _read_all(fd, pid, timeout=10):
    """The child's report; a child stuck in a syscall is killed and fails the test."""
    chunks = []
    with os.fdopen(fd, "rb", buffering=0) as f:
        while True:
            if not select.select([f], [], [], timeout)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the filtered child hung")
            chunk = f.read(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def rule(action, args=(), **kw):
    return dict({"names": ["getpgid"], "action": action, "args": list(args)}, **kw)


def allow_but(*rules, **kw):
    return compile_seccomp(dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}, **kw))


def blocked(results, err=38):
    return [r == (-1, err) for r in results]


# --- the engines' default profile ------------------------------------------------

def podman():
    with open(PODMAN) as f:
        return json.load(f)["linux"]["seccomp"]


def test_podman_profile_allows_and_blocks():
    res = run_filtered(compile_seccomp(podman()), [
        ("getpid",),            # allowed
        ("getpgid", 0),         # allowed
        ("bpf", 9999, 0, 0),    # explicit SCMP_ACT_ERRNO, errnoRet 1
        ("add_key", 0, 0, 0, 0, 0),   # not listed: defaultErrnoRet 38
        ("personality", 0xffffffff),  # allowed by an arg rule (query)
        ("personality", 0x1234),      # no arg rule matches: default
    ])
    assert res[0][0] > 0 and res[0][1] == 0
    assert res[1][1] == 0
    assert res[2] == (-1, errno.EPERM)
    assert res[3] == (-1, 38)
    assert res[4][1] == 0
    assert res[5] == (-1, 38)


def test_default_errno_is_eperm_without_default_errno_ret():
    section = podman()
    del section["defaultErrnoRet"]
    assert run_filtered(compile_seccomp(section), [("add_key", 0, 0, 0, 0, 0)]) == [(-1, errno.EPERM)]


def test_cached_program_behaves_the_same(tmp_path):
    compile_seccomp(podman(), str(tmp_path))
    hit = compile_seccomp(podman(), str(tmp_path))
    assert run_filtered(hit, [("add_key", 0, 0, 0, 0, 0)]) == [(-1, 38)]


# --- actions --------------------------------------------------------------------------

def test_errno_ret_and_default_eperm():
    c = allow_but(rule("SCMP_ACT_ERRNO", errnoRet=38, names=["getpgid"]),
                  rule("SCMP_ACT_ERRNO", names=["getsid"]))
    assert run_filtered(c, [("getpgid", 0), ("getsid", 0), ("getppid",)])[:2] == [(-1, 38), (-1, errno.EPERM)]


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_TRAP"])
def test_killing_actions_end_the_process_with_sigsys(action):
    assert run_filtered(allow_but(rule(action)), [("getpgid", 0)]) == ("signal", signal.SIGSYS)


def test_trace_without_tracer_fails_with_enosys():
    assert run_filtered(allow_but(rule("SCMP_ACT_TRACE")), [("getpgid", 0)]) == [(-1, errno.ENOSYS)]


@pytest.mark.parametrize("action", ["SCMP_ACT_LOG", "SCMP_ACT_ALLOW"])
def test_permissive_actions(action):
    c = compile_seccomp({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                         "syscalls": [rule(action), {"names": list(_PYTHON_NEEDS), "action": "SCMP_ACT_ALLOW"}]})
    assert run_filtered(c, [("getpgid", 0), ("getsid", 0)]) == [(os.getpgid(0), 0), (-1, 38)]


# What the child needs after the filter is on, for a default-deny filter.
_PYTHON_NEEDS = ("write", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "rt_sigprocmask",
                 "rt_sigaction", "getpid", "futex", "madvise", "close", "sigaltstack")


# clone3 and close_range (435, 436) are newer than everything _PYTHON_NEEDS
_NEW_PROBES = [("getpgid", 0), ("clone3", 0, 0), ("close_range", 2**31 - 1, 2**31 - 1, 0)]


@pytest.mark.parametrize("default", ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_syscalls_newer_than_the_profile_fail_with_enosys(default):
    """As with runc: libc falls back (clone3 -> clone, close_range ->
    close) instead of failing, or dying, on a profile older than them."""
    strict = {"defaultAction": default, "syscalls": [{"names": list(_PYTHON_NEEDS), "action": "SCMP_ACT_ALLOW"},
                                                   {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}]}
    assert run_filtered(compile_seccomp(strict), _NEW_PROBES[1:]) == [(-1, errno.ENOSYS)] * 2
    if default == "SCMP_ACT_ERRNO":
        assert run_filtered(compile_seccomp(strict), _NEW_PROBES[:1]) == [(-1, errno.EPERM)]


def test_syscalls_older_than_the_newest_named_take_the_default():
    strict = {"defaultAction": "SCMP_ACT_ERRNO",
              "syscalls": [{"names": [*_PYTHON_NEEDS, "close_range"], "action": "SCMP_ACT_ALLOW"}]}
    assert run_filtered(compile_seccomp(strict), _NEW_PROBES) == [(-1, errno.EPERM), (-1, errno.EPERM), (0, 0)]


def test_no_enosys_under_an_allowing_default():
    c = compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule("SCMP_ACT_ERRNO")]})
    assert run_filtered(c, _NEW_PROBES[1:]) == [(-1, errno.EINVAL), (0, 0)]  # the kernel's own answers


@pytest.mark.parametrize("flags", [["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_TSYNC"],
                                   ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], []])
def test_flags_are_accepted_by_the_kernel(flags):
    assert run_filtered(allow_but(rule("SCMP_ACT_ERRNO", errnoRet=38), flags=flags),
                        [("getpgid", 0)]) == [(-1, 38)]


# --- operators: getpgid(pid) with pid compared against 1000 -----------------------

@pytest.mark.parametrize("op, expected", [
    ("SCMP_CMP_NE", [True, False, True]),
    ("SCMP_CMP_LT", [True, False, False]),
    ("SCMP_CMP_LE", [True, True, False]),
    ("SCMP_CMP_EQ", [False, True, False]),
    ("SCMP_CMP_GE", [False, True, True]),
    ("SCMP_CMP_GT", [False, False, True]),
])
def test_operator(op, expected):
    c = allow_but(rule("SCMP_ACT_ERRNO", [{"index": 0, "value": 1000, "op": op}], errnoRet=38))
    assert blocked(run_filtered(c, [("getpgid", 999), ("getpgid", 1000), ("getpgid", 1001)])) == expected


def test_operator_masked_eq_value_is_mask_and_value_two_is_datum():
    c = allow_but(rule("SCMP_ACT_ERRNO", [{"index": 0, "value": 0xFF00, "valueTwo": 0x1200,
                                            "op": "SCMP_CMP_MASKED_EQ"}], errnoRet=38))
    probes = [("getpgid", 0x1234), ("getpgid", 0x12FF), ("getpgid", 0x1334), ("getpgid", 0xFF00)]
    assert blocked(run_filtered(c, probes)) == [True, True, False, False]


def test_operator_compares_all_64_bits():
    c = allow_but(rule("SCMP_ACT_ERRNO", [{"index": 0, "value": 2**32 + 5, "op": "SCMP_CMP_EQ"}], errnoRet=38))
    assert blocked(run_filtered(c, [("getpgid", 2**32 + 5), ("getpgid", 5)])) == [True, False]


def test_args_on_different_indexes_must_all_match():
    c = allow_but(rule("SCMP_ACT_ERRNO", [{"index": 0, "value": 1001, "op": "SCMP_CMP_EQ"},
                                          {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}], errnoRet=38))
    probes = [("getpgid", 1001, 5), ("getpgid", 1001, 6), ("getpgid", 1002, 5)]
    assert blocked(run_filtered(c, probes)) == [True, False, False]


def test_args_on_one_index_become_separate_rules_like_runc():
    c = allow_but(rule("SCMP_ACT_ERRNO", [{"index": 0, "value": 1001, "op": "SCMP_CMP_EQ"},
                                          {"index": 0, "value": 1002, "op": "SCMP_CMP_EQ"}], errnoRet=38))
    probes = [("getpgid", 1001), ("getpgid", 1002), ("getpgid", 1003)]
    assert blocked(run_filtered(c, probes)) == [True, True, False]


def test_arg_rule_on_mkdir_mode():
    c = allow_but({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                   "args": [{"index": 1, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]})
    path = ctypes.create_string_buffer(b"/nonexistent-dir/x")  # never created: ENOENT if allowed
    res = run_filtered(c, [("mkdir", ctypes.addressof(path), 0o4755), ("mkdir", ctypes.addressof(path), 0o755)])
    assert res == [(-1, 38), (-1, errno.ENOENT)]


# --- SCMP_ACT_NOTIFY: listener fd sent to listenerPath, an agent answers ---------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


def _agent(server, found):
    """A minimal seccomp agent: take the state and fd, fail one call with 38."""
    import fcntl
    conn, _ = server.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
    found["state"] = json.loads(msg)
    with os.fdopen(fds[0], "rb", buffering=0) as listener:
        notif = bytearray(80)
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notif)
        nid, _pid, _flags, found["nr"], _arch, _ip, found["arg0"] = struct.unpack_from("<QIIiIQQ", notif)
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, struct.pack("<QqiI", nid, 0, -38, 0))


def test_notify_sends_listener_to_agent_which_answers(tmp_path):
    sock_path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    found = {}
    agent = threading.Thread(target=_agent, args=(server, found), daemon=True)
    agent.start()
    c = allow_but(rule("SCMP_ACT_NOTIFY", [{"index": 0, "value": 4242, "op": "SCMP_CMP_EQ"}]),
                  listenerPath=sock_path, listenerMetadata="hello")
    state = {"ociVersion": "1.3.0", "id": "t", "status": "creating", "pid": 1, "bundle": "/b"}

    def send_listener(fd):  # what the runtime does with the listener fd
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(c.listener_path)
            socket.send_fds(s, [notify_state(state, c)], [fd])
        os.close(fd)

    res = run_filtered(c, [("getpgid", 4242), ("getpgid", 0)], after_install=send_listener)
    agent.join(10)
    server.close()
    assert res[0] == (-1, 38) and res[1][1] == 0
    assert found["nr"] == nr("getpgid") and found["arg0"] == 4242
    assert found["state"] == {"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 1,
                              "metadata": "hello", "state": state}


def test_wait_killable_recv_is_accepted_with_a_listener():
    c = allow_but(rule("SCMP_ACT_NOTIFY", [{"index": 0, "value": 4242, "op": "SCMP_CMP_EQ"}]),
                  listenerPath="/unused", flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                                                 "SECCOMP_FILTER_FLAG_TSYNC"])
    fds = []
    assert run_filtered(c, [("getpgid", 0)], after_install=fds.append)[0][1] == 0
