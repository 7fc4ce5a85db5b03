"""Write the `ocirt` command: a launcher that starts Python with -S (no site
scan, no .pth imports) and puts only the paths ocirt needs on sys.path.
Start-up is the product for a runtime called 3-4 times per container."""
import os
import sys
import sysconfig

# sys.path[0] (the launcher's own directory) is replaced by ocirt's tree,
# so no import looks there first; the venv's site-packages (cffi's backend)
# comes last, as site.py would put it, so that finding a standard module
# does not scan it first. It ends with posix._exit once stdio is flushed: the
# interpreter's teardown costs 1.5-2 ms and ocirt leaves nothing for it (no
# atexit handlers, threads, or unclosed buffered files); posix, since
# importing os costs ~0.9 ms that state/start/kill/delete do not pay.
# The cyclic garbage collector is off: a command of milliseconds frees all
# at its exit, and its collections were ~9% of a create's instructions;
# what then waits for long turns it on meanwhile (ocirt.CyclicGC). ocirt's
# own modules load straight from their __pycache__ (ocirt/__init__.py).
TEMPLATE = """#!{python} -S
import gc
gc.disable()
import sys
sys.path[0] = {tree!r}
sys.path += {site!r}
import ocirt
ocirt.install_pycache()
from ocirt.cli import main, die_if_stdout_closed
rc = main() or 0
try:
    sys.stdout.flush()
    sys.stderr.flush()
except OSError:
    die_if_stdout_closed()
import posix
posix._exit(rc)
"""


def write(target):
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(TEMPLATE.format(python=sys.executable, tree=pkg_parent, site=site))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    write(sys.argv[1])
