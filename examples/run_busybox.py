#!/opt/ocirt/bin/python
"""Run `echo hello` in the busybox bundle from Python with ocirt.api,
capture its output, print it, and delete the container. As root, after
`make build rootfs`:

    /opt/ocirt/bin/python examples/run_busybox.py [--root DIR]
"""
import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # ocirt from this checkout, installed or not

from ocirt.api import Runtime  # noqa: E402


def bundle_running(bundle, args, into):
    """A bundle in `into` like `bundle` (its rootfs shared) whose process runs args."""
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["args"] = args
    config["root"]["path"] = os.path.join(bundle, config["root"]["path"])
    with open(os.path.join(into, "config.json"), "w") as f:
        json.dump(config, f)
    return into


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/run/ocirt", help="the state root (runc's --root)")
    rt = Runtime(root=parser.parse_args().root)
    cid = f"example-{os.getpid()}"
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryFile() as out:
        bundle = bundle_running(os.path.join(REPO, "bundles", "busybox"), ["echo", "hello"], d)
        status = rt.run(cid, bundle, stdout=out, keep=True)   # create, start, wait for the exit
        assert rt.state(cid).status == "stopped"
        rt.delete(cid)
        out.seek(0)
        sys.stdout.write(out.read().decode())
    return status.code


if __name__ == "__main__":
    sys.exit(main())
