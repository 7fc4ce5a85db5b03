"""Idmapped bind mounts (idmap, ridmap, mounts[].uidMappings) and bind
remounts in a user namespace, on real containers (root needed)."""
import glob
import os
import subprocess
import tempfile

import pytest

USERNS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
          "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}


def in_userns(b):
    """A new user namespace mapping root to 100000, with the mounts it can make."""
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"].update(USERNS)
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    for m in b.config["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    return b


def bind(b, src, options, **fields):
    b.config["mounts"].append(dict(destination="/data", type="bind", source=str(src),
                                   options=options, **fields))


def maps(host_uid, host_gid):
    return {"uidMappings": [{"containerID": 0, "hostID": host_uid, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": host_gid, "size": 1}]}


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    os.chmod(d, 0o755)
    return d


def test_idmapped_mount_lets_the_mapped_user_write_as_the_owner_on_disk(oci, src):
    """Root-owned on disk, the directory shows as uid 1000 through the mount: a
    process running as 1000 may write in it, and its file lands as root's."""
    b = oci.bundle("stat -c %u:%g /data; touch /data/new && echo WROTE")
    b.process["user"] = {"uid": 1000, "gid": 2000}
    bind(b, src, ["bind", "idmap"], **maps(1000, 2000))
    assert oci.run(b).out.split() == ["1000:2000", "WROTE"]
    st = os.stat(src / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmap_in_a_user_namespace_takes_its_mappings(oci, src):
    """Without mappings of its own the mount uses the container's: the
    container's root writes files that are root's on disk, not 100000's."""
    b = in_userns(oci.bundle("stat -c %u:%g /data; touch /data/new; grep ' /data ' /proc/self/mountinfo"))
    bind(b, src, ["rbind", "idmap"])
    out = oci.run(b).out.splitlines()
    assert out[0] == "0:0" and "idmapped" in out[1].split()[5]
    assert os.stat(src / "new").st_uid == 0


def test_idmap_on_a_filesystem_without_support_fails_cleanly(oci):
    """procfs cannot be idmapped: the error names the mount, and nothing is
    left, not even the process that held the mapping's user namespace."""
    before = oci.host_view()
    b = oci.bundle("true")
    bind(b, "/proc/sys", ["rbind", "idmap"], **maps(4242000, 4242000))
    res = oci.run(b, check=False)
    assert res.rc != 0
    assert "mounts[" in res.err and "idmap /proc/sys" in res.err, res
    assert oci.host_view() == before
    holders = [p for p in glob.glob("/proc/[0-9]*/uid_map") if _reads(p).split()[1:2] == ["4242000"]]
    assert holders == []


def _reads(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


@pytest.fixture
def locked_tmpfs():
    """A host tmpfs mounted nosuid,nodev,noexec: flags a user namespace cannot
    clear. Outside pytest's 0700 tmp dirs: the container's root opens it."""
    d = tempfile.mkdtemp(prefix="ocirt-locked-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,size=1m,mode=755", "tmpfs", d],
                   check=True)
    os.mkdir(os.path.join(d, "sub"))
    yield os.path.join(d, "sub")
    subprocess.run(["umount", "-l", d], check=True)
    os.rmdir(d)


def test_read_only_bind_in_a_user_namespace_keeps_the_locked_flags(oci, locked_tmpfs):
    b = in_userns(oci.bundle("grep ' /data ' /proc/self/mountinfo; touch /data/x 2>/dev/null && echo WROTE; true"))
    bind(b, locked_tmpfs, ["bind", "ro"])
    out = oci.run(b).out
    assert "WROTE" not in out
    assert set(out.split()[5].split(",")) >= {"ro", "nosuid", "nodev", "noexec"}

