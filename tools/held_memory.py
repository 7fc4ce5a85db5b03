"""What a created (not started) container holds, by memory cgroup, for
runtimes side by side. Run as root on cgroup v1 (this machine's hybrid
layout: /sys/fs/cgroup/memory).

    python3 tools/held_memory.py [-n 50] NAME=RUNTIME ...

For each runtime: a shell is put in a fresh memory cgroup (the caller's, as
containerd's shim or conmon would be), creates N containers of
bundles/busybox whose own cgroups are under another fresh parent, and the
growth of both cgroups' memory.usage_in_bytes and memory.stat is divided by
N; RSS and PSS are those of the processes each container holds. One warm-up
create/delete outside the caller's cgroup first, so that page cache of the
runtime's own files is not charged to it. Everything made is removed."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMCG = "/sys/fs/cgroup/memory"
STATS = ("rss", "shmem", "mapped_file", "cache")
MIB = 1024 * 1024


def read(path):
    with open(path) as f:
        return f.read()


def usage(cg):
    stat = dict(line.split() for line in read(f"{cg}/memory.stat").splitlines())
    return {"usage": int(read(f"{cg}/memory.usage_in_bytes")), **{k: int(stat["total_" + k]) for k in STATS}}


def smaps(pid):
    """RSS and PSS of one process, in bytes."""
    fields = dict(line.split(":") for line in read(f"/proc/{pid}/smaps_rollup").splitlines()[1:])
    return {k: int(fields[k].split()[0]) * 1024 for k in ("Rss", "Pss")}


def bundle(tmp, tag, i):
    path = os.path.join(tmp, f"b{i}")
    os.mkdir(path)
    config = json.loads(read(os.path.join(REPO, "bundles", "busybox", "config.json")))
    config["root"]["path"] = os.path.join(REPO, "bundles", "busybox", "rootfs")
    config["linux"]["cgroupsPath"] = f"/{tag}-containers/c{i}"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


def create(argv, tmp, cg=None):
    """Run a create (in memory cgroup cg: a shell moved there first). The
    container keeps its stdio: files, not pipes that would never end."""
    if cg:
        argv = ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh", *argv]
    with open(os.path.join(tmp, "stderr"), "w+") as err:
        if subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err).returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)}: {err.read().strip()}")


def state_pid(runtime, root, cid):
    out = subprocess.run([runtime, "--root", root, "state", cid], check=True, capture_output=True).stdout
    return json.loads(out)["pid"]


def measure(runtime, n, tmp, tag):
    root = os.path.join(tmp, "state")
    ids = [f"{tag}-{i}" for i in range(n)]
    bundles = [bundle(tmp, tag, i) for i in range(n)]
    caller = f"{MEMCG}/{tag}-caller"
    containers = f"{MEMCG}/{tag}-containers"
    os.mkdir(caller)
    os.mkdir(containers)
    try:
        create([runtime, "--root", root, "create", "--bundle", bundles[0], ids[0]], tmp)
        subprocess.run([runtime, "--root", root, "delete", "--force", ids[0]], check=True)
        before = usage(caller), usage(containers)
        for cid, b in zip(ids, bundles):
            create([runtime, "--root", root, "create", "--bundle", b, cid], tmp, caller)
        after = usage(caller), usage(containers)
        procs = [smaps(state_pid(runtime, root, cid)) for cid in ids]
        return {"caller": {k: (after[0][k] - before[0][k]) / n for k in before[0]},
                "containers": {k: (after[1][k] - before[1][k]) / n for k in before[1]},
                "rss": sum(p["Rss"] for p in procs) / n, "pss": sum(p["Pss"] for p in procs) / n}
    finally:
        for cid in ids:
            subprocess.run([runtime, "--root", root, "delete", "--force", cid], capture_output=True)
        for i in range(n):
            cleanup_cgroups(f"{tag}-containers/c{i}")
        cleanup_cgroups(f"{tag}-containers")
        os.rmdir(caller)


def cleanup_cgroups(rel):
    """The runtimes made rel in every v1 hierarchy (or only in some): remove it where it is."""
    for hier in os.listdir("/sys/fs/cgroup"):
        path = os.path.join("/sys/fs/cgroup", hier, rel)
        if os.path.isdir(path) and not os.path.islink(os.path.join("/sys/fs/cgroup", hier)):
            os.rmdir(path)


def row(name, m):
    c, k = m["caller"], m["containers"]
    return (f"| {name:8} | {(c['usage'] + k['usage']) / MIB:6.2f} | {c['usage'] / MIB:6.2f} | {c['shmem'] / MIB:6.2f} "
            f"| {c['rss'] / MIB:6.2f} | {k['usage'] / MIB:6.2f} | {k['rss'] / MIB:6.2f} "
            f"| {m['rss'] / MIB:6.2f} | {m['pss'] / MIB:6.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="containers created per runtime")
    ap.add_argument("runtimes", nargs="+", metavar="NAME=RUNTIME")
    args = ap.parse_args()
    print(f"MiB per created container, {args.n} containers per runtime; caller = the memory cgroup of the "
          "process calling create, containers = the containers' own cgroups")
    print("| runtime  | total  | caller | c.shmem | c.rss | containers | k.rss | RSS | PSS |")
    print("| -------- | ------ | ------ | ------- | ----- | ---------- | ----- | --- | --- |")
    for spec in args.runtimes:
        name, _, runtime = spec.partition("=")
        tmp = tempfile.mkdtemp(prefix="held-memory-")
        try:
            print(row(name, measure(runtime, args.n, tmp, f"mem-held-{os.getpid()}-{name}")), flush=True)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
