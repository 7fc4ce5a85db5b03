"""config.md: mounts, their order, the Linux mount options, bind mounts, idmapped mounts."""
import json
import os
import subprocess

import pytest

from .harness import MASKED, applied_or_rejected, leftovers, parse_mountinfo, read_only_dev, userns_bundle

clause = pytest.mark.clause


def mounted(ct, b, point):
    """The container's mountinfo entries at `point`, in mount order."""
    out = ct.run(b.sh("cat /proc/self/mountinfo")).out
    entries = [m for m in parse_mountinfo(out) if m["point"] == point]
    assert entries, f"nothing mounted at {point}"
    return entries


def tmpfs_with(ct, options, point="/mnt/a"):
    b = ct.bundle()
    b.mount(point, "tmpfs", "tmpfs", options)
    return mounted(ct, b, point)[-1]


def has(flag):
    return lambda m: flag in m["opts"] or flag in m["super"]


def lacks(flag):
    return lambda m: flag not in m["opts"] and flag not in m["super"]


def tagged(prefix):
    return lambda m: any(t.startswith(prefix) for t in m["tags"])


def untagged(prefix):
    return lambda m: not any(t.startswith(prefix) for t in m["tags"])


def accepted(m):
    return True


# Options the spec marks MUST, each with what mountinfo must show after it.  A
# positive option comes after its negation, so that it can be seen to apply.
MUST_OPTIONS = [
    (["async"], lacks("sync")), (["noatime", "atime"], lacks("noatime")), (["defaults"], has("rw")),
    (["nodev", "dev"], lacks("nodev")), (["nodiratime", "diratime"], lacks("nodiratime")),
    (["dirsync"], has("dirsync")), (["noexec", "exec"], lacks("noexec")), (["iversion"], accepted),
    (["lazytime"], has("lazytime")), (["loud"], accepted), (["noatime"], has("noatime")),
    (["nodev"], has("nodev")), (["nodiratime"], has("nodiratime")), (["noexec"], has("noexec")),
    (["noiversion"], accepted), (["lazytime", "nolazytime"], lacks("lazytime")),
    (["norelatime"], accepted), (["nostrictatime"], accepted), (["nosuid"], has("nosuid")),
    (["relatime"], has("relatime")), (["ro"], has("ro")), (["ro", "rw"], has("rw")),
    (["silent"], accepted), (["strictatime"], lacks("relatime")), (["nosuid", "suid"], lacks("nosuid")),
    (["sync"], has("sync")), (["private"], untagged("shared:")), (["rprivate"], untagged("shared:")),
    (["shared"], tagged("shared:")), (["rshared"], tagged("shared:")), (["slave"], untagged("shared:")),
    (["rslave"], untagged("shared:")), (["unbindable"], tagged("unbindable")),
    (["runbindable"], tagged("unbindable")),
]


@clause("config.mounts.options.must.1", "config.mounts.custom.1")
@pytest.mark.parametrize("options,check", MUST_OPTIONS, ids=["+".join(o) for o, _ in MUST_OPTIONS])
def test_must_mount_option(ct, options, check):
    m = tmpfs_with(ct, options)
    assert check(m), m


# Recursive (AT_RECURSIVE) options the spec marks SHOULD, applied to a bind mount.
SHOULD_OPTIONS = [
    (["rro"], has("ro")), (["rrw"], has("rw")), (["rnosuid"], has("nosuid")), (["rsuid"], lacks("nosuid")),
    (["rnodev"], has("nodev")), (["rdev"], lacks("nodev")), (["rnoexec"], has("noexec")),
    (["rexec"], lacks("noexec")), (["rnoatime"], has("noatime")), (["ratime"], lacks("noatime")),
    (["rnodiratime"], has("nodiratime")), (["rdiratime"], lacks("nodiratime")),
    (["rstrictatime"], lacks("relatime")), (["rrelatime"], has("relatime")), (["rnorelatime"], accepted),
    (["rnostrictatime"], accepted), (["rnosymfollow"], has("nosymfollow")), (["rsymfollow"], lacks("nosymfollow")),
    (["nosymfollow"], has("nosymfollow")), (["nosymfollow", "symfollow"], lacks("nosymfollow")),
]


@clause("config.mounts.options.should.1")
@pytest.mark.parametrize("options,check", SHOULD_OPTIONS, ids=["+".join(o) for o, _ in SHOULD_OPTIONS])
def test_should_mount_option_on_bind(ct, tmp_path, options, check):
    src = tmp_path / "src"
    src.mkdir()
    b = ct.bundle()
    b.mount("/data", "bind", str(src), ["rbind"] + options)
    m = mounted(ct, b, "/data")[-1]
    assert check(m), m


@clause("config.mounts.options.must.1")
def test_remount_option_changes_an_existing_mount(ct):
    b = ct.bundle()
    b.mount("/mnt/a", "tmpfs", "tmpfs", ["rw"])
    b.mount("/mnt/a", "tmpfs", "tmpfs", ["remount", "ro"])
    stack = mounted(ct, b, "/mnt/a")
    assert len(stack) == 1 and "ro" in stack[0]["opts"], stack


@clause("config.mounts.unknown.1")
def test_filesystem_specific_options_reach_the_filesystem(ct):
    m = tmpfs_with(ct, ["nosuid", "size=1m", "mode=701", "nr_inodes=1000"])
    assert {"size=1024k", "mode=701", "nr_inodes=1000"} <= set(m["super"]), m


@clause("runtime.lifecycle.create.1")
@pytest.mark.parametrize("mtype,source,options,point", [
    ("proc", "proc", ["nosuid"], "/proc"), ("sysfs", "sysfs", ["ro", "nosuid"], "/sys"),
    ("tmpfs", "tmpfs", ["size=1m"], "/mnt/t"), ("devpts", "devpts", ["newinstance"], "/mnt/t"),
    ("mqueue", "mqueue", ["nodev"], "/mnt/t"),
])
def test_mount_types(ct, mtype, source, options, point):
    b = ct.bundle()
    b.drop_mount(point)  # crun allows proc and sysfs only at their usual place
    b.mount(point, mtype, source, options, index=0 if point in ("/proc", "/sys") else None)
    assert mounted(ct, b, point)[-1]["fstype"] == mtype


@clause("runtime.lifecycle.create.1", "config.mounts.unknown.1")
def test_overlay_mount(ct, tmp_path):
    for d in ("lower", "upper", "work"):
        (tmp_path / d).mkdir()
    (tmp_path / "lower" / "from-lower").write_text("low\n")
    b = ct.bundle("cat /data/from-lower && echo up > /data/from-upper")
    b.mount("/data", "overlay", "overlay", [f"{d}dir={tmp_path / d}" for d in ("lower", "upper", "work")])
    assert ct.run(b).out == "low\n"
    assert (tmp_path / "upper" / "from-upper").read_text() == "up\n"
    assert not (tmp_path / "lower" / "from-upper").exists()


@clause("config.mounts.order.1")
def test_mounts_in_listed_order(ct):
    b = ct.bundle()
    b.mount("/mnt/b", "tmpfs", "first", ["size=1m"])
    b.mount("/mnt/b", "tmpfs", "second", ["size=2m"])
    stack = mounted(ct, b, "/mnt/b")
    assert [m["source"] for m in stack] == ["first", "second"]


@clause("config.mounts.order.1")
def test_nested_mount_after_its_parent(ct):
    b = ct.bundle("cat /proc/self/mountinfo; ls -d /mnt/a/inner")
    b.mount("/mnt/a", "tmpfs", "outer")
    b.mount("/mnt/a/inner", "tmpfs", "inner")
    out = ct.run(b).out
    points = [m["point"] for m in parse_mountinfo(out)]
    assert points.index("/mnt/a") < points.index("/mnt/a/inner")


@clause("config.mounts.destination.2")
def test_relative_destination_is_relative_to_root(ct):
    b = ct.bundle()
    b.mount("mnt/c", "tmpfs", "relative-dest")
    assert mounted(ct, b, "/mnt/c")[-1]["source"] == "relative-dest"


@clause("runtime.lifecycle.create.1")
def test_bind_mount_rw_shares_host_directory(ct, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "from-host").write_text("host\n")
    b = ct.bundle("cat /data/from-host; echo container > /data/from-container")
    b.mount("/data", "bind", str(src), ["rbind", "rw"])
    assert ct.run(b).out == "host\n"
    assert (src / "from-container").read_text() == "container\n"


@clause("runtime.lifecycle.create.1")
def test_bind_mount_ro(ct, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    b = ct.bundle("echo x > /data/f 2>/dev/null && echo WROTE; grep ' /data ' /proc/self/mountinfo")
    b.mount("/data", "bind", str(src), ["bind", "ro"])
    out = ct.run(b).out
    assert "WROTE" not in out and not (src / "f").exists()
    assert "ro" in out.split()[5].split(",")


@clause("runtime.lifecycle.create.1")
def test_bind_mount_without_type_and_relative_source(ct):
    b = ct.bundle("cat /data/marker")
    os.makedirs(os.path.join(b.path, "srcdir"))
    with open(os.path.join(b.path, "srcdir", "marker"), "w") as f:
        f.write("relative\n")
    b.config["mounts"].append({"destination": "/data", "source": "srcdir", "options": ["rbind"]})
    assert ct.run(b).out == "relative\n"


@clause("runtime.lifecycle.create.1")
def test_bind_mount_of_a_file(ct, tmp_path):
    f = tmp_path / "hostfile"
    f.write_text("file content\n")
    b = ct.bundle("cat /out/bound")
    b.mount("/out/bound", "bind", str(f), ["bind", "ro"])
    assert ct.run(b).out == "file content\n"


@clause("config.mounts.idmap.3", "runtime.errors.1")
def test_idmap_without_mappings_or_userns_is_rejected(ct, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    b = ct.bundle()
    b.mount("/data", "bind", str(src), ["rbind", "idmap"])
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []


def idmap_supported(ct):
    """The runtime's features document claims idmapped mounts (features-linux.md)."""
    res = ct.rt("features", check=False)
    if res.rc != 0:
        return False
    feats = json.loads(res.out).get("linux", {})
    return bool(feats.get("mountExtensions", {}).get("idmap", {}).get("enabled"))


@clause("config.mounts.idmap.1", "config.mounts.idmap.2")
def test_idmapped_bind_mount_applied_or_rejected(ct, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "owned-by-root").write_text("x")
    b = ct.bundle("stat -c %u:%g /data/owned-by-root")
    m = b.mount("/data", "bind", str(src), ["rbind", "idmap"])
    # Same form as linux.uidMappings (so that the container's own mappings make on-disk 0
    # the container's root): containerID is the id on the source filesystem, hostID the id
    # it shows as through the mount (crun 1.8 and the kernel's mount_setattr agree).
    m["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    m["gidMappings"] = [{"containerID": 0, "hostID": 2000, "size": 1}]
    out = applied_or_rejected(ct, b, claimed=lambda: idmap_supported(ct))
    if out is not None:
        assert out.strip() == "1000:2000"


@clause("config.mounts.idmap.4", "config.mounts.idmap.1")
def test_idmap_without_mappings_takes_the_user_namespace_ones(ct, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "owned-by-root").write_text("x")
    b = userns_bundle(ct, "stat -c %u:%g /data/owned-by-root")
    b.mount("/data", "bind", str(src), ["rbind", "idmap"])
    out = applied_or_rejected(ct, b, claimed=lambda: idmap_supported(ct))
    if out is not None:
        # Unmapped, host root would show as the overflow id (65534).
        assert out.strip() == "0:0"


@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
@clause("config.mounts.idmap.1", "config.mounts.options.should.1")
def test_ridmap_maps_the_mounts_below_and_idmap_only_the_top(ct, tmp_path, opt):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "top").write_text("x")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")], check=True)
    try:
        (src / "sub" / "below").write_text("x")
        b = ct.bundle("stat -c %u /data/top /data/sub/below")
        m = b.mount("/data", "bind", str(src), ["rbind", opt])
        m["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
        m["gidMappings"] = [{"containerID": 0, "hostID": 2000, "size": 1}]
        out = applied_or_rejected(ct, b, claimed=lambda: idmap_supported(ct))
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=True)
    if out is not None:
        assert out.split() == ["1000", "1000" if opt == "ridmap" else "0"]


def test_bind_source_only_the_hosts_root_may_enter_mounts_in_a_user_namespace(ct, tmp_path):
    """Bind sources are opened as the host's root (as runc does), not as the
    container's mapped root (host uid 100000), which may not enter this
    directory: it mounts, shows as the overflow id's, and stays closed."""
    src = tmp_path / "closed"
    src.mkdir()
    (src / "file").write_text("x")
    os.chmod(src, 0o700)
    b = userns_bundle(ct, "stat -c '%u:%g %a' /data; ls /data 2>&1; echo rc=$?")
    b.mount("/data", "bind", str(src), ["rbind"])
    assert ct.run(b).out.splitlines() == ["65534:65534 700", "ls: can't open '/data': Permission denied", "rc=1"]


@pytest.mark.parametrize("idmap", [False, True], ids=["bind", "idmapped"])
def test_bind_of_a_read_only_host_mount_stays_read_only_in_a_user_namespace(ct, tmp_path, idmap):
    """The sources opened as the host's root are the container's copies of
    the host's mounts (as with runc), whose read-only flag the kernel locks
    for a less privileged mount namespace: the container's root, who may
    remount its other binds, cannot make this one writable. An idmapped
    bind is made from such a copy too (a tree cloned in the host's mount
    namespace would come unlocked)."""
    src, rw = tmp_path / "ro", tmp_path / "rw"
    src.mkdir()
    rw.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src)], check=True)
    try:
        # read-only as a mount, not as a filesystem: what the lock keeps
        subprocess.run(["mount", "-o", "remount,bind,ro", str(src)], check=True)
        b = userns_bundle(ct, "mount -o remount,bind,ro /mnt/a && mount -o remount,bind,rw /mnt/a && echo own; "
                              "mount -o remount,bind,rw /data 2>/dev/null || echo locked; touch /data/new 2>/dev/null")
        for k in ("bounding", "effective", "permitted"):
            b.process["capabilities"][k].append("CAP_SYS_ADMIN")
        b.mount("/data", "bind", str(src), ["rbind", "idmap"] if idmap else ["rbind"])
        b.mount("/mnt/a", "bind", str(rw), ["rbind"])
        res = ct.run(b, check=False)
        assert not (src / "new").exists()
    finally:
        subprocess.run(["umount", "-l", str(src)], check=True)
    if idmap and res.rc != 0 and not idmap_supported(ct):
        assert leftovers(ct.rt, b, ct.rootfs) == []  # a clean rejection
        return
    assert res.out.split() == ["own", "locked"], res


# ------------------------------------------------------------------ /dev and /proc as runc's users set them

@clause("runtime.lifecycle.create.1", "linux.default-devices.1", "linux.devices.1")
def test_read_only_dev_is_filled_then_read_only(ct):
    b = read_only_dev(ct.bundle(
        "{ echo x > /dev/x; } 2>&1; echo y > /dev/null && echo > /dev/mynull && echo null-ok; "
        "echo z > /dev/shm/z && echo shm-ok; test -c /dev/pts/ptmx && echo pts-ok; "
        "readlink /dev/fd; readlink /dev/ptmx; cat /proc/self/mountinfo"))
    out = ct.run(b).out
    lines = out.splitlines()
    assert "Read-only file system" in lines[0], lines[0]
    assert lines[1:6] == ["null-ok", "shm-ok", "pts-ok", "/proc/self/fd", "pts/ptmx"], out
    mounts = {m["point"]: m for m in parse_mountinfo(out)}
    assert {"ro", "nosuid"} <= set(mounts["/dev"]["opts"]), mounts["/dev"]  # its other flags kept
    for point in ("/dev/pts", "/dev/shm", "/dev/mqueue"):
        assert "rw" in mounts[point]["opts"], mounts[point]


def proc_mount(b, **m):
    b.config["mounts"][0] = {"destination": "/proc", **m}
    return b


@clause("runtime.lifecycle.create.1", "linux.maskedPaths.1", "linux.readonlyPaths.1")
@pytest.mark.parametrize("mtype", ["bind", "none"])
def test_proc_as_rbind_of_the_hosts_proc_keeps_masks(ct, mtype):
    masked = [p for p in MASKED if p.startswith("/proc/") and os.path.isfile(p)]
    assert masked, "no masked /proc file on this host"
    b = proc_mount(ct.bundle("stat -c %t:%T " + " ".join(masked) + "; { echo x > /proc/sys/kernel/hostname; } 2>&1;"
                             "cat /proc/self/mountinfo"),
                   type=mtype, source="/proc", options=["rbind", "nosuid"])
    out = ct.run(b).out
    lines = out.splitlines()
    assert lines[:len(masked)] == ["1:3"] * len(masked), out  # /dev/null over each
    assert "Read-only file system" in lines[len(masked)], out
    assert [m["fstype"] for m in parse_mountinfo(out) if m["point"] == "/proc"] == ["proc"]


@clause("runtime.errors.1")
@pytest.mark.parametrize("m", [dict(type="tmpfs", source="tmpfs"),
                               dict(type="bind", source="/etc", options=["rbind"])], ids=["tmpfs", "bind-of-etc"])
def test_only_procfs_at_proc(ct, m):
    b = proc_mount(ct.bundle("true"), **m)
    res = ct.run(b, check=False)
    assert res.rc != 0 and res.err.strip(), res
    assert leftovers(ct.rt, b, ct.rootfs) == []
