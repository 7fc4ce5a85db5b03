"""The session keyring, as runc gives it: each container a new one named
`_ses.<id>`, searchable, which an exec'd process joins; with --no-new-keyring
the caller's. The test process first joins a keyring of its own that only
its possessors can see, so the host's session keyring is never touched and
what the container holds shows in its /proc/keys. Needs root."""
import ctypes
import os
import uuid

import pytest

SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_SETPERM = 1, 5
KEY_POS_ALL = 0x3f000000
KEY_USR_SEARCH, KEY_OTH_SEARCH = 0x00080000, 0x00000008

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def keyctl(*args):
    r = _libc.syscall(SYS_KEYCTL, *args)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


@pytest.fixture
def callers_keyring():
    """The name of a new session keyring of this process's (which ocirt
    inherits), visible only to processes that possess it."""
    name = f"ocirt-test.{uuid.uuid4().hex[:8]}"
    serial = keyctl(KEYCTL_JOIN_SESSION_KEYRING, name.encode())
    keyctl(KEYCTL_SETPERM, serial, KEY_POS_ALL)
    yield name
    keyctl(KEYCTL_JOIN_SESSION_KEYRING, None)  # an anonymous one: ours is freed


def keyrings(proc_keys):
    """{description: [(serial, perm)]} of the keyrings in /proc/keys."""
    out = {}
    for line in proc_keys.splitlines():
        f = line.split(None, 8)
        if len(f) == 9 and f[7] == "keyring":
            out.setdefault(f[8].split(":")[0], []).append((int(f[0], 16), int(f[4], 16)))
    return out


def running(oci, b, *flags):
    oci.create(b, *flags)
    oci("start", b.cid)
    return b


def test_the_container_gets_a_new_searchable_session_keyring(oci, callers_keyring):
    b = oci.bundle("cat /proc/keys")
    rings = keyrings(oci.run(b).out)
    assert callers_keyring not in rings
    [(_, perm)] = rings[f"_ses.{b.cid}"]
    assert perm & KEY_USR_SEARCH


def test_no_new_keyring_keeps_the_callers(oci, callers_keyring):
    b = oci.bundle("cat /proc/keys")
    rings = keyrings(oci.run(b, "--no-new-keyring").out)
    assert callers_keyring in rings
    assert f"_ses.{b.cid}" not in rings


def test_in_a_user_namespace_others_may_search_it(oci, callers_keyring):
    from test_mounts_userns import in_userns
    b = in_userns(oci.bundle("cat /proc/keys"))
    rings = keyrings(oci.run(b).out)
    assert callers_keyring not in rings
    [(_, perm)] = rings[f"_ses.{b.cid}"]
    assert perm & KEY_OTH_SEARCH


def test_exec_joins_the_containers_keyring(oci, callers_keyring):
    b = running(oci, oci.bundle("cat /proc/keys >/tmp/k && mv /tmp/k /tmp/init-keys; sleep 60"))
    init_rings = keyrings(oci("exec", b.cid, "sh", "-c", "until cat /tmp/init-keys 2>/dev/null; "
                                                         "do sleep 0.1; done").out)
    rings = keyrings(oci("exec", b.cid, "cat", "/proc/keys").out)
    assert callers_keyring not in rings
    # the init's keyring, and no second one of its name (the init's is visible to root anyway)
    assert rings[f"_ses.{b.cid}"] == init_rings[f"_ses.{b.cid}"]
    oci("delete", "--force", b.cid)


def test_exec_in_a_container_made_with_no_new_keyring_keeps_the_callers(oci, callers_keyring):
    b = running(oci, oci.bundle("sleep 60"), "--no-new-keyring")
    rings = keyrings(oci("exec", b.cid, "cat", "/proc/keys").out)
    assert callers_keyring in rings
    assert f"_ses.{b.cid}" not in rings
    oci("delete", "--force", b.cid)
