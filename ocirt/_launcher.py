"""Write the `ocirt` command: a launcher that starts Python with -S (no site
scan, no .pth imports) and puts only the paths ocirt needs on sys.path.
Start-up is the product for a runtime called 3-4 times per container."""
import os
import sys
import sysconfig

# sys.path[0] (the launcher's own directory) is replaced, so no import
# looks there first.
TEMPLATE = """#!{python} -S
import sys
sys.path[0:1] = {paths!r}
from ocirt.cli import main
sys.exit(main())
"""


def write(target):
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [pkg_parent, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths = list(dict.fromkeys(paths))
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(TEMPLATE.format(python=sys.executable, paths=paths))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    write(sys.argv[1])
