"""update, pause, resume, ps, events, kill --all and delete on real
containers, through the ocirt command line, with whichever cgroup driver
this host gets (v1 here; v2 in the VM of tests/vm/run-v2-tests.sh).
Containers live under the cgroup /ocirt-test-<pid>-cmds, removed after."""
import glob
import json
import os
import subprocess
import sys
import time

import pytest

from ocirt.cgroups import fs, paths
from ocirt.specgen import default_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARENT = f"ocirt-test-{os.getpid()}-cmds"
V2 = paths.is_unified()
# the ocirt command line of this work tree, started as the launcher starts it
LAUNCH = ("import sys; sys.path[0:0] = %r; from ocirt.cli import main; sys.exit(main())"
          % ([REPO] + [p for p in sys.path if p.endswith("-packages")]))
TIMEOUT = 60


def parent_dirs():
    return glob.glob(f"{paths.ROOT}/{PARENT}") + glob.glob(f"{paths.ROOT}/*/{PARENT}")


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("rootfs") / "rootfs")
    subprocess.run(["sh", f"{REPO}/bundles/mkrootfs.sh", d], check=True)
    os.mkdir(d + "/share")
    return d


@pytest.fixture(scope="module", autouse=True)
def cgroup_parent(request):
    assert not parent_dirs()
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(
            f"ocirt cgroup commands: cgroup {'v2 (unified)' if V2 else 'v1'} driver, under /{PARENT}")
    yield
    for d in parent_dirs():
        fs.remove_tree(d)


class Ctr:
    """One container: its bundle, state root and command line."""

    def __init__(self, tmp, rootfs, name, args, resources=None, devices=None):
        self.id, self.tmp = name, tmp
        self.root, self.bundle, self.share = f"{tmp}/state", f"{tmp}/{name}", f"{tmp}/{name}-share"
        os.makedirs(self.bundle)
        os.makedirs(self.share)
        spec = default_spec()
        spec["process"].update(terminal=False, args=list(args))
        spec["root"]["path"] = rootfs
        spec["mounts"].append({"destination": "/share", "type": "bind", "source": self.share,
                               "options": ["rbind", "rw"]})
        linux = spec["linux"]
        linux["cgroupsPath"] = f"/{PARENT}/{name}"
        linux["resources"].update(resources or {})
        if devices:
            linux["devices"] = devices
        with open(f"{self.bundle}/config.json", "w") as f:
            json.dump(spec, f)

    def ocirt(self, *args, stdin=None, check=True):
        r = subprocess.run([sys.executable, "-S", "-c", LAUNCH, "--root", self.root] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def create(self, check=True):
        # the container's stdio: files, so that no pipe of ours stays open in it
        with open(f"{self.tmp}/{self.id}.out", "w") as out, open(f"{self.tmp}/{self.id}.err", "w") as err:
            r = subprocess.run([sys.executable, "-S", "-c", LAUNCH, "--root", self.root, "create",
                                "--bundle", self.bundle, self.id], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=TIMEOUT)
        if check:
            assert r.returncode == 0, self.output()
        return r.returncode

    def start(self):
        self.create()
        self.ocirt("start", self.id)
        return self

    def output(self):
        return open(f"{self.tmp}/{self.id}.out").read() + open(f"{self.tmp}/{self.id}.err").read()

    def status(self):
        return json.loads(self.ocirt("state", self.id).stdout)["status"]

    def wait_status(self, want):
        assert fs.wait_for(lambda: self.status() == want, TIMEOUT), self.status()

    def state_json(self):
        with open(f"{self.root}/{self.id}/state.json") as f:
            return json.load(f)

    def cgroup_dirs(self):
        return sorted(set(self.state_json()["cgroup"]["dirs"].values()))

    def cg(self, v1, v2):
        """The content of a cgroup file: v1 (controller, file) or v2 file."""
        dirs = self.state_json()["cgroup"]["dirs"]
        return fs.read(f"{dirs['']}/{v2}" if V2 else f"{dirs[v1[0]]}/{v1[1]}")

    def pids(self):
        return sorted(json.loads(self.ocirt("ps", "--format", "json", self.id).stdout) or [])

    def shared(self, name):
        try:
            with open(f"{self.share}/{name}") as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def delete(self):
        if os.path.exists(f"{self.root}/{self.id}"):
            self.ocirt("delete", "--force", self.id, check=False)


@pytest.fixture
def make(tmp_path, rootfs):
    made = []

    def make(name, args, **kw):
        c = Ctr(str(tmp_path), rootfs, name, args, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.delete()
    for c in made:
        assert not glob.glob(f"{paths.ROOT}/{PARENT}/{c.id}") + glob.glob(f"{paths.ROOT}/*/{PARENT}/{c.id}")


SLEEPERS = ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]
COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /share/n; mv /share/n /share/count; sleep 0.05; done"]


def wait_for_pids(c, n):
    assert fs.wait_for(lambda: len(c.pids()) == n, TIMEOUT), c.pids()


def test_limits_are_written_and_seen_inside(make):
    show = "{ cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max 2>/dev/null || " \
           "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; }"
    c = make("limits", ["sh", "-c", show + " > /share/seen; sleep 1000"],
             resources={"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}).start()
    assert fs.wait_for(lambda: len(c.shared("seen").split()) == 2, TIMEOUT), c.output()
    assert c.shared("seen").split() == ["20", str(64 << 20)]
    assert c.cg(("pids", "pids.max"), "pids.max") == "20"
    assert c.cg(("memory", "memory.limit_in_bytes"), "memory.max") == str(64 << 20)


def test_pids_limit_makes_fork_fail(make):
    # sh is one task; each background sleep one more: the 8th fork fails
    c = make("pids", ["sh", "-c", "n=0; while [ $n -lt 20 ]; do sleep 1000 & n=$((n+1)); "
                                  "echo $n > /share/n; done"], resources={"pids": {"limit": 8}}).start()
    c.wait_status("stopped")
    assert c.shared("n") == "7"
    assert "can't fork" in c.output()


def test_memory_limit_oom_kill_is_reported_by_events(make):
    script = "while [ ! -e /share/go ]; do sleep 0.05; done; tail /dev/zero; echo survived > /share/after; sleep 1000"
    c = make("oom", ["sh", "-c", script], resources={"memory": {"limit": 32 << 20, "swap": 32 << 20}}).start()
    ev = subprocess.Popen([sys.executable, "-S", "-c", LAUNCH, "--root", c.root, "events", "--interval", "300ms",
                           c.id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(ev.stdout.readline())
        assert first["type"] == "stats" and first["id"] == c.id          # streaming has begun
        open(f"{c.share}/go", "w").close()
        kinds = []
        while "oom" not in kinds:
            line = ev.stdout.readline()
            assert line, ev.stderr.read()
            kinds.append(json.loads(line)["type"])
        assert kinds.count("oom") == 1 and json.loads(line) == {"type": "oom", "id": c.id}
        assert fs.wait_for(lambda: c.shared("after") == "survived", TIMEOUT)   # only tail was killed
        c.ocirt("kill", c.id, "KILL")
        out, err = ev.communicate(timeout=TIMEOUT)         # the stream ends with the container
        assert ev.returncode == 0 and err == ""
        assert all(json.loads(x)["type"] == "stats" for x in out.splitlines())
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()


def count(c):
    return int(c.shared("count") or 0)


def test_pause_and_resume_a_counting_process(make):
    c = make("pause", COUNTER).start()
    assert fs.wait_for(lambda: count(c) > 2, TIMEOUT)
    c.ocirt("pause", c.id)
    assert c.status() == "paused"
    frozen = c.cg(("freezer", "freezer.state"), "cgroup.freeze")
    assert frozen == ("1" if V2 else "FROZEN")
    before = count(c)
    time.sleep(0.5)
    assert count(c) == before
    r = c.ocirt("pause", c.id, check=False)
    assert r.returncode == 1 and "container not running" in r.stderr
    c.ocirt("resume", c.id)
    assert c.status() == "running"
    assert fs.wait_for(lambda: count(c) > before, TIMEOUT)
    r = c.ocirt("resume", c.id, check=False)
    assert r.returncode == 1 and "container not paused" in r.stderr


def test_update_a_running_container(make, tmp_path):
    c = make("update", ["sleep", "1000"], resources={"memory": {"limit": 64 << 20}, "pids": {"limit": 20},
                                                     "cpu": {"shares": 512}}).start()
    c.ocirt("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50",
            "--cpu-quota", "30000", "--cpu-period", "100000", "--cpu-share", "1024", c.id)
    assert c.cg(("memory", "memory.limit_in_bytes"), "memory.max") == str(128 << 20)
    assert c.cg(("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max") == str((256 - 128 << 20) if V2 else 256 << 20)
    assert c.cg(("pids", "pids.max"), "pids.max") == "50"
    if V2:
        assert c.cg(None, "cpu.max") == "30000 100000" and c.cg(None, "cpu.weight") == "100"
    else:
        assert c.cg(("cpu", "cpu.cfs_quota_us"), None) == "30000" and c.cg(("cpu", "cpu.shares"), None) == "1024"
    res = c.state_json()["config"]["linux"]["resources"]
    assert res["memory"] == {"limit": 128 << 20, "swap": 256 << 20} and res["pids"] == {"limit": 50}
    assert res["cpu"] == {"shares": 1024, "quota": 30000, "period": 100000} and res["devices"]

    # podman's `update --resources=FILE`, then containerd's `--resources -`
    (tmp_path / "res.json").write_text('{"memory":{"limit":100663296,"swap":201326592},'
                                       '"cpu":{"quota":50000,"period":100000}}')
    c.ocirt("update", f"--resources={tmp_path}/res.json", c.id)
    assert c.cg(("memory", "memory.limit_in_bytes"), "memory.max") == str(96 << 20)
    c.ocirt("update", "--resources", "-", c.id, stdin='{"pids":{"limit":30},"cpu":{"period":200000}}')
    assert c.cg(("pids", "pids.max"), "pids.max") == "30"
    if V2:   # the quota recorded before goes with the new period
        assert c.cg(None, "cpu.max") == "50000 200000"
    else:
        assert c.cg(("cpu", "cpu.cfs_period_us"), None) == "200000"
    assert c.state_json()["config"]["linux"]["resources"]["cpu"]["period"] == 200000

    before = c.state_json()
    for args, msg in ((["--memory", "lots"], "invalid value for memory: invalid size: 'lots'"),
                      (["--pids-limit", "x"], 'invalid value "x" for flag -pids-limit'),
                      (["-r", f"{tmp_path}/none.json"], "no such file or directory"),
                      (["-r", "-"], "standard input: invalid JSON")):
        r = c.ocirt("update", *args, c.id, stdin="{", check=False)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r
    r = c.ocirt("update", "--cpuset-cpus", "999", c.id, check=False)       # the kernel refuses it
    assert r.returncode == 1 and "update: cpu.cpus: writing '999'" in r.stderr, r
    assert c.state_json() == before
    c.ocirt("kill", c.id, "KILL")
    c.wait_status("stopped")
    r = c.ocirt("update", "--memory", "64m", c.id, check=False)
    assert r.returncode == 1 and "container not running" in r.stderr



def test_exec_in_a_sub_cgroup(make):
    """exec --cgroup: v2's one PATH, v1's CONTROLLER:PATH; the process is in
    the sub-cgroup from the start (its /proc/self/cgroup says so)."""
    c = make("execsub", ["sleep", "1000"]).start()
    dirs = c.state_json()["cgroup"]["dirs"]
    ctrl = "" if V2 else "memory"
    os.mkdir(f"{dirs[ctrl]}/sub")     # removed with the container's cgroup
    arg = "sub" if V2 else "memory:sub"
    seen = paths.parse_proc_cgroup(c.ocirt("exec", "--cgroup", arg, c.id, "cat", "/proc/self/cgroup").stdout)
    # on v2 the spec has a cgroup namespace: the container's cgroup is its "/"
    assert seen[ctrl] == ("/sub" if V2 else f"/{PARENT}/execsub/sub"), seen
    for bad, msg in (("memory:sub" if V2 else "bogus:sub", "unknown controller"),
                     ("../x" if V2 else "memory:../x", "is not a sub cgroup path"),
                     ("nosuch" if V2 else "memory:nosuch", "there is no sub-cgroup")):
        r = c.ocirt("exec", "--cgroup", bad, c.id, "true", check=False)
        assert r.returncode == 255 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r


def test_ps_json_and_table(make):
    c = make("ps", SLEEPERS).start()
    wait_for_pids(c, 3)
    r = c.ocirt("ps", "--format", "json", c.id)
    pids = json.loads(r.stdout)
    assert r.stderr == "" and r.stdout == json.dumps(pids, separators=(",", ":")) + "\n"
    assert sorted(pids) == sorted(int(p) for p in fs.procs(c.cgroup_dirs()[0]))
    table = c.ocirt("ps", c.id).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 4
    assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids)
    custom = c.ocirt("ps", c.id, "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in custom[1:]) == ["sh", "sleep", "sleep"]
    r = c.ocirt("ps", "--format", "xml", c.id, check=False)
    assert r.returncode == 1 and "invalid format option" in r.stderr


def test_events_stats_json(make):
    c = make("stats", SLEEPERS, resources={"pids": {"limit": 40}, "memory": {"limit": 64 << 20}}).start()
    wait_for_pids(c, 3)
    r = c.ocirt("events", "--stats", c.id)
    assert r.stderr == "" and len(r.stdout.splitlines()) == 1
    e = json.loads(r.stdout)
    assert list(e) == ["type", "id", "data"] and e["type"] == "stats" and e["id"] == c.id
    s = e["data"]
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["pids"] == {"current": 3, "limit": 40}
    assert s["cpu"]["usage"]["total"] > 0
    assert s["memory"]["usage"]["limit"] == 64 << 20 and s["memory"]["usage"]["usage"] > 0
    for args, msg in ((["--interval", "5"], 'invalid value "5" for flag -interval'),
                      (["--interval", "0s"], "duration interval must be greater than 0")):
        r = c.ocirt("events", *args, c.id, check=False)
        assert r.returncode == 1 and msg in r.stderr
    c.ocirt("kill", c.id, "KILL")
    c.wait_status("stopped")
    r = c.ocirt("events", "--stats", c.id, check=False)
    assert r.returncode == 1 and f"container with id {c.id} is not running" in r.stderr


@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_kill_all(make, sig):
    c = make("killall-" + sig.lower(), SLEEPERS).start()
    wait_for_pids(c, 3)
    c.ocirt("kill", "--all", c.id, sig)
    c.wait_status("stopped")
    assert fs.procs(c.cgroup_dirs()[0]) == []


def test_kill_all_and_delete_force_of_a_paused_container(make):
    a = make("paused-kill", SLEEPERS).start()
    b = make("paused-delete", SLEEPERS).start()
    for c in (a, b):
        wait_for_pids(c, 3)
        c.ocirt("pause", c.id)
    a.ocirt("kill", "--all", a.id, "KILL")
    a.wait_status("stopped")
    dirs = b.cgroup_dirs()
    b.ocirt("delete", "--force", b.id)
    assert not [d for d in dirs if os.path.exists(d)]


def test_delete_removes_the_cgroup(make):
    c = make("del", ["sleep", "1000"]).start()
    dirs = c.cgroup_dirs()
    assert dirs and all(os.path.isdir(d) for d in dirs)
    r = c.ocirt("delete", c.id, check=False)
    assert r.returncode == 1 and "not stopped" in r.stderr
    c.ocirt("delete", "--force", c.id)
    assert not [d for d in dirs if os.path.exists(d)]
    assert not os.path.exists(f"{c.root}/{c.id}")


def test_failed_create_leaves_no_cgroup(make):
    bad = {"unified": {"memory.high": "1G"}} if not V2 else {"unified": {"nosuch.file": "1"}}
    for c in (make("bad-res", ["true"], resources=bad), make("bad-exec", ["/no/such/binary"])):
        assert c.create(check=False) != 0
        assert not os.path.exists(f"{c.root}/{c.id}")
        assert not glob.glob(f"{paths.ROOT}/{PARENT}/{c.id}") + glob.glob(f"{paths.ROOT}/*/{PARENT}/{c.id}")


@pytest.fixture
def loop_node(tmp_path):
    """b 7:0 in the container, as linux.devices creates it."""
    return [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600}]


def test_device_rules_block_a_device(make, loop_node):
    probe = ["sh", "-c", "head -c1 /dev/loop0 > /dev/null 2> /share/err; echo $? > /share/rc; sleep 1000"]
    denied = make("dev-deny", probe, devices=loop_node).start()
    allowed = make("dev-allow", probe, devices=loop_node, resources={"devices": [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}).start()
    for c in (denied, allowed):
        assert fs.wait_for(lambda: c.shared("rc") != "", TIMEOUT), c.output()
    assert denied.shared("rc") != "0" and "Operation not permitted" in denied.shared("err")
    assert "Operation not permitted" not in allowed.shared("err")
