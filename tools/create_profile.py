"""Where the milliseconds of `ocirt create` go: N creates of a bundle, each
in a fresh interpreter as the command line runs it, with each phase timed
by a wrapper around the function that does it (and imports summed apart);
prints each phase's median. Deletes what it made. Root, this tree's code.

    python3 tools/create_profile.py [-n 30] [--bundle bundles/busybox]

The rest of a run is what the wrappers do not see: the interpreter's own
start and exit (the `python3 -S -c pass` floor) and the glue between."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (phase, module, attribute): wrapped in the child; a phase's time excludes
# the imports made inside it (summed under "imports")
PHASES = [
    ("config: read, parse, validate", "ocirt.bundle", "load"),
    ("cgroup: paths, mkdir, limits", "ocirt.cgroups.base", "Cgroup.create"),
    ("host facts (caps, bind sources)", "ocirt.hostfacts", "gather"),
    ("seccomp: compile or cached", "ocirt.launch", "compiled_seccomp"),
    ("plan: build and encode", "ocirt.plan.build", "create_plan"),
    ("helper: exec, join cgroups, clone, mounts, pivot, until ready", "ocirt.launch", "Launch.converse"),
    ("state.json", "ocirt.state", "Container.save"),
]

# The child starts as the launcher's script does (ocirt/_launcher.py): the
# cyclic GC off, ocirt's modules through its pycache finder.
CHILD = r"""
import gc
gc.disable()
import sys, time
T0 = time.perf_counter()
sys.path[0:1] = [REPO]
import ocirt
ocirt.install_pycache()
import builtins, importlib
times = {}
stack = []
real_import = builtins.__import__
depth = [0]
def timed_import(name, *a, **k):
    if name in sys.modules or depth[0]:
        return real_import(name, *a, **k)
    depth[0] += 1
    t = time.perf_counter()
    try:
        return real_import(name, *a, **k)
    finally:
        depth[0] -= 1
        d = time.perf_counter() - t
        times["imports"] = times.get("imports", 0) + d
        for s in stack:
            times[s] = times.get(s, 0) - d
builtins.__import__ = timed_import
def wrap(phase, mod, attr):
    m = importlib.import_module(mod)
    owner, name = (getattr(m, attr.split(".")[0]), attr.split(".")[1]) if "." in attr else (m, attr)
    fn = getattr(owner, name)
    def timed(*a, **k):
        stack.append(phase)
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            stack.pop()
            times[phase] = times.get(phase, 0) + time.perf_counter() - t
    setattr(owner, name, timed)
    if owner is not m:
        return
    for other in list(sys.modules.values()):   # from-imports of a function
        if getattr(other, "__name__", "").startswith("ocirt") and getattr(other, name, None) is fn:
            setattr(other, name, timed)
for p in PHASES:
    wrap(*p)
from ocirt.cli import main
rc = main(ARGV)
times["total in Python (from the first line)"] = time.perf_counter() - T0
import json
sys.stderr.write("PROFILE " + json.dumps(times) + "\n")
sys.exit(rc)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--bundle", default=os.path.join(REPO, "bundles", "busybox"))
    o = ap.parse_args()
    root = tempfile.mkdtemp(prefix="ocirt-profile-")
    samples, walls = {}, []
    for i in range(o.n):
        cid = f"profile-{os.getpid()}-{i}"
        code = CHILD.replace("REPO", repr(REPO)).replace("PHASES", repr(PHASES)).replace(
            "ARGV", repr(["--root", root, "create", "--bundle", o.bundle, cid]))
        with tempfile.TemporaryFile("w+") as err:  # not a pipe: the created init holds its stdio
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-S", "-c", code], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
            walls.append((time.perf_counter() - t) * 1000)
            err.seek(0)
            p.stderr = err.read()
        subprocess.run([sys.executable, "-S", "-m", "ocirt", "--root", root, "delete", "-f", cid], cwd=REPO,
                       capture_output=True)
        line = next((ln for ln in p.stderr.splitlines() if ln.startswith("PROFILE ")), None)
        if p.returncode or not line:
            sys.exit(f"create_profile: create failed: {p.stderr.strip()}")
        for k, v in json.loads(line[len("PROFILE "):]).items():
            samples.setdefault(k, []).append(v * 1000)
    os.rmdir(root)
    rows = [("create, wall (spawn to exit)", statistics.median(walls))]
    rows += [(k, statistics.median(v)) for k, v in samples.items()]
    width = max(len(k) for k, _ in rows)
    print(f"{o.n} creates of {o.bundle}, medians (ms):")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:6.2f}")


if __name__ == "__main__":
    main()
