"""Instructions of the runtime's own process for create, run, exec and
exec --process, by callgrind (its "Collected": the same whatever the load
of the machine, unlike time), for runtimes side by side: ocirt's launchers
(valgrind does not run runc's Go binary). Root; valgrind.

    python3 tools/icount.py [-n 3] NAME=RUNTIME ...

The config is ocibench's (bench/ocibench), on bundles/busybox/rootfs. Only
the process started is counted (no --trace-children): the helper and the
container are not. Each is the median of n; the first create of a runtime
makes its state root, so n >= 3 is the honest minimum. The floor is
`PYTHON -S -c pass`'s (--python: the launchers' interpreter, make's venv by
default; with the interpreter's teardown, which the launcher skips). Everything made is removed."""
import argparse
import importlib.machinery
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
COMMANDS = ("create", "run", "exec", "exec --process")


def ocibench():
    loader = importlib.machinery.SourceFileLoader("ocibench", os.path.join(REPO, "bench", "ocibench"))
    return loader.load_module()


class Counter:
    def __init__(self, tmp):
        self.tmp, self.seq, self.ob = tmp, 0, ocibench()

    def bundle(self, args):
        self.seq += 1
        cid = f"icount-{os.getpid()}-{self.seq}"
        path = os.path.join(self.tmp, cid)
        os.mkdir(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(self.ob.oci_config(args, ROOTFS, "/" + cid), f)
        with open(os.path.join(path, "process.json"), "w") as f:
            json.dump(self.ob.oci_config(["/bin/true"], "", "")["process"], f)
        return cid, path

    def call(self, argv, count=False):
        """Run argv, stdio on files (a created init keeps what it inherits):
        -> its instructions if count."""
        log = os.path.join(self.tmp, "callgrind.log")
        if count:
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}"] + argv
        with open(os.path.join(self.tmp, "out"), "w") as out, open(os.path.join(self.tmp, "err"), "w+") as err:
            rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            err.seek(0)
            if rc:
                raise SystemExit(f"{' '.join(argv)}: exit {rc}: {err.read().strip()}")
        if count:
            with open(log) as f:
                return int(re.search(r"Collected : (\d+)", f.read()).group(1))

    def runtime(self, name, rt, n):
        base = [rt, "--root", os.path.join(self.tmp, f"root-{name}")]
        got = {c: [] for c in COMMANDS}
        for _ in range(n):
            cid, path = self.bundle(["/bin/sleep", "1000"])
            try:
                got["create"].append(self.call(base + ["create", "--bundle", path, cid], count=True))
                self.call(base + ["start", cid])
                got["exec"].append(self.call(base + ["exec", cid, "/bin/true"], count=True))
                got["exec --process"].append(
                    self.call(base + ["exec", "--process", os.path.join(path, "process.json"), cid], count=True))
            finally:
                subprocess.call(base + ["delete", "--force", cid], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
            cid, path = self.bundle(["/bin/true"])
            got["run"].append(self.call(base + ["run", "--bundle", path, cid], count=True))
        return {c: statistics.median(v) for c, v in got.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--python", default="/opt/ocirt/bin/python")
    ap.add_argument("runtimes", nargs="+", metavar="NAME=RUNTIME")
    o = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="icount-")
    try:
        c = Counter(tmp)
        floor = statistics.median(c.call([o.python, "-S", "-c", "pass"], count=True) for _ in range(o.n))
        res = {}
        for spec in o.runtimes:
            name, _, rt = spec.partition("=")
            res[name] = c.runtime(name, rt, o.n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"floor (python -S -c pass): {floor / 1e6:.2f} M instructions; each: total (above the floor)")
    print("| command | " + " | ".join(res) + " |")
    print("| --- |" + " --- |" * len(res))
    for cmd in COMMANDS:
        print(f"| {cmd} | " + " | ".join(f"{r[cmd] / 1e6:.2f} M ({(r[cmd] - floor) / 1e6:.2f})"
                                         for r in res.values()) + " |")


if __name__ == "__main__":
    main()
