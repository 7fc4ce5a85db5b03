"""The plan builders (ocirt/plan/): config -> steps, without root."""
import copy
import inspect
import json
import re

import pytest

from ocirt.errors import OcirtError
from ocirt.plan import build, devices, encode, hooks, host, mounts, process, sysctl
from ocirt.plan.context import Context, Host
from ocirt.plan.seccomp import Compiled

SPEC = {
    "process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": True,
                "user": {"uid": 0, "gid": 0}},
    "root": {"path": "rootfs", "readonly": True},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
    "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "network", "ipc", "uts")],
              "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
}
CTX = {"rootfs": "/r", "bundle": "/b", "fifo": "/s/exec.fifo", "id": "c1"}


def context(s=None, **fields):
    """The create Context of CTX and fields, whose Host (unless given) says
    that each bind source of s is a directory."""
    host = Host(sources={p: "dir" for p in mounts.bind_sources(s or {}, "/b")})
    return Context(**dict(CTX, host=host) | fields)


def spec(**changes):
    s = copy.deepcopy(SPEC)
    for key, value in changes.items():
        target = s
        *parents, last = key.split("__")
        for p in parents:
            target = target.setdefault(p, {})
        target[last] = value
    return s


def names(steps):
    return [s[0] for s in steps]


def plan(s=None, **ctx):
    s = s or spec()
    return build.create_plan(s, context(s, **ctx))


def where_error(fn, *args):
    with pytest.raises(OcirtError) as e:
        fn(*args)
    return e.value.where


# ---------------------------------------------------------------- order

def test_order_of_a_create():
    n = names(plan())
    assert n.index("clone") < n.index("bindroot") < n.index("mount") < n.index("pivot")
    assert n.index("pivot") < n.index("root-ro") < n.index("readonly") < n.index("mask")
    assert n.index("mask") < n.index("bounding") < n.index("user") < n.index("caps")
    assert n[-4:] == ["close-fds", "ready", "fifo-wait", "exec"]
    assert n.index("lookup") < n.index("ready")  # a missing program fails create


def test_run_in_foreground_has_no_fifo():
    n = names(plan(fifo=None, wait=True))
    assert "fifo-wait" not in n and "fifo-open" not in n
    assert [s for s in plan(fifo=None, wait=True) if s[0] == "clone"][0][-1] == 1


def test_a_waiting_helper_opens_its_way_back_before_joining_anything():
    ctx = {"cgroup_leave": ["/own/cgroup.procs"], "cgroup_files": ["/ct/cgroup.procs"]}
    n = names(plan(fifo=None, wait=True, **ctx))
    assert n.index("leave-cgroup") < n.index("cgroup") < n.index("clone")
    s = spec(linux__namespaces=SPEC["linux"]["namespaces"][:1] + [{"type": "mount", "path": "/proc/1/ns/mnt"}])
    n = names(plan(s, fifo=None, wait=True, **ctx))
    assert n.index("leave-cgroup") < n.index("setns")
    n = names(build.exec_plan([("mount", "/proc/1/ns/mnt")], SPEC["process"], Context(wait=True, **ctx)))
    assert n.index("leave-cgroup") < n.index("cgroup") < n.index("setns") < n.index("clone")


def test_a_held_helper_waits_before_opening_its_cgroup():
    """systemd makes the scope around the helper: only then does the cgroup
    to clone into exist (and a waiting helper has its own to go back to)."""
    n = names(plan(cgroup_hold=True, cgroup_v2_dir="/ct", cgroup_leave=["/own/cgroup.procs"]))
    assert n.index("hold") < n.index("leave-cgroup") < n.index("cgroup2") < n.index("clone")
    assert "hold" not in names(plan(cgroup_v2_dir="/ct"))


def test_without_a_mount_namespace_nothing_is_mounted():
    """The container inherits the runtime's mount namespace and root, as
    with runc: no rootfs steps; what would change the host is refused, what
    is not done is warned of."""
    s = spec(linux__namespaces=[{"type": "pid"}], linux__maskedPaths=[], linux__readonlyPaths=[],
             root__readonly=False)
    n = names(plan(s))
    for step in ("bindroot", "mount", "mknod", "pivot", "mask", "readonly", "root-ro", "rootprop"):
        assert step not in n
    assert n[-1] == "exec"
    assert [w for w, _ in build.ignored_without_mount_ns(s)] == ["root.path", "mounts"]
    assert build.ignored_without_mount_ns(spec()) == []
    for key, value in (("linux__maskedPaths", ["/proc/kcore"]), ("linux__readonlyPaths", ["/proc/sys"]),
                       ("linux__rootfsPropagation", "shared"), ("root__readonly", True)):
        bad = spec(**{**dict(linux__namespaces=[{"type": "pid"}], linux__maskedPaths=[],
                             linux__readonlyPaths=[], root__readonly=False), key: value})
        assert where_error(plan, bad) == key.replace("__", ".")
    assert where_error(build.create_plan, s, context(s, no_pivot=True)) == "linux.namespaces"


def test_default_devices_and_console_unless_dev_is_a_bind():
    s = spec(process__terminal=True, process__user={"uid": 1000, "gid": 1000})
    steps = plan(s, console_fd=5)
    assert [x for x in steps if x[0] == "console"][0] == ("console", "process.terminal", 5, 0, 0, 1000, 1)
    assert {x[2] for x in steps if x[0] == "mknod"} >= {"/dev/null", "/dev/tty"}
    s["mounts"].append({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]})
    steps = plan(s, console_fd=5)
    assert "mknod" not in names(steps)
    assert [x for x in steps if x[0] == "console"][0][-1] == 0


def test_read_only_dev_is_filled_then_remounted_read_only():
    s = spec(process__terminal=True)
    s["mounts"][1]["options"] = ["nosuid", "ro"]
    steps = plan(s, console_fd=5)
    n = names(steps)
    dev = [x for x in steps if x[0] == "mount" and x[3] == "/dev"][0]
    assert not dev[5] & mounts.MS_RDONLY and dev[5] & mounts.MS_NOSUID
    assert n.index("mkfile") < n.index("pivot") < n.index("remount-ro") < n.index("console")
    assert steps[n.index("remount-ro")] == ("remount-ro", "mounts[1]", "/dev")
    s["mounts"][1]["options"] = ["nosuid"]
    assert "remount-ro" not in names(plan(s, console_fd=5))


# ---------------------------------------------------------------- hooks

def test_hooks_steps_status_and_fifo_around_start_container():
    s = spec(hooks={"createContainer": [{"path": "/h1"}],
                    "startContainer": [{"path": "/h2", "args": ["h2", "x"], "env": ["A=1"], "timeout": 3}]})
    steps = plan(s)
    n = names(steps)
    hook_steps = [x for x in steps if x[0] == "hook"]
    # createContainer runs in the container's root (1); without env, with the process's (2)
    env = s["process"]["env"]
    assert hook_steps[0] == ("hook", "hooks.createContainer[0]", 0, "creating", 3, "/h1", 0, len(env), *env)
    assert hook_steps[1] == ("hook", "hooks.startContainer[0]", 3, "created", 0, "/h2", 2, "h2", "x", 1, "A=1")
    assert n.index("hooks") < n.index("hook") < n.index("pivot")
    assert n.index("fifo-wait") < len(n) - 1 - n[::-1].index("hook") < n.index("exec")


def test_hook_checks():
    assert where_error(hooks.check_hooks, {"hooks": {"prestart": [{"path": "rel"}]}}) == "hooks.prestart[0].path"
    assert where_error(hooks.check_hooks, {"hooks": {"poststop": [{"path": "/x", "timeout": 0}]}}) \
        == "hooks.poststop[0].timeout"
    assert hooks.check_hooks({"hooks": {"future": [{"path": "rel"}]}})  # unknown kinds ignored


def test_container_side_state_is_completed_by_init():
    from ocirt.hooks import container_side
    state = {"ociVersion": "1.3.0", "id": "x", "status": "creating", "pid": 77, "bundle": "/b",
             "annotations": {"pid": "1", "status": "s"}}
    text = container_side(state) + ',"status":"created","pid":1}'  # what ocirt-init appends
    assert json.loads(text) == dict(state, status="created", pid=1)


# ---------------------------------------------------------------- seccomp placement and NOTIFY

def test_seccomp_last_before_execve():
    """Nothing of the runtime's runs under the filter but the execve, with
    or without noNewPrivileges (a strict profile must not need close_range,
    capset, setuid, the fifo...)."""
    c = Compiled(b"\0" * 8, 0)
    for nnp in (True, False):
        steps = plan(spec(process__noNewPrivileges=nnp), seccomp=c)
        assert names(steps)[-2:] == ["seccomp", "exec"]
        caps = [x for x in steps if x[0] == "caps"][0]
        assert caps[-1] == int(not nnp)  # CAP_SYS_ADMIN kept for loading it without nnp
    steps = build.exec_plan([], SPEC["process"], Context(seccomp=c, wait=True))
    assert names(steps)[-2:] == ["seccomp", "exec"]


def test_clone_modes_and_exec_report():
    """create leaves the execve to start (the fifo); run and exec hear of it
    over the sync socket."""
    def mode_and_keep(steps):
        return [x for x in steps if x[0] == "clone"][0][3], [x for x in steps if x[0] == "ready"][0][2]
    assert mode_and_keep(plan()) == (build.CLONE_CREATE, 0)
    assert mode_and_keep(plan(fifo=None, wait=True)) == (build.CLONE_WAIT, 1)
    for wait, mode in ((True, build.CLONE_WAIT), (False, build.CLONE_DETACH)):
        assert mode_and_keep(build.exec_plan([], SPEC["process"], Context(wait=wait))) == (mode, 1)


def test_seccomp_notify_payload_and_listener_connect():
    c = Compiled(b"\0" * 8, 8, "/run/agent.sock", "meta")
    s = spec(annotations={"a": "b"})
    steps = plan(s, seccomp=c)
    n = names(steps)
    assert n.index("seccomp-listener") < n.index("clone")
    assert n.index("seccomp") < n.index("ready")  # the agent gets its fd during create
    assert n.index("fifo-wait") < n.index("fifo-go") < n.index("exec")  # start does not wait for the agent
    step = [x for x in steps if x[0] == "seccomp"][0]
    nparts = step[4]
    parts = step[5:]
    assert len(parts) == nparts == 3  # the pid twice
    msg = json.loads("4242".join(parts))
    assert msg["pid"] == 4242 and msg["state"]["pid"] == 4242
    assert msg["metadata"] == "meta" and msg["fds"] == ["seccompFd"]
    assert msg["state"]["id"] == "c1" and msg["state"]["status"] == "creating"
    assert msg["state"]["annotations"] == {"a": "b"}


# ---------------------------------------------------------------- mounts

def test_mount_options():
    o = mounts.parse_options(["ro", "rw", "nosuid", "rshared", "rro", "ratime", "size=1m", "tmpcopyup"], "m")
    assert o["flags"] == mounts.MS_NOSUID
    assert o["prop"] == mounts.MS_SHARED | mounts.MS_REC
    assert o["attr_set"] == mounts.A_RDONLY | mounts.A_RELATIME
    assert o["attr_clr"] & mounts.A_ATIME_MASK == mounts.A_ATIME_MASK  # the kernel wants all of it
    assert o["data"] == ["size=1m"] and o["ext"] == {"tmpcopyup"}


def test_bind_flags_become_a_remount(tmp_path):
    m = {"destination": "/x", "type": "bind", "source": str(tmp_path), "options": ["ro", "nodev", "rbind"]}
    step = mounts.mount_step(m, 0, context({"mounts": [m]}))[0]
    assert step[5] == mounts.MS_BIND | mounts.MS_REC
    assert step[8] == mounts.MS_BIND | mounts.MS_REMOUNT | mounts.MS_RDONLY | mounts.MS_NODEV


def test_tmpcopyup_only_on_tmpfs(tmp_path):
    m = {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}
    assert mounts.mount_step(m, 0, Context())[0][-1] == "tmpcopyup"
    m = {"destination": "/etc", "type": "bind", "source": str(tmp_path), "options": ["tmpcopyup"]}
    assert where_error(mounts.mount_step, m, 3, context({"mounts": [m]})) == "mounts[3].options"


USERNS = {"namespaces": SPEC["linux"]["namespaces"] + [{"type": "user"}],
          "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
          "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}


def idmapped(tmp_path, options, **fields):
    return dict(destination="/data", type="bind", source=str(tmp_path), options=options, **fields)


def test_idmap_tree_is_made_by_the_helper_before_any_namespace_is_joined(tmp_path):
    m = idmapped(tmp_path, ["rbind", "ridmap", "ro"],
                 uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                 gidMappings=[{"containerID": 0, "hostID": 2000, "size": 1}])
    s = spec(mounts=SPEC["mounts"] + [m])
    s["linux"]["namespaces"][3] = {"type": "ipc", "path": "/proc/1/ns/ipc"}
    steps = plan(s)
    assert steps[0] == ("idmap-tree", "mounts[2]", str(tmp_path), "0 1000 1\n", "0 2000 1\n", 1, 1)
    assert names(steps).count("idmap-tree") == 1 and names(steps).index("setns") > 0
    mount = [x for x in steps if x[0] == "mount" and x[3] == "/data"][0]
    assert mount[-1] == "idmapped" and mount[8] & mounts.MS_RDONLY


def test_idmap_without_mappings_takes_the_user_namespace_ones(tmp_path):
    s = spec(mounts=[idmapped(tmp_path, ["bind", "idmap"])], linux=dict(SPEC["linux"], **USERNS))
    tree = plan(s)[0]
    assert tree[3:] == ("0 100000 65536\n", "0 200000 65536\n", 0, 0)


@pytest.mark.parametrize("m, where", [
    ({"options": ["idmap"]}, "mounts[0].options"),  # no mappings, no user namespace
    ({"options": ["rbind"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]},
     "mounts[0].gidMappings"),
    ({"type": "tmpfs", "source": "tmpfs", "options": ["ridmap"]}, "mounts[0].options"),
])
def test_idmap_errors_name_the_field(tmp_path, m, where):
    m = dict(idmapped(tmp_path, []), **m)
    assert where_error(plan, spec(mounts=[m])) == where


def test_proc_destinations():
    m = {"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}
    assert where_error(mounts.mount_step, m, 0, Context()) == "mounts[0].type"
    m = {"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"}
    assert where_error(mounts.mount_step, m, 1, Context()) == "mounts[1].destination"
    m = {"destination": "/proc/uptime", "type": "bind", "source": "/etc/hostname", "options": ["bind"]}
    assert mounts.mount_step(m, 0, context({"mounts": [m]}))[0][-1] == "in-proc"
    m = {"destination": "/proc", "type": "none", "source": "/proc", "options": ["rbind"]}
    assert mounts.mount_step(m, 0, context({"mounts": [m]}))[0][-1] == "proc-source"  # the helper checks it is a procfs
    m["uidMappings"] = m["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert where_error(mounts.mount_step, m, 2, context({"mounts": [m]})) == "mounts[2].options"


def test_cgroup_v1_mount_binds_each_hierarchy():
    m = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid"]}
    steps = mounts.mount_step(m, 0, Context(cgroup_dirs=[("cpu", "/sys/fs/cgroup/cpu/x")]))
    assert [s[3] for s in steps] == ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"]
    assert steps[1][2] == "/sys/fs/cgroup/cpu/x" and steps[1][8] & mounts.MS_RDONLY


@pytest.mark.parametrize("prop", ["unbindable", "runbindable"])
def test_unbindable_root_is_applied_last(prop):
    steps = plan(spec(linux__rootfsPropagation=prop))
    assert steps[[x[0] for x in steps].index("rootprop")][2] == mounts.MS_SLAVE | mounts.MS_REC
    assert mounts.finish_steps(spec(linux__rootfsPropagation=prop), {"rootfsPropagation": prop})[-1] == \
        ("rootprop", "linux.rootfsPropagation", mounts.MS_UNBINDABLE | mounts.MS_REC)


# ---------------------------------------------------------------- devices

def test_config_devices_are_strict_defaults_replace():
    steps = devices.device_steps({"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                               "fileMode": 0o620, "uid": 5, "gid": 6}]}, False)
    assert steps == [("mknod", "linux.devices[0]", "/dev/x", "c", 1, 3, 0o620, 5, 6, "strict")]
    default = [s for s in plan() if s[0] == "mknod"]
    assert default and all(s[-1] == "replace" for s in default)
    assert devices.device_steps({"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}]},
                                True) == [("binddev", "linux.devices[0]", "/dev/x")]
    assert where_error(devices.device_steps, {"devices": [{"path": "/dev/x", "type": "z"}]}, False) \
        == "linux.devices[0].type"


# ---------------------------------------------------------------- process

def test_user_umask_is_a_number_and_groups_follow():
    steps = process.cred_steps({"user": {"uid": 1, "gid": 2, "umask": 0o27, "additionalGids": [5, 6]}})
    assert steps[1] == ("user", "process.user", 1, 2, 0o27, 2, 5, 6)
    assert process.cred_steps({})[1][4] == 0o22


def test_unknown_capability_is_rejected():
    caps = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL", "CAP_FLY"]}
    assert where_error(process.cap_masks, caps) == "process.capabilities.effective[1]"


def test_each_capability_outside_the_runtimes_bounding_set_is_warned_of_once():
    caps = {"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE"], "effective": ["CAP_SYS_RESOURCE", "CAP_BPF"]}
    grantable = process.cap_masks({"bounding": ["CAP_KILL"]})["bounding"]
    warned = process.ungranted(caps, grantable)
    assert [w.where for w in warned] == ["process.capabilities.bounding[1]", "process.capabilities.effective[1]"]
    assert "CAP_SYS_RESOURCE" in warned[0].msg and "CAP_BPF" in warned[1].msg
    assert process.ungranted(caps, (1 << len(process.CAPABILITIES)) - 1) == []


def test_ambient_needs_permitted_and_inheritable():
    m = process.cap_masks({"permitted": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_CHOWN"]})
    assert m["ambient"] == 0
    m = process.cap_masks({"permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    assert m["ambient"] == 1 << process.CAPABILITIES.index("CAP_KILL")


def test_rlimits():
    proc = {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]}
    assert process.rlimit_steps(proc) == [("rlimit", "process.rlimits[0]", 7, 10, 20, "RLIMIT_NOFILE")]
    dup = {"rlimits": proc["rlimits"] * 2}
    assert where_error(process.rlimit_steps, dup) == "process.rlimits[1].type"
    bad = {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 30, "hard": 20}]}
    assert where_error(process.rlimit_steps, bad) == "process.rlimits[0].soft"


def test_tuning_steps():
    proc = {"oomScoreAdj": -5, "scheduler": {"policy": "SCHED_BATCH", "nice": 3},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}}
    assert process.tuning_steps(proc) == [
        ("sched", "process.scheduler", 3, 3, 0, 0, 0, 0, 0),
        ("ioprio", "process.ioPriority", 2 << 13 | 4)]
    assert where_error(process.tuning_steps, {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}) \
        == "process.ioPriority.priority"


def test_oom_score_adj_is_the_helpers_before_the_clone():
    """Set by the helper on itself (the host's /proc), inherited by the clone."""
    s = spec(process=dict(spec()["process"], oomScoreAdj=-5))
    steps = plan(s)
    assert ("oom", "process.oomScoreAdj", -5) in steps
    assert names(steps).index("oom") < names(steps).index("clone")


def test_memory_policy():
    assert process.mempolicy_steps({"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1",
                                                     "flags": ["MPOL_F_STATIC_NODES"]}}) == \
        [("mempolicy", "linux.memoryPolicy", 2 | 1 << 15, "0-1")]
    assert where_error(process.mempolicy_steps, {"memoryPolicy": {"mode": "MPOL_BIND"}}) \
        == "linux.memoryPolicy.nodes"
    assert where_error(process.mempolicy_steps, {"memoryPolicy": {"mode": "MPOL_LOCAL", "nodes": "0"}}) \
        == "linux.memoryPolicy"
    assert where_error(process.mempolicy_steps, {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "x"}}) \
        == "linux.memoryPolicy.nodes"


def test_lists_and_affinity():
    assert process.parse_list("0-2,5", 8, "w") == [0, 1, 2, 5]
    assert where_error(process.parse_list, "3-1", 8, "w") == "w"
    assert where_error(process.affinity, {"execCPUAffinity": {"initial": "0-99999"}}, "initial") \
        == "process.execCPUAffinity.initial"


def test_cwd_must_be_absolute():
    assert where_error(process.cwd_step, {"cwd": "rel"}) == "process.cwd"
    assert process.cwd_step({"cwd": "/x"}) == ("cwd", "process.cwd", "/x", "create")


def keyring_steps(steps):
    return [x for x in steps if x[0] == "keyring"]


def test_a_new_session_keyring_first_thing_in_the_container():
    """As runc's init: joined right after the clone (before the mounts and
    the createContainer hooks), named after the container, made searchable
    by its owner, or by others in a user namespace."""
    n = names(plan())
    assert n.index("clone") < n.index("keyring") < n.index("bindroot")
    assert keyring_steps(plan()) == [("keyring", "process", "_ses.c1", 0x00080000)]
    s = spec(linux__namespaces=SPEC["linux"]["namespaces"] + [{"type": "user"}],
             linux__uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
             linux__gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])
    assert keyring_steps(plan(s)) == [("keyring", "process", "_ses.c1", 0x00000008)]
    assert keyring_steps(plan(no_new_keyring=True)) == []


def test_exec_joins_the_keyring_unless_the_container_has_none():
    steps = build.exec_plan([], SPEC["process"], Context(wait=True, id="c1"))
    n = names(steps)
    assert n.index("clone") + 1 == n.index("keyring")
    assert keyring_steps(steps) == [("keyring", "process", "_ses.c1", 0)]  # permissions left alone
    steps = build.exec_plan([], SPEC["process"], Context(wait=True, id="c1", no_new_keyring=True))
    assert keyring_steps(steps) == []


# ---------------------------------------------------------------- sysctl, host facilities

def test_sysctl_needs_its_namespace():
    ns = {"ipc": None, "network": None}
    assert sysctl.sysctl_steps({"sysctl": {"kernel.shmmax": "1", "net.ipv4.ip_forward": "1"}}, ns) == [
        ("sysctl", "linux.sysctl.kernel.shmmax", "kernel.shmmax", "1"),
        ("sysctl", "linux.sysctl.net.ipv4.ip_forward", "net.ipv4.ip_forward", "1")]
    assert where_error(sysctl.sysctl_steps, {"sysctl": {"vm.swappiness": "1"}}, ns) == "linux.sysctl.vm.swappiness"
    assert where_error(sysctl.sysctl_steps, {"sysctl": {"kernel.hostname": "x"}}, ns) == \
        "linux.sysctl.kernel.hostname"


def test_intel_rdt_and_mount_label_need_the_host_facility():
    rdt = {"intelRdt": {"closID": "x"}}
    assert "resctrl" in str(pytest.raises(OcirtError, host.check, rdt, {}, Host()).value)
    host.check(rdt, {}, Host(resctrl="/sys/fs/resctrl"))
    assert where_error(host.check, {"mountLabel": "system_u:object_r:x"}, {}, Host()) == "linux.mountLabel"
    host.check({"mountLabel": "system_u:object_r:x"}, {}, Host(selinux=True))
    host.check({}, {}, Host())


def test_capabilities_the_kernel_lacks_are_dropped():
    caps = {"bounding": ["CAP_KILL", "CAP_BPF"]}
    steps = build.exec_plan([], dict(SPEC["process"], capabilities=caps),
                            Context(host=Host(last_cap=process.CAPABILITIES.index("CAP_KILL"))))
    assert [x for x in steps if x[0] == "bounding"][0][2] == 1 << process.CAPABILITIES.index("CAP_KILL")


def test_bind_sources_and_what_the_host_says_of_them():
    s = spec(mounts=[{"destination": "/a", "type": "bind", "source": "data"},
                     {"destination": "/b", "source": "/f", "options": ["rbind"]},
                     {"destination": "/c", "type": "tmpfs", "source": "tmpfs"}])
    assert mounts.bind_sources(s, "/b") == ["/b/data", "/f"]
    steps = plan(s, host=Host(sources={"/b/data": "dir", "/f": "file"}), fifo=None)
    kinds = {x[3]: x[7] for x in steps if x[0] == "mount" and x[1] in ("mounts[0]", "mounts[1]")}
    assert kinds == {"/a": "dir", "/b": "file"}
    e = pytest.raises(OcirtError, plan, s, host=Host(sources={"/b/data": "no such file or directory"})).value
    assert (e.where, e.msg) == ("mounts[0].source", "bind source /b/data: no such file or directory")


def test_a_host_without_kcore_gets_no_dev_core():
    assert ("symlink", "linux", "/proc/kcore", "/dev/core") in plan()
    assert "/dev/core" not in [x[-1] for x in plan(host=Host(kcore=False)) if x[0] == "symlink"]


def test_plan_reads_nothing_of_the_host():
    """plan/ is pure: no file opened, stat'ed or listed, no libseccomp, no
    state root; ocirt/hostfacts.py gathers what it needs."""
    import ast
    import pathlib
    allowed = {"json", "os", "posix", "struct", "_struct", "ocirt", "ocirt.errors", "ocirt.record",
               "ocirt.pathops"}  # its pure join and normpath: the calls below are checked
    banned_calls = {"open", "stat", "lstat", "exists", "isdir", "isfile", "islink", "listdir", "scandir",
                    "uname", "readlink", "access", "getcwd", "abspath", "realpath", "real_dir"}
    for path in pathlib.Path(build.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert all(m in allowed or m.startswith("ocirt.plan") or m == "dataclasses" for m in mods), \
                    (path.name, mods)
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert name not in banned_calls, (path.name, node.lineno, name)


def test_host_fields_are_those_host_check_reads():
    """create_plan loads plan/host.py only for a config with one of HOST_FIELDS."""
    src = inspect.getsource(host.check)
    assert set(re.findall(r'linux(?:\.get\(|\[)"(\w+)"', src)) == set(build.HOST_FIELDS)


def test_encode_format():
    data = encode([("a", "w", 1, b"\x01")])
    assert data == b"\x04\0\0\0" + b"\x02\0\0\0a\0" + b"\x02\0\0\0w\0" + b"\x02\0\0\x001\0" + b"\x02\0\0\0\x01\0"


def test_encode_fields_of_every_kind():
    """Each field as str(field) in UTF-8, bools as 1/0, bytes as they are
    (subclasses of int and bytes too), after its length + 1, NUL-terminated."""
    class Num(int):
        def __str__(self):
            return "n%d" % self

    class Raw(bytes):
        pass

    def field(b):
        return (len(b) + 1).to_bytes(4, "little") + b + b"\0"

    steps = [("x", "é", -7, True, False, Num(3), Raw(b"\0\1"), b""), ()]
    assert encode(steps) == (b"\x08\0\0\0" + field(b"x") + field("é".encode()) + field(b"-7") + field(b"1")
                             + field(b"0") + field(b"n3") + field(b"\0\1") + field(b"") + b"\0\0\0\0")


@pytest.mark.parametrize("plan", ["create", "exec"])
def test_lsm_labels_are_written_by_the_process_as_root_before_its_credentials(plan):
    """An AppArmor profile and an SELinux label go to the process's own
    /proc/self/attr/exec (ocirt-init's op_lsm, through proc_write: the root of a
    procfs, reached by fd, as for oomScoreAdj), as root, before the user and
    capability steps."""
    lsm = Host(apparmor=True, selinux=True)
    proc = dict(SPEC["process"], apparmorProfile="prof", selinuxLabel="system_u:system_r:t:s0", oomScoreAdj=5)
    steps = (build.create_plan(spec(process=proc), context(host=lsm)) if plan == "create"
             else build.exec_plan([], proc, Context(wait=True, host=lsm)))
    lsm = [s for s in steps if s[0] == "lsm"]
    assert lsm == [("lsm", "process.apparmorProfile", "exec", "exec prof"),
                   ("lsm", "process.selinuxLabel", "exec", "system_u:system_r:t:s0")]
    n = names(steps)
    assert n.index("oom") < n.index("lsm") < n.index("user") < n.index("caps")


@pytest.mark.parametrize("netns,bound", [(None, True), ({"type": "network"}, False),
                                         ({"type": "network", "path": "/proc/1/ns/net"}, True)])
def test_sysfs_in_a_user_namespace_without_its_own_netns_is_the_hosts_bound(netns, bound):
    """The kernel gives a new sysfs only to the netns' owner: as runc, a
    recursive bind of the host's /sys instead, with the mount's flags."""
    namespaces = [{"type": "mount"}, {"type": "user"}] + ([netns] if netns else [])
    s = spec(mounts=[{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid"]}],
             linux__namespaces=namespaces, linux__uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
             linux__gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])
    m = next(st for st in plan(s) if st[0] == "mount" and st[3] == "/sys")
    if bound:
        assert (m[2], m[4], m[5] & (mounts.MS_BIND | mounts.MS_REC)) == ("/sys", "", mounts.MS_BIND | mounts.MS_REC)
        assert m[8] & (mounts.MS_RDONLY | mounts.MS_NOSUID) == mounts.MS_RDONLY | mounts.MS_NOSUID  # the remount
    else:
        assert (m[2], m[4]) == ("sysfs", "sysfs")


OWN = [{"containerID": 0, "hostID": 1000, "size": 1}]
SUB = OWN + [{"containerID": 1, "hostID": 100000, "size": 65536}]
TOOLS = {"newuidmap": "/usr/bin/newuidmap", "newgidmap": "/usr/bin/newgidmap"}


def id_maps(uids, gids, ids=(1000, 1000), tools=TOOLS):
    from ocirt.plan import namespaces
    linux = dict(SPEC["linux"], namespaces=USERNS["namespaces"], uidMappings=uids, gidMappings=gids)
    return namespaces.id_map_steps(linux, namespaces.namespaces(linux), Host(ids=ids, id_tools=tools))


def test_an_unprivileged_callers_subordinate_ranges_go_through_newuidmap():
    assert id_maps(SUB, OWN) == [("uidmap", "linux.uidMappings", "0 1000 1\n1 100000 65536\n", "/usr/bin/newuidmap"),
                                 ("gidmap", "linux.gidMappings", "0 1000 1\n", "")]
    assert [s[3] for s in id_maps(OWN, SUB)] == ["", "/usr/bin/newgidmap"]
    # its own id under another container id is still its own; root writes any map itself
    assert [s[3] for s in id_maps([dict(OWN[0], containerID=5)], OWN)] == ["", ""]
    assert [s[3] for s in id_maps(SUB, SUB, ids=(0, 0), tools={})] == ["", ""]


def test_subordinate_ranges_without_newgidmap_name_the_field():
    with pytest.raises(OcirtError, match="needs newgidmap") as e:
        id_maps(SUB, SUB, tools={"newuidmap": "/usr/bin/newuidmap"})
    assert e.value.where == "linux.gidMappings"


def test_a_runtime_in_a_user_namespace_binds_the_device_nodes():
    """Rootless podman's: the runtime is root of podman's user namespace,
    the config has none of its own, and mknod is refused there."""
    s = spec(linux__devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])
    steps = plan(s, host=Host(in_userns=True, sources={p: "dir" for p in mounts.bind_sources(s, "/b")}))
    assert "mknod" not in names(steps)
    assert {x[2] for x in steps if x[0] == "binddev"} >= {"/dev/null", "/dev/tty", "/dev/fuse"}
    assert "mknod" in names(plan(s))


def test_no_capability_outside_the_runtimes_bounding_set_even_in_a_new_user_namespace():
    """A new user namespace starts with every capability: what the runtime
    cannot grant (and warns of) is left out by the plan itself."""
    from ocirt.plan.process import CAPABILITIES
    kill, res = 1 << CAPABILITIES.index("CAP_KILL"), 1 << CAPABILITIES.index("CAP_SYS_RESOURCE")
    caps = dict.fromkeys(("bounding", "effective", "permitted"), ["CAP_KILL", "CAP_SYS_RESOURCE"])
    s = spec(process__capabilities=caps, linux=dict(SPEC["linux"], **USERNS))
    steps = plan(s, host=Host(bounding=(2 << 40) - 1 - res))
    assert [x[2] for x in steps if x[0] == "bounding"] == [kill]
    assert [x[2:4] for x in steps if x[0] == "caps"] == [(kill, kill)]
