"""linux.seccomp compilation: validation errors, flags, runc's rules for
unknown names and args, the cache, and the notify payload. No root needed."""
import json
import os
import subprocess
import sys

import pytest

from ocirt.errors import OcirtError
from ocirt.plan import seccomp as S
from ocirt.plan.seccomp import notify_state
from ocirt.seccomp import compile_seccomp

PODMAN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "conformance", "fixtures", "clients", "podman-config.json")
TSYNC, LOG, SPEC_ALLOW, NEW_LISTENER, TSYNC_ESRCH, WAIT_KILLABLE = 1, 2, 4, 8, 16, 32


def sec(**kw):
    base = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}]}
    base.update(kw)
    return base


def error(section):
    with pytest.raises(OcirtError) as e:
        compile_seccomp(section)
    return str(e.value)


def podman():
    with open(PODMAN) as f:
        return json.load(f)["linux"]["seccomp"]


# --- errors name the field ---------------------------------------------------

@pytest.mark.parametrize("section, message", [
    (sec(syscalls=[{"names": ["a"], "action": "SCMP_ACT_ALLOW"}] * 3
         + [{"names": ["getpgid"], "action": "SCMP_ACT_FOO"}]),
     'config.json: linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"'),
    ({"syscalls": []}, "config.json: linux.seccomp.defaultAction: is required"),
    (sec(defaultAction="SCMP_ACT_NOPE"), 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
    (sec(defaultAction="SCMP_ACT_NOTIFY", listenerPath="/x"),
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    (sec(defaultErrnoRet=5),
     "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not take an errno"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]),
     "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL does not take an errno"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]),
     "linux.seccomp.syscalls[0].errnoRet: must be an errno number from 0 to 65535"),
    (sec(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
     'linux.seccomp.architectures[1]: unsupported architecture "SCMP_ARCH_VAX"'),
    (sec(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"]),
     'linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_BOGUS"'),
    (sec(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
     "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY"),
    (sec(syscalls=[{"names": [], "action": "SCMP_ACT_ERRNO"}]),
     "linux.seccomp.syscalls[0].names: must list at least one syscall"),
    (sec(syscalls=[{"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]),
     "linux.seccomp.syscalls[0].names[1]: must be a non-empty syscall name"),
    (sec(syscalls=[{"names": ["getpgid"]}]), "linux.seccomp.syscalls[0].action: is required"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].index: must be an argument index from 0 to 5"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                             {"index": 0, "value": 1, "op": "SCMP_CMP_XOR"}]}]),
     'linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_XOR"'),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value: must be an unsigned 64-bit integer"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "valueTwo": 2**64, "op": "SCMP_CMP_MASKED_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].valueTwo: must be an unsigned 64-bit integer"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value: is required"),
    (sec(listenerMetadata="m"), "linux.seccomp.listenerMetadata: must not be set without listenerPath"),
    (sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]),
     "linux.seccomp.listenerPath: is required when a rule uses SCMP_ACT_NOTIFY"),
    (sec(listenerPath="/l", syscalls=[{"names": ["getpgid", "write"], "action": "SCMP_ACT_NOTIFY"}]),
     'linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for "write"'),
    (sec(syscalls={"names": ["getpgid"]}), "linux.seccomp.syscalls: must be an array"),
])
def test_errors_name_the_field(section, message):
    assert message in error(section)


def test_where_prefixes_the_path():
    with pytest.raises(OcirtError) as e:
        compile_seccomp(sec(defaultAction="X"), where="process.seccomp")
    assert str(e.value).startswith("config.json: process.seccomp.defaultAction: ")


# --- what is compiled --------------------------------------------------------

def test_program_is_sock_filter_array_ending_in_ret():
    c = compile_seccomp(sec())
    assert c.bpf and len(c.bpf) % 8 == 0
    code = int.from_bytes(c.bpf[-8:-6], "little")
    assert code == 0x06  # BPF_RET | BPF_K


def test_tuples_are_the_spec_names():
    assert "SCMP_ACT_NOTIFY" in S.SECCOMP_ACTIONS and len(S.SECCOMP_ACTIONS) == 9
    assert S.SECCOMP_OPERATORS == ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                                   "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
    assert set(S.SECCOMP_FLAGS) == {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}


@pytest.mark.parametrize("arch", S.SECCOMP_ARCHES)
def test_every_listed_arch_is_known_to_libseccomp(arch):
    from ocirt._native._lib import lib
    assert lib.ocirt_scmp_arch(arch[len("SCMP_ARCH_"):].lower().encode()) != 0


def test_arch_of_other_byte_order_is_a_clear_error():
    assert error(sec(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X"])).endswith(
        "linux.seccomp.architectures[1]: cannot add architecture to the filter: "
        "its byte order differs from the native architecture's")


def test_listed_archs_are_in_the_filter():
    one = compile_seccomp(sec(architectures=["SCMP_ARCH_X86_64"]))
    three = compile_seccomp(sec(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]))
    audit_arch_i386 = (0x40000003).to_bytes(4, "little")
    assert audit_arch_i386 in three.bpf and audit_arch_i386 not in one.bpf


def test_unknown_syscall_names_are_skipped_like_runc():
    known = compile_seccomp(sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}]))
    mixed = compile_seccomp(sec(syscalls=[{"names": ["getpgid", "no_such_syscall_2099"], "action": "SCMP_ACT_ERRNO"},
                                          {"names": ["also_unknown"], "action": "SCMP_ACT_KILL"}]))
    assert mixed.bpf == known.bpf


def test_rule_equal_to_default_is_skipped():
    plain = compile_seccomp(sec(syscalls=[]))
    same = compile_seccomp(sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ALLOW"}]))
    assert same.bpf == plain.bpf
    errno_default = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}
    assert (compile_seccomp(dict(errno_default, syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                                           "errnoRet": 38}])).bpf
            == compile_seccomp(errno_default).bpf)


def test_errno_defaults_to_eperm():
    assert (compile_seccomp(sec()).bpf
            == compile_seccomp(sec(syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])).bpf)
    assert (compile_seccomp(sec(defaultAction="SCMP_ACT_ERRNO", syscalls=[])).bpf
            == compile_seccomp(sec(defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=1, syscalls=[])).bpf)


# --- flags ----------------------------------------------------------------------

@pytest.mark.parametrize("section, flags", [
    (sec(), SPEC_ALLOW),  # runc and crun default when `flags` is absent
    (sec(flags=[]), 0),
    (sec(flags=["SECCOMP_FILTER_FLAG_LOG"]), LOG),
    (sec(flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]), TSYNC | SPEC_ALLOW),
    (sec(listenerPath="/l", flags=[], syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]),
     NEW_LISTENER),
    (sec(listenerPath="/l", flags=["SECCOMP_FILTER_FLAG_TSYNC"],
         syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]),
     TSYNC | NEW_LISTENER | TSYNC_ESRCH),
    (sec(listenerPath="/l", flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
         syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]),
     WAIT_KILLABLE | NEW_LISTENER),
])
def test_flags(section, flags):
    assert compile_seccomp(section).flags == flags


def test_listener_fields_are_returned():
    c = compile_seccomp(sec(listenerPath="/run/agent.sock", listenerMetadata="meta",
                            syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]))
    assert (c.listener_path, c.listener_metadata) == ("/run/agent.sock", "meta")
    assert compile_seccomp(sec()).listener_path is None


# --- cache --------------------------------------------------------------------------

def test_cache_miss_writes_and_hit_returns_the_same(tmp_path):
    cache = tmp_path / "seccomp-cache"
    first = compile_seccomp(podman(), str(cache))
    files = os.listdir(cache)
    assert len(files) == 1 and len(files[0]) == 64  # sha256 hex, no tmp file left
    assert compile_seccomp(podman(), str(cache)) == first == compile_seccomp(podman())


def test_cache_key_is_canonical_and_content_addressed(tmp_path):
    a = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}]}
    b = {"syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["getpgid"]}], "defaultAction": "SCMP_ACT_ALLOW"}
    compile_seccomp(a, str(tmp_path))
    compile_seccomp(b, str(tmp_path))
    assert len(os.listdir(tmp_path)) == 1
    compile_seccomp(dict(a, defaultAction="SCMP_ACT_LOG"), str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2


def test_cache_hit_does_not_load_libseccomp(tmp_path):
    compile_seccomp(podman(), str(tmp_path))
    code = ("import json, sys; from ocirt.seccomp import compile_seccomp;"
            f"s = json.load(open({PODMAN!r}))['linux']['seccomp'];"
            f"c = compile_seccomp(s, {str(tmp_path)!r});"
            "print(len(c.bpf), 'ocirt._native._lib' in sys.modules, 'hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == [str(len(compile_seccomp(podman()).bpf)), "False", "False"]


def _entry(cache):
    (name,) = os.listdir(cache)
    return os.path.join(cache, name)


def test_stale_library_identity_recompiles(tmp_path):
    good = compile_seccomp(sec(), str(tmp_path))
    path = _entry(tmp_path)
    with open(path, "rb") as f:
        head, _, _ = f.read().partition(b"\n")
    meta = json.loads(head)
    meta["lib"][1] += 1  # as if libseccomp had been replaced (new inode)
    with open(path, "wb") as f:
        f.write(json.dumps(meta).encode() + b"\n" + b"\x06\0\0\0\0\0\0\0")  # "return KILL"
    assert compile_seccomp(sec(), str(tmp_path)) == good
    with open(path, "rb") as f:
        assert json.loads(f.read().partition(b"\n")[0])["lib"][1] == meta["lib"][1] - 1


@pytest.mark.parametrize("content", [b"", b"garbage", b'{"lib": 1}\n', b'{"nope": 1}\nxxxxxxxx'])
def test_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path, content):
    good = compile_seccomp(sec(), str(tmp_path))
    path = _entry(tmp_path)
    with open(path, "wb") as f:
        f.write(content)
    assert compile_seccomp(sec(), str(tmp_path)) == good
    assert os.path.getsize(path) > len(good.bpf)


def test_truncated_program_is_a_miss(tmp_path):
    good = compile_seccomp(sec(), str(tmp_path))
    path = _entry(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-3])
    assert compile_seccomp(sec(), str(tmp_path)) == good


def test_unwritable_cache_only_costs_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert compile_seccomp(sec(), str(blocker / "cache")) == compile_seccomp(sec())
    assert os.listdir(tmp_path) == ["file"]


def test_invalid_section_writes_nothing(tmp_path):
    with pytest.raises(OcirtError):
        compile_seccomp(sec(defaultAction="SCMP_ACT_FOO"), str(tmp_path))
    assert os.listdir(tmp_path) == []


# --- notify payload ---------------------------------------------------------------

def test_notify_state_payload():
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 4422,
             "bundle": "/b", "annotations": {"k": "v"}}
    c = compile_seccomp(sec(listenerPath="/l", listenerMetadata="MKNOD=/dev/null",
                            syscalls=[{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]))
    raw = notify_state(state, c)
    assert not raw.endswith(b"\n")
    assert json.loads(raw) == {"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 4422,
                               "metadata": "MKNOD=/dev/null", "state": state}
    c.listener_metadata = None
    assert "metadata" not in json.loads(notify_state(state, c))
