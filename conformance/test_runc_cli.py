"""What runc's users rely on beyond the spec: exit statuses, flags after the
arguments. Scripts and shims written for runc depend on each; the tests run on
any runc-compatible runtime (runc 1.1.5 passes them)."""
import json
import os
import re
import subprocess

import pytest

from .harness import (cgroup_dir, cgroup_dirs_existing, cgroup_driver, cgroup_mounts, kill_pid, read,
                      remove_cgroup_tree)


def running(ct, script="sleep 30"):
    b = ct.bundle(script)
    ct.create(b)
    ct.rt("start", b.cid)
    return b


@pytest.mark.parametrize("how", ["missing container", "paused", "no such program", "bad pid file"])
def test_exec_failures_of_the_runtime_exit_255(ct, how):
    """255, not 1: the caller tells the runtime's failure from the program's own status."""
    b = running(ct)
    args = ["exec", b.cid, "true"]
    if how == "missing container":
        args[1] = b.cid + "-nope"
    elif how == "paused":
        if "freezer" not in cgroup_mounts() and cgroup_driver() != "v2":
            pytest.skip("no freezer cgroup here")
        ct.rt("pause", b.cid)
    elif how == "no such program":
        args[2] = "/nope"
    else:
        args[1:1] = ["--pid-file", os.path.join(ct.base, "no", "such", "dir", "pid")]
    res = ct.rt(*args, check=False)
    assert res.rc == 255 and res.err.strip(), res
    if how == "paused":
        ct.rt("resume", b.cid)
    assert ct.rt.state(b.cid)["status"] == "running"


def test_exec_exits_with_the_programs_status(ct):
    b = running(ct)
    assert ct.rt("exec", b.cid, "sh", "-c", "exit 7", check=False).rc == 7
    assert ct.rt("exec", b.cid, "sh", "-c", "exit 255", check=False).rc == 255


@pytest.mark.parametrize("args, rc", [
    (["nosuchcommand"], 3),                         # urfave/cli's status for an unknown command
    (["start", "nosuch"], 1), (["state", "nosuch"], 1), (["delete", "nosuch"], 1),
    (["kill", "nosuch"], 1), (["create", "--bundle", "/nonexistent", "x"], 1),
    (["state"], 1), (["list", "extra"], 1), (["help"], 0),
])
def test_other_exit_statuses(rt, args, rc):
    assert rt(*args, check=False).rc == rc


def test_flags_after_the_container_id(ct):
    """`update ID --pids-limit N`, `kill ID 0 --all`, `delete ID --force`."""
    b = running(ct)
    if "pids" in cgroup_mounts() or cgroup_driver() == "v2":
        ct.rt("update", b.cid, "--pids-limit", "17")
        d = cgroup_dir("" if cgroup_driver() == "v2" else "pids", b.linux["cgroupsPath"])
        assert read(os.path.join(d, "pids.max")).strip() == "17"
    ct.rt("kill", b.cid, "0", "--all")
    ct.rt("delete", b.cid, "--force")
    assert ct.rt.state_or_none(b.cid) is None


def test_exec_and_ps_arguments_are_the_command_line(ct):
    """exec's and ps's arguments after the id are a command line, flags and all."""
    b = running(ct)
    assert ct.rt("exec", b.cid, "echo", "--env", "A=1").out == "--env A=1\n"
    assert ct.rt("ps", b.cid, "-o", "pid").out.split()[0] == "PID"


def test_version_names_the_commit_and_the_spec(rt):
    """runc's --version: "NAME version V", then "commit: ..." and "spec: ..." lines."""
    lines = rt("--version").out.splitlines()
    assert " version " in lines[0]
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    assert fields.get("commit", "").strip() and fields.get("commit") != "unknown", lines
    assert fields.get("spec", "").startswith("1."), lines


def test_spec_is_the_starter_config_for_this_host(rt, tmp_path):
    """A cgroup namespace only on a pure cgroup v2 host, as runc."""
    rt("spec", "--bundle", str(tmp_path))
    with open(tmp_path / "config.json") as f:
        config = json.load(f)
    types = [n["type"] for n in config["linux"]["namespaces"]]
    assert ("cgroup" in types) == (cgroup_driver() == "v2"), types
    assert {"pid", "network", "ipc", "uts", "mount"} <= set(types)
    assert rt("spec", "--bundle", str(tmp_path), check=False).rc == 1     # will not overwrite


def freezer_dir(ct, b):
    """The freezer cgroup of b's cgroupsPath, made ahead of the runtime."""
    v2 = cgroup_driver() == "v2"
    if not v2 and "freezer" not in cgroup_mounts():
        pytest.skip("no freezer cgroup here")
    d = cgroup_dir("" if v2 else "freezer", b.linux["cgroupsPath"])
    os.makedirs(d)
    return d, ("cgroup.freeze", "1", "0") if v2 else ("freezer.state", "FROZEN", "THAWED")


def test_a_frozen_cgroup_is_refused(ct):
    """Not a hang in the freezer: an error, and the cgroup left as it was."""
    b = ct.bundle("true")
    d, (file, frozen, thawed) = freezer_dir(ct, b)
    with open(os.path.join(d, file), "w") as f:
        f.write(frozen)
    try:
        res = ct.run(b, check=False, timeout=20)
        assert res.rc != 0 and "frozen" in res.err, res
        assert ct.rt.state_or_none(b.cid) is None and os.path.isdir(d)
    finally:
        with open(os.path.join(d, file), "w") as f:
            f.write(thawed)


def test_a_cgroup_with_processes_is_warned_of(ct):
    b = ct.bundle("sleep 30")
    d, _ = freezer_dir(ct, b)
    squatter = subprocess.Popen(["sleep", "30"])
    try:
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(squatter.pid))
        res = ct.create(b, check=False)
        assert res.rc == 0, res
        assert "warn" in res.err.lower() and "not empty" in res.err, res.err
    finally:
        with open(os.path.join(os.path.dirname(d), "cgroup.procs"), "w") as f:
            f.write(str(squatter.pid))      # out again, before the clean-up's delete
        kill_pid(squatter.pid)
        squatter.wait()


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Writes its working directory and environment to $2/$1.cwd and $1.env ($2: the
# bundle's out/, /out inside); absolute paths, for hooks given a PATH of their own.
PROBE = '#!/bin/sh\n/bin/cat >/dev/null\npwd -P > "$2/$1.cwd"\n/bin/env > "$2/$1.env"\n'
SHELL_VARS = {"PWD", "OLDPWD", "SHLVL", "_"}  # what the hook's own shell adds


def probe_hooks(ct, b, env=None):
    """Each kind of hook runs PROBE (named as its kind), with `env` if given."""
    for d in (b.out, b.path):
        with open(os.path.join(d, "probe"), "w") as f:
            f.write(PROBE)
        os.chmod(os.path.join(d, "probe"), 0o755)
    b.config["hooks"] = {}
    for kind in HOOK_KINDS:
        inside = kind == "startContainer"
        hook = {"path": "/out/probe" if inside else os.path.join(b.path, "probe"),
                "args": ["probe", kind, "/out" if inside else b.out]}
        if env is not None:
            hook["env"] = env
        b.config["hooks"][kind] = [hook]
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    ct.rt("delete", b.cid)


def probed_env(b, name):
    with open(os.path.join(b.out, name + ".env")) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    return {k: v for k, v in env.items() if k not in SHELL_VARS}


def test_hooks_run_where_runc_runs_them(ct):
    """Hooks written for runc rely on its working directory: the bundle, but
    the caller's own for poststop (run by delete); createContainer in the
    rootfs (runc's cwd before pivot_root), startContainer in process.cwd."""
    b = ct.bundle("true")
    b.process["cwd"] = "/etc"
    probe_hooks(ct, b)
    got = {k: b.read_out(k + ".cwd").strip() for k in HOOK_KINDS}
    bundle = os.path.realpath(b.path)
    assert got == {"prestart": bundle, "createRuntime": bundle, "createContainer": os.path.realpath(ct.rootfs),
                   "startContainer": "/etc", "poststart": bundle, "poststop": os.path.realpath(os.getcwd())}


def test_hooks_without_env_get_runcs_environment(ct, monkeypatch):
    """Without `env`, hooks in the runtime's namespaces get the runtime's own
    environment (hooks find their tools on its PATH), those in the container
    the process's."""
    monkeypatch.setenv("PROBE_RUNTIME", "runtime")
    b = ct.bundle("/bin/env > /out/program.env")
    b.process["env"].append("PROBE_PROCESS=process")
    probe_hooks(ct, b)
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        env = probed_env(b, kind)
        assert env.get("PROBE_RUNTIME") == "runtime" and "PROBE_PROCESS" not in env, (kind, env)
    env = probed_env(b, "createContainer")
    assert "PROBE_RUNTIME" not in env, env
    assert all(env.get(k) == v for k, v in (e.split("=", 1) for e in b.process["env"])), env
    # startContainer runs as the program does, with its environment
    assert probed_env(b, "startContainer") == probed_env(b, "program")


@pytest.mark.parametrize("env", [[], ["FOO=bar", "PATH=/nowhere"]], ids=["empty", "given"])
def test_hooks_with_env_get_exactly_it(ct, monkeypatch, env):
    monkeypatch.setenv("PROBE_RUNTIME", "runtime")
    b = ct.bundle("true")
    b.process["env"].append("PROBE_PROCESS=process")
    probe_hooks(ct, b, env)
    want = dict(e.split("=", 1) for e in env)
    for kind in HOOK_KINDS:
        got = probed_env(b, kind)
        if kind == "startContainer" and not env:
            got.pop("PATH", None)  # busybox's shell sets its default PATH
        assert got == want, (kind, got)


def log_lines(path, fmt):
    """The --log file's lines as (level, msg): JSON objects or logrus text."""
    out = []
    with open(path) as f:
        for line in f:
            if fmt == "json":
                obj = json.loads(line)
                assert isinstance(obj["time"], str), line
                out.append((obj["level"], obj["msg"]))
            else:
                m = re.match(r'time="[^"]+" level=(\w+) msg="((?:[^"\\]|\\.)*)"', line)
                assert m, line
                out.append((m.group(1), m.group(2)))
    return out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_logs_every_stage_to_the_log(ct, tmp_path, fmt):
    """--debug --log FILE: the progress of create, start and delete, at
    debug level, in the --log-format; nothing of it on stderr."""
    log = tmp_path / "log"
    b = ct.bundle("true")
    b.write()
    res = ct.rt("--debug", "--log", str(log), "--log-format", fmt, "run", "--bundle", b.path, b.cid)
    lines = log_lines(log, fmt)
    assert sum(level == "debug" for level, _ in lines) >= 10, lines
    assert "level=debug" not in res.err and '"level":"debug"' not in res.err, res


def test_without_debug_the_log_holds_only_the_error(ct, tmp_path):
    log = tmp_path / "log"
    b = ct.bundle("true")
    b.process["args"] = ["/nonexistent"]
    b.write()
    res = ct.rt("--log", str(log), "--log-format", "json", "run", "--bundle", b.path, b.cid, check=False)
    assert res.rc != 0
    assert [level for level, _ in log_lines(log, "json")] == ["error"]


def test_debug_without_log_goes_to_stderr(ct):
    b = ct.bundle("true")
    b.write()
    res = ct.rt("--debug", "run", "--bundle", b.path, b.cid)
    assert res.err.count("level=debug") >= 10, res


@pytest.mark.parametrize("uid, env, home", [
    (0, [], "/root"), (1000, [], "/home/tester"), (4242, [], "/"), (1000, ["HOME=/mine"], "/mine"),
])
def test_home_comes_from_the_containers_passwd(ct, uid, env, home):
    """As runc: without HOME in process.env, the user's home in the image's
    /etc/passwd, else "/"; for exec too."""
    b = ct.bundle("echo $HOME > /out/home; sleep 30")
    b.process["user"] = {"uid": uid, "gid": uid}
    b.process["env"] = [e for e in b.process["env"] if not e.startswith("HOME=")] + env
    ct.create(b)
    ct.rt("start", b.cid)
    out = ct.rt("exec", b.cid, "sh", "-c", "echo $HOME").out
    assert (b.read_out("home").strip(), out.strip()) == (home, home)


def sub_cgroup(ct, b, name="sub"):
    """b running, a sub-cgroup `name` made in its memory and pids hierarchies
    (the one on cgroup v2) -> (--cgroup argument, {controller: cgroup path})."""
    path = b.linux["cgroupsPath"]
    if cgroup_driver() == "v2":
        ctrls, arg = [""], name
    else:
        ctrls = [c for c in ("memory", "pids") if c in cgroup_mounts()]
        if not ctrls:
            pytest.skip("no memory or pids cgroup here")
        arg = ",".join(ctrls) + ":" + name
    for c in ctrls:
        os.mkdir(os.path.join(cgroup_dir(c, path), name))
    return arg, {c: f"{path}/{name}" for c in ctrls}


def proc_cgroups(text):
    """/proc/PID/cgroup -> {controller ("" for cgroup2): path}."""
    out = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        out.update(dict.fromkeys(ctrls.split(",") if ctrls else [""], path))
    return out


def test_exec_runs_the_process_in_a_sub_cgroup(ct):
    """--cgroup [CONTROLLER[,CONTROLLER]:]PATH: the process is there before
    the program runs; the other hierarchies stay the container's own."""
    b = running(ct)
    arg, want = sub_cgroup(ct, b)
    got = proc_cgroups(ct.rt("exec", "--cgroup", arg, b.cid, "cat", "/proc/self/cgroup").out)
    assert {c: got[c] for c in want} == want, got
    init = proc_cgroups(read(f"/proc/{ct.rt.state(b.cid)['pid']}/cgroup"))
    assert {c: p for c, p in got.items() if c not in want} == {c: p for c, p in init.items() if c not in want}


@pytest.mark.parametrize("how", ["no such sub-cgroup", "escapes", "unknown controller", "two colons"])
def test_exec_refuses_a_bad_sub_cgroup(ct, how):
    b = running(ct)
    arg, _ = sub_cgroup(ct, b)
    ctrls, colon, name = arg.rpartition(":")
    bad = {"no such sub-cgroup": f"{ctrls}{colon}nosuch", "escapes": f"{ctrls}{colon}../..",
           "unknown controller": "bogus:sub" if colon else "memory:sub",
           "two colons": "memory:sub:x"}[how]
    res = ct.rt("exec", "--cgroup", bad, b.cid, "true", check=False)
    assert res.rc == 255 and res.err.strip(), res
    assert ct.rt.state(b.cid)["status"] == "running"
    assert not cgroup_dirs_existing(b.linux["cgroupsPath"] + "/nosuch")     # not made by exec


def test_exec_refuses_a_sibling_of_the_container_cgroup(ct):
    """"../ID-x" names a cgroup beside the container's, not inside it."""
    b = running(ct)
    arg, want = sub_cgroup(ct, b)
    sibling = os.path.basename(b.linux["cgroupsPath"]) + "-x"
    ctrls, colon, _ = arg.rpartition(":")
    for c in want:
        os.mkdir(os.path.join(cgroup_dir(c, ct.cg_parent), sibling))
    try:
        res = ct.rt("exec", "--cgroup", f"{ctrls}{colon}../{sibling}", b.cid, "true", check=False)
        assert res.rc == 255 and res.err.strip(), res
    finally:
        remove_cgroup_tree(f"{ct.cg_parent}/{sibling}")


def cg_value(b, v1, v2, path=None):
    """A cgroup file of b's cgroup (or path): v1 (controller, file), or the v2 file."""
    v2_host = cgroup_driver() == "v2"
    d = cgroup_dir("" if v2_host else v1[0], path or b.linux["cgroupsPath"])
    return read(os.path.join(d, v2 if v2_host else v1[1])).strip()


def cg_write(path, v1, v2, value):
    v2_host = cgroup_driver() == "v2"
    d = cgroup_dir("" if v2_host else v1[0], path)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, v2 if v2_host else v1[1]), "w") as f:
        f.write(value)


QUOTA, PERIOD = ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us")


def in_a_pod(ct, b):
    """b's cgroup made inside a parent allowed half a CPU (50000/100000), as
    a Kubernetes pod's is, and holding 50000/100000 already: the kernel then
    checks each cfs write against the parent's ratio."""
    v2 = cgroup_driver() == "v2"
    if not v2 and "cpu" not in cgroup_mounts():
        pytest.skip("no cpu cgroup here")
    pod = f"{ct.cg_parent}/{b.cid}-pod"
    b.linux["cgroupsPath"] = pod + "/ctr"
    if v2:
        parent = cgroup_dir("", ct.cg_parent)
        os.makedirs(parent, exist_ok=True)
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write("+cpu")
        cg_write(pod, None, "cgroup.subtree_control", "+cpu")
    for path in (pod, pod + "/ctr"):
        cg_write(path, QUOTA, "cpu.max", "50000")        # the period is 100000 by default
    return pod


def cpu_max(b):
    if cgroup_driver() == "v2":
        return cg_value(b, None, "cpu.max")
    return f"{cg_value(b, QUOTA, None)} {cg_value(b, PERIOD, None)}"


@pytest.mark.parametrize("when", ["update", "create"])
def test_cpu_period_and_quota_are_written_in_an_order_the_kernel_takes(ct, when):
    """From 50000/100000 to 5000/10000 the new period alone exceeds the pod's
    ratio; back, the new quota alone does: each direction needs its own order."""
    b = ct.bundle("sleep 30")
    pod = in_a_pod(ct, b)
    if when == "create":
        b.linux["resources"]["cpu"] = {"quota": 5000, "period": 10000}
    ct.create(b)
    if when == "update":
        ct.rt("update", "--cpu-period", "10000", "--cpu-quota", "5000", b.cid)
    assert cpu_max(b) == "5000 10000"
    ct.rt("update", "--cpu-period", "100000", "--cpu-quota", "50000", b.cid)
    assert cpu_max(b) == "50000 100000"
    ct.rt("delete", "--force", b.cid)
    remove_cgroup_tree(pod)


def test_memory_and_swap_limits_are_written_in_an_order_the_kernel_takes(ct):
    """v1: memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every step
    (raising both past the old memsw needs memsw first; lowering both below
    the old limit, the limit first); v2: memory.swap.max is the swap alone."""
    v2 = cgroup_driver() == "v2"
    b = ct.bundle("sleep 30")
    b.linux["resources"]["memory"] = {"limit": 64 << 20, "swap": 128 << 20}
    swap = ("memory", "memory.memsw.limit_in_bytes")
    if "memory" not in cgroup_mounts() and not v2:
        pytest.skip("no memory cgroup here")
    ct.create(b)
    try:
        cg_value(b, swap, "memory.swap.max")
    except FileNotFoundError:
        pytest.skip("no swap accounting on this kernel")
    for mem, memsw in ((256, 512), (32, 64)):
        ct.rt("update", "--memory", f"{mem}m", "--memory-swap", f"{memsw}m", b.cid)
        assert cg_value(b, ("memory", "memory.limit_in_bytes"), "memory.max") == str(mem << 20)
        assert cg_value(b, swap, "memory.swap.max") == str((memsw - mem if v2 else memsw) << 20)
