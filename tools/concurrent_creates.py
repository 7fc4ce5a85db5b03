"""K concurrent creates: every `create` of K containers started at once,
for runtimes one after another; each must succeed, and the host's memory
in use (MemTotal - MemAvailable) is sampled every 20 ms. Prints, per
runtime: the wall time, the peak memory above the start, and what the K
created containers then hold; then deletes them all (and fails if any
delete does, or a container is left).

    python3 tools/concurrent_creates.py [-k 500] NAME=RUNTIME ...

Root. Bundles are bundles/busybox's rootfs with `sleep 1000`, each its own
config (cgroupsPath /ocirt-k/ID), in a temporary directory."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024


def in_use():
    with open("/proc/meminfo") as f:
        info = {k: int(v.split()[0]) * 1024 for k, v in (ln.split(":", 1) for ln in f)}
    return info["MemTotal"] - info["MemAvailable"]


class Sampler:
    """The peak of in_use() while it runs."""

    def __init__(self):
        self.peak, self.stop = in_use(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, in_use())

    def end(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def bundles(base, k):
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        config = json.load(f)
    config["root"]["path"] = os.path.join(REPO, "bundles", "busybox", "rootfs")
    config["process"].update(terminal=False, args=["sleep", "1000"])
    out = []
    for i in range(k):
        cid = f"k{os.getpid()}-{i}"
        d = os.path.join(base, cid)
        os.mkdir(d)
        config["linux"]["cgroupsPath"] = f"/ocirt-k/{cid}"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        out.append((cid, d))
    return out


def all_at_once(argvs, base):
    """Start every argv, then wait for all: -> [(argv, rc, stderr)]."""
    procs = []
    for i, argv in enumerate(argvs):
        err = open(os.path.join(base, f"err.{i}"), "w+")
        procs.append((argv, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=err), err))
    out = []
    for argv, p, err in procs:
        rc = p.wait()
        err.seek(0)
        out.append((argv, rc, err.read().strip()))
        err.close()
    return out


def trial(name, runtime, k, base):
    root = os.path.join(base, f"root-{name}")
    os.mkdir(os.path.join(base, name))
    made = bundles(os.path.join(base, name), k)
    before = in_use()
    sampler = Sampler()
    t = time.perf_counter()
    created = all_at_once([[runtime, "--root", root, "create", "--bundle", d, cid] for cid, d in made], base)
    wall = time.perf_counter() - t
    peak = sampler.end()
    time.sleep(1)
    held = in_use() - before
    failed = [(a[-1], e) for a, rc, e in created if rc]
    deleted = all_at_once([[runtime, "--root", root, "delete", "-f", cid] for cid, _ in made], base)
    failed += [(a[-1], "delete: " + e) for a, rc, e in deleted if rc]
    left = [cid for cid, _ in made if os.path.exists(os.path.join(root, cid))]
    print(f"{name}: {k} concurrent creates in {wall:.1f} s, {k - len([1 for _, rc, _ in created if rc])} ok; "
          f"peak memory in use +{(peak - before) / MIB:.0f} MiB; the {k} created containers held "
          f"+{held / MIB:.0f} MiB ({held / k / MIB:.2f} MiB each)")
    for cid, err in failed[:5]:
        print(f"  {cid}: {err}")
    if left:
        print(f"  left behind: {len(left)} state directories")
    return not failed and not left


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", type=int, default=500)
    ap.add_argument("runtimes", nargs="+", metavar="NAME=RUNTIME")
    o = ap.parse_args()
    base = tempfile.mkdtemp(prefix="ocirt-k-")
    try:
        ok = all([trial(*rt.split("=", 1), o.k, base) for rt in o.runtimes])
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{ctrl}/ocirt-k")
            except OSError:
                pass
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
