"""Linux fields of config.json proven from inside real containers run by the
installed ocirt (root needed; fixtures in conftest.py)."""
import json
import os
import subprocess

import pytest


def out_dir(oci, b):
    """A host directory bind-mounted at /out."""
    path = os.path.join(b.path, "out")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
    b.config["mounts"].append({"destination": "/out", "type": "bind", "source": path, "options": ["rbind"]})
    return path


def test_umask_and_groups(oci):
    b = oci.bundle("grep -E '^(Umask|Groups)' /proc/self/status")
    b.process["user"] = {"uid": 1000, "gid": 1000, "umask": 0o27, "additionalGids": [5]}
    assert oci.run(b).out.split() == ["Umask:", "0027", "Groups:", "5"]


def test_default_umask_is_0022(oci):
    assert oci.run(oci.bundle("umask")).out.strip() == "0022"


def test_tmpcopyup_copies_what_the_tmpfs_hides(oci):
    b = oci.bundle("cat /etc/passwd | head -1; stat -c '%a %u' /etc/group; "
                   "touch /etc/new && echo writable; grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9")
    b.config["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                               "options": ["tmpcopyup", "nosuid"]})
    out = oci.run(b).out.split("\n")
    assert out[0].startswith("root:x:0:0")
    assert out[1] == "644 0" and out[2] == "writable" and out[3] == "tmpfs"
    assert not os.path.exists(os.path.join(oci.rootfs, "etc", "new"))


def test_memory_policy_bind(oci):
    b = oci.bundle("grep -m1 -o 'bind:0' /proc/self/numa_maps || grep -m1 . /proc/self/numa_maps")
    b.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    assert oci.run(b).out.strip() == "bind:0"


def test_memory_policy_on_a_missing_node_is_an_error(oci):
    b = oci.bundle("true")
    b.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "1000"}
    res = oci.run(b, check=False)
    assert res.rc != 0 and "linux.memoryPolicy" in res.err


def test_intel_rdt_without_resctrl_names_the_field(oci):
    with open("/proc/self/mountinfo") as f:
        if " resctrl " in f.read():
            pytest.skip("resctrl is mounted here")
    b = oci.bundle("true")
    b.config["linux"]["intelRdt"] = {"closID": "x"}
    res = oci.run(b, check=False)
    assert res.rc != 0 and res.err.startswith("ocirt: config.json: linux.intelRdt: "), res


def test_update_of_rdt_schemata_needs_a_group_of_the_container(oci):
    b = oci.bundle("sleep 100")
    oci.create(b)
    res = oci("update", "--l3-cache-schema", "L3:0=f", b.cid, check=False)
    assert res.rc != 0 and res.err == "ocirt: the container has no Intel RDT group: its schemata cannot be updated\n"
    with open(os.path.join(oci.root, b.cid, "state.json")) as f:
        assert "intelRdt" not in json.load(f)["config"]["linux"]  # the config kept as it was


@pytest.mark.parametrize("field,value", [("mountLabel", "system_u:object_r:container_file_t:s0"),
                                         ("process.selinuxLabel", "system_u:system_r:container_t:s0"),
                                         ("process.apparmorProfile", "docker-default")])
def test_lsm_fields_without_the_lsm_are_errors(oci, field, value):
    if os.path.exists("/sys/fs/selinux/enforce") or os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("an LSM is active here")
    b = oci.bundle("true")
    if field.startswith("process."):
        b.process[field.split(".")[1]] = value
    else:
        b.config["linux"][field] = value
    res = oci.run(b, check=False)
    assert res.rc != 0 and field.split(".")[-1] in res.err, res


def test_capability_the_runtime_lacks_is_skipped(oci):
    with open("/proc/self/status") as f:
        bnd = int([l for l in f if l.startswith("CapBnd:")][0].split()[1], 16)
    missing = [i for i in range(41) if not bnd >> i & 1]
    if not missing:
        pytest.skip("this root holds every capability")
    from ocirt.plan.process import CAPABILITIES
    b = oci.bundle("grep CapEff /proc/self/status")
    b.process["capabilities"] = dict.fromkeys(("bounding", "effective", "permitted"),
                                              ["CAP_KILL", CAPABILITIES[missing[0]]])
    assert oci.run(b).out.split()[1] == "%016x" % (1 << CAPABILITIES.index("CAP_KILL"))


def test_device_modes_and_strictness(oci):
    b = oci.bundle("stat -c '%F %t:%T %a %u:%g' /dev/mynull; ls /dev/sub")
    b.config["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 7, "gid": 8},
        {"path": "/dev/sub/fifo", "type": "p"}]
    out = oci.run(b).out.split("\n")
    assert out[0] == "character special file 1:3 620 7:8"
    assert out[1] == "fifo"
    b = oci.bundle("true")
    b.config["linux"]["devices"] = [{"path": "/bin/busybox", "type": "c", "major": 1, "minor": 3}]
    res = oci.run(b, check=False)
    assert res.rc != 0 and "linux.devices[0]" in res.err


def test_start_container_hook_state_is_seen_from_the_container(oci):
    b = oci.bundle("true")
    out = out_dir(oci, b)
    b.config["hooks"] = {
        # before pivot_root: the path is the runtime's view of the mount namespace
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/cc"]}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/sc"]}]}
    b.config["annotations"] = {"pid": "not-a-pid", "status": "x"}
    oci.create(b)
    host_pid = oci.state(b.cid)["pid"]
    oci("start", b.cid)
    cc = json.load(open(os.path.join(out, "cc")))
    sc = json.load(open(os.path.join(out, "sc")))
    assert (cc["status"], cc["pid"]) == ("creating", 1) and (sc["status"], sc["pid"]) == ("created", 1)
    assert sc["id"] == b.cid and sc["annotations"] == {"pid": "not-a-pid", "status": "x"}
    assert host_pid != 1


def test_failing_start_container_hook_fails_start_with_its_error(oci):
    b = oci.bundle("true")
    b.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    oci.create(b)
    res = oci("start", b.cid, check=False)
    assert res.rc != 0 and "hooks.startContainer[0]" in res.err, res
    assert oci.status(b.cid) == "stopped"


def test_cwd_is_created(oci):
    b = oci.bundle("pwd")
    b.process["cwd"] = "/made/here"
    b.config["root"]["readonly"] = False
    rootfs = os.path.join(oci.base, "rootfs-copy")
    subprocess.run(["cp", "-a", oci.rootfs, rootfs], check=True)
    b.config["root"]["path"] = rootfs
    assert oci.run(b).out.strip() == "/made/here"


def test_state_json_holds_the_annotations_once(oci):
    """`state` prints them (runc's format) from the config kept in state.json."""
    b = oci.bundle("true")
    b.config["annotations"] = {"io.example.once": "v"}
    oci.create(b)
    assert oci.state(b.cid)["annotations"] == {"io.example.once": "v"}
    assert open(os.path.join(oci.root, b.cid, "state.json")).read().count("io.example.once") == 1


def test_helper_errors_have_go_text(oci):
    """ocirt-init is built on musl, whose strerror differs from glibc's (and
    Go's, which clients match): "symbolic link loop" would be its ELOOP."""
    b = oci.bundle("true")
    os.symlink("loop", os.path.join(out_dir(oci, b), "loop"))
    b.process["cwd"] = "/out/loop"
    res = oci.run(b, check=False)
    assert res.rc != 0 and "process.cwd: chdir /out/loop: too many levels of symbolic links" in res.err, res


@pytest.mark.parametrize("soft,hard", [(3, 3), (4, 1000)])
def test_nofile_below_the_inits_fds_still_starts_with_exactly_that_limit(oci, soft, hard):
    """create's init holds exec.fifo's path open until `start`; a lower
    RLIMIT_NOFILE is set once it has the fifo open (runc's create fails)."""
    b = oci.bundle("sleep 60")
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]
    oci.create(b)
    oci("start", b.cid)
    pid = oci.state(b.cid)["pid"]
    with open(f"/proc/{pid}/limits") as f:
        line = next(ln for ln in f if ln.startswith("Max open files"))
    assert line.split()[3:5] == [str(soft), str(hard)], line
    assert oci.status(b.cid) == "running"
    oci("delete", "--force", b.cid)
