"""Configs real clients hand a runtime (fixtures/clients/, README there): podman's and
containerd's as recorded, containerd's CRI for a pod sandbox and a container in it, and
the runtime's own `spec` output. Each goes through create, start, state, exec, kill and
delete; only host-specific bits are rewritten (`client_bundle`), and what the config
asks for is checked from inside the container and from the host."""
import json
import os
import re
import subprocess

import pytest

from .clauses import CONF_DIR
from .harness import (SYSTEMD, cap_mask, cgroup_dir, cgroup_driver, leftovers, named_netns, parse_mountinfo, pid_alive, read,
                      status_field)

clause = pytest.mark.clause
FIXTURES = os.path.join(CONF_DIR, "fixtures", "clients")
# Bind sources that are directories on the client's host; every other missing one is a file.
DIR_DESTINATIONS = {"/dev/shm", "/var/run/secrets/kubernetes.io/serviceaccount"}
LIFECYCLE = ("runtime.scope.1", "runtime.operations.1", "runtime.create.3", "runtime.create.6",
             "runtime.start.4", "runtime.start.5", "runtime.kill.3", "runtime.kill.4", "runtime.state.op.3",
             "runtime.lifecycle.create.1", "runtime.lifecycle.start.1", "runtime.delete.4",
             "runtime.lifecycle.delete.1")


def fixture(name, **values):
    """A fixture's config with its @PLACEHOLDER@s filled (README in fixtures/clients)."""
    text = read(os.path.join(FIXTURES, name))
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    assert not re.search(r"@[A-Z_]+@", text), f"{name}: placeholder left unfilled"
    return json.loads(text)


def cgroups_path(parent, path, cid):
    """A client's cgroupsPath for the suite's driver. With --systemd-cgroup, a
    systemd path as the client gave it (the CRI's, from a kubelet with the
    systemd driver), a cgroupfs one as that client would give it (podman:
    machine.slice:libpod:ID). Otherwise a cgroupfs path under the suite's
    parent: "slice:prefix:name" names the unit prefix-name.scope in that slice."""
    if SYSTEMD:
        if ":" in path:
            return path
        return f"machine.slice:libpod:{cid}" if "libpod" in path else f"system.slice:containerd:{cid}"
    if ":" in path:
        slice_, prefix, name = path.split(":")
        return f"{parent}/{slice_}/{prefix}-{name}.scope"
    return parent + "/" + path.lstrip("/")


def host_source(host_dir, mount):
    """Stand-in for a bind source the client made on its own host: a directory or a
    file naming its destination; one per source, so a pod's containers share it."""
    path = os.path.join(host_dir, mount["source"].strip("/").replace("/", "_"))
    if not os.path.exists(path):
        if mount["destination"] in DIR_DESTINATIONS:
            os.makedirs(path)
        else:
            with open(path, "w") as f:
                f.write(f"host file for {mount['destination']}\n")
    return path


def client_bundle(ct, config, host_dir):
    """A bundle running `config` with the shared rootfs, its cgroups path under the
    suite's parent (the cgroupfs driver, as harness bundles) and stand-ins for bind
    sources missing on this host; `b.files` maps the destinations of file stand-ins
    to their content."""
    b = ct.bundle()
    config["root"]["path"] = ct.rootfs
    config["linux"]["cgroupsPath"] = cgroups_path(ct.cg_parent, config["linux"].get("cgroupsPath") or b.cid, b.cid)
    b.files = {}
    for m in config["mounts"]:
        if m.get("type") == "bind" and not os.path.exists(m["source"]):
            m["source"] = host_source(host_dir, m)
            if os.path.isfile(m["source"]):
                b.files[m["destination"]] = read(m["source"])
    b.config = config
    return b


def create_and_start(ct, b):
    ct.create(b)
    st = ct.rt.state(b.cid)
    assert st["status"] == "created" and st.get("annotations", {}) == b.config.get("annotations", {}), st
    ct.rt("start", b.cid)
    st2 = ct.rt.state(b.cid)
    assert st2["status"] == "running" and st2["pid"] == st["pid"], st2
    return st["pid"]


def exec_process(ct, b, name):
    """`exec --process` with a client's process.json, as conmon and the shim call it."""
    return ct.rt("exec", "--process", os.path.join(FIXTURES, name), b.cid).out


def exec_sh(ct, b, script):
    return ct.rt("exec", b.cid, "sh", "-c", script).out


def kill_and_delete(ct, b, pid):
    ct.rt("kill", b.cid, "KILL")
    assert ct.rt.wait_status(b.cid, "stopped")["status"] == "stopped"
    assert not pid_alive(pid)
    ct.rt("delete", b.cid)


def cgroup_value(b, controller, v1_name, v2_name):
    v2 = cgroup_driver() == "v2"
    return read(os.path.join(cgroup_dir("" if v2 else controller, b.linux["cgroupsPath"]),
                             v2_name if v2 else v1_name)).strip()


def memory_limit(b):
    return int(cgroup_value(b, "memory", "memory.limit_in_bytes", "memory.max"))


def assert_status_as_configured(pid, b):
    """Seccomp mode, no_new_privs and bounding set of a container process, from the host."""
    status = read(f"/proc/{pid}/status")
    assert status_field(status, "Seccomp") == ("2" if b.linux.get("seccomp") else "0")
    assert status_field(status, "NoNewPrivs") == ("1" if b.process.get("noNewPrivileges") else "0")
    assert int(status_field(status, "CapBnd"), 16) == cap_mask(b.process["capabilities"]["bounding"])


def cat_each(paths):
    return "".join(f"cat {p}; " for p in paths)


def root_is_readonly(mountinfo_text):
    return "ro" in [m for m in parse_mountinfo(mountinfo_text) if m["point"] == "/"][-1]["opts"]


# ------------------------------------------------------------------ podman, containerd

@clause(*LIFECYCLE, "linux.cgroupsPath.2")
def test_podman_config(ct, tmp_path):
    b = client_bundle(ct, fixture("podman-config.json"), str(tmp_path))
    pid = create_and_start(ct, b)
    out = exec_process(ct, b, "podman-exec-process.json")
    assert out == "1000:1000:/home/tester:bar\n"

    assert set(b.files) == {"/etc/hostname", "/etc/hosts", "/run/.containerenv"}
    out = exec_sh(ct, b, "hostname; wc -c < /proc/timer_list; ls /sys/dev/block | wc -l; " + cat_each(b.files))
    assert out == "".join([b.config["hostname"] + "\n", "0\n", "0\n", *b.files.values()])
    assert_status_as_configured(pid, b)
    assert read(f"/proc/{pid}/cmdline").split("\0")[:-1] == b.process["args"]

    res = b.linux["resources"]
    assert memory_limit(b) == res["memory"]["limit"]
    assert cgroup_value(b, "pids", "pids.max", "pids.max") == str(res["pids"]["limit"])
    update = os.path.join(FIXTURES, "podman-update-resources.json")
    ct.rt("update", "--resources", update, b.cid)
    with open(update) as f:
        assert memory_limit(b) == json.load(f)["memory"]["limit"]

    kill_and_delete(ct, b, pid)
    assert leftovers(ct.rt, b, ct.rootfs) == []


@clause(*LIFECYCLE, "linux.cgroupsPath.2")
def test_containerd_config(ct, tmp_path):
    b = client_bundle(ct, fixture("containerd-config.json"), str(tmp_path))
    pid = create_and_start(ct, b)
    out = exec_process(ct, b, "containerd-exec-process.json")
    assert out == "1000:/home/tester\n"

    out = exec_sh(ct, b, "grep ' /run ' /proc/self/mountinfo; wc -c < /proc/timer_list")
    run, masked = out.splitlines()
    assert parse_mountinfo(run)[0]["fstype"] == "tmpfs" and masked == "0"
    assert_status_as_configured(pid, b)
    assert memory_limit(b) == b.linux["resources"]["memory"]["limit"]

    kill_and_delete(ct, b, pid)
    assert leftovers(ct.rt, b, ct.rootfs) == []


# ------------------------------------------------------------------ the CRI: a pod sandbox and its container

def oom_score_adj_allowed(value):
    """Whether this host lets its root set `value` (below 0 takes CAP_SYS_RESOURCE, proc(5))."""
    return subprocess.run(["sh", "-c", f"echo {value} > /proc/self/oom_score_adj"],
                          stderr=subprocess.DEVNULL).returncode == 0


@pytest.fixture
def shared_volumes(tmp_path):
    """Two host directories that are shared mounts, as the CRI requires of the source
    of a Bidirectional or HostToContainer hostPath; unmounted after."""
    vols = [tmp_path / "vol-bidirectional", tmp_path / "vol-hosttocontainer"]
    try:
        for v in vols:
            v.mkdir()
            subprocess.run(["mount", "--bind", str(v), str(v)], check=True)
            subprocess.run(["mount", "--make-shared", str(v)], check=True)
        yield vols
    finally:
        for v in vols:
            subprocess.run(["umount", "-R", "-l", str(v)], check=False, stderr=subprocess.DEVNULL)


def ns_of(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")


@clause(*LIFECYCLE, "linux.ns.path.2", "config.process.oomScoreAdj.1", "config.root.readonly.1", "runtime.errors.1")
def test_cri_pod_sandbox_and_container(ct, tmp_path, shared_volumes):
    host_dir = str(tmp_path / "host")
    os.makedirs(host_dir)
    with named_netns("ocpod") as netns:
        netns_path = f"/run/netns/{netns}"
        sb = client_bundle(ct, fixture("cri-sandbox-config.json", NETNS_PATH=netns_path), host_dir)
        oom = sb.process["oomScoreAdj"]
        if not oom_score_adj_allowed(oom):
            # the kernel refuses the value here, so must the runtime; then test its magnitude
            assert ct.create(sb, check=False).rc != 0
            assert leftovers(ct.rt, sb, ct.rootfs) == []
            sb.process["oomScoreAdj"] = oom = abs(oom)
        spid = create_and_start(ct, sb)
        assert os.stat(f"/proc/{spid}/ns/net").st_ino == os.stat(netns_path).st_ino

        bidir, h2c = shared_volumes
        c = client_bundle(ct, fixture("cri-container-config.json", SANDBOX_PID=spid,
                                      HOSTPATH_BIDIRECTIONAL=bidir, HOSTPATH_HOSTTOCONTAINER=h2c), host_dir)
        cpid = create_and_start(ct, c)
        for name in ("pid", "ipc", "uts", "net"):
            assert ns_of(cpid, name) == ns_of(spid, name), name
        assert ns_of(cpid, "mnt") != ns_of(spid, "mnt")
        assert read(f"/proc/{cpid}/oom_score_adj").strip() == str(c.process["oomScoreAdj"])
        assert_status_as_configured(cpid, c)

        # host mounts made after start reach the container through both propagations
        for v in shared_volumes:
            os.mkdir(v / "sub")
            subprocess.run(["mount", "-t", "tmpfs", "late", str(v / "sub")], check=True)
        files = c.files
        out = exec_sh(ct, c, "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; "
                      "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; wc -c < /proc/timer_list; "
                      "echo from-container > /dev/shm/check; " + cat_each(files) + "cat /proc/self/mountinfo")
        lines = out.splitlines(keepends=True)
        assert lines[:4] == [" ".join(sb.process["args"]) + " \n", sb.config["hostname"] + "\n",
                             sb.linux["sysctl"]["net.ipv4.ip_unprivileged_port_start"] + "\n", "0\n"]
        assert lines[4:4 + len(files)] == list(files.values())
        mounts = {m["point"]: m for m in parse_mountinfo("".join(lines[4 + len(files):]))}
        assert [mounts.get(p, {}).get("fstype") for p in ("/mnt/a/sub", "/mnt/b/sub")] == ["tmpfs", "tmpfs"]
        assert "ro" in mounts["/proc/sys"]["opts"]

        out = exec_sh(ct, sb, "id -u; cat /proc/1/oom_score_adj; cat /dev/shm/check; cat /proc/self/mountinfo")
        uid, score, shm, mounts = out.split("\n", 3)
        assert [uid, score, shm] == [str(sb.process["user"]["uid"]), str(oom), "from-container"]
        assert root_is_readonly(mounts)
        assert_status_as_configured(spid, sb)

        kill_and_delete(ct, c, cpid)
        assert ct.rt.state(sb.cid)["status"] == "running"  # the pod outlives its container
        kill_and_delete(ct, sb, spid)
    assert leftovers(ct.rt, c, ct.rootfs) == [] and leftovers(ct.rt, sb, ct.rootfs) == []


# ------------------------------------------------------------------ the runtime's own `spec`

@clause(*LIFECYCLE, "config.root.readonly.1")
def test_spec_output(ct, tmp_path):
    ct.rt("spec", "--bundle", str(tmp_path))
    with open(tmp_path / "config.json") as f:
        config = json.load(f)
    config["process"].update(terminal=False, args=["sleep", "600"])  # spec's is an interactive sh
    b = client_bundle(ct, config, str(tmp_path))
    pid = create_and_start(ct, b)
    out = exec_sh(ct, b, "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; cat /proc/self/mountinfo")
    cmdline, hostname, mounts = out.split("\n", 2)
    assert cmdline == "sleep 600 " and hostname == config["hostname"]
    assert root_is_readonly(mounts) == bool(config["root"].get("readonly"))
    assert_status_as_configured(pid, b)
    kill_and_delete(ct, b, pid)
    assert leftovers(ct.rt, b, ct.rootfs) == []
