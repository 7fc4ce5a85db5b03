"""ocirt: a low-level OCI container runtime, command-line compatible with runc.

What every command's start needs is here, in the one module of ocirt the
standard import machinery must load: CyclicGC and the pycache finder (as a
module of its own, that finder cost every command a second standard import,
~0.4 M instructions).

The pycache finder imports ocirt's own modules straight from their
__pycache__: the standard path finder and source loader cost ~120 K
instructions a module (a directory scan, stats, an io file object, the
checks of the header), half of what an import costs, and a create loads
~36 of ocirt's modules. Only a module whose compiled file is valid as the
standard loader checks it (this Python's magic number, a timestamp pyc of
the source's mtime and size) is taken; anything else (a missing or stale
.pyc, an extension module) is left to the standard finders, as before. The
launcher installs it (install_pycache)."""
import marshal
import posix
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER
from _imp import _fix_co_filename

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"


class CyclicGC:
    """Python's cyclic garbage collector on for a long wait (run and exec in
    the foreground, events), as it was after: the launcher starts commands
    with it off (see ocirt/_launcher.py). What is older is frozen: the first
    collection would otherwise go through every object of the start-up."""

    def __enter__(self):
        import gc
        self.was = gc.isenabled()
        if not self.was:
            gc.freeze()
            gc.enable()

    def __exit__(self, *exc):
        import gc
        if not self.was:
            gc.disable()
            gc.unfreeze()


# ---- the pycache finder ----------------------------------------------------

class PycacheLoader:
    """Executes the code object the finder read."""

    @staticmethod
    def create_module(spec):
        return None  # the default module

    @staticmethod
    def exec_module(module):
        exec(module.__spec__.loader_state, module.__dict__)


class PycacheFinder:
    """A meta path finder for the modules of the package in `top`."""

    def __init__(self, package, top):
        self.prefix, self.top = package + ".", top
        self.suffix = f".{sys.implementation.cache_tag}.pyc"

    def find_spec(self, name, path=None, target=None):
        if not name.startswith(self.prefix):
            return None
        where = self.top + "/" + name[len(self.prefix):].replace(".", "/")
        spec = self._spec(name, where, ".py", None)
        if spec is None:  # a package?
            spec = self._spec(name, where, "/__init__.py", [where])
        return spec

    def _spec(self, name, where, ending, search):
        source = where + ending
        folder, _, base = source.rpartition("/")
        cached = f"{folder}/__pycache__/{base[:-3]}{self.suffix}"
        try:
            st = posix.stat(source)
            data = _read_pyc(cached)
        except OSError:
            return None
        stamp = (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + \
            (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        if data[:4] != MAGIC_NUMBER or data[4:8] != b"\0\0\0\0" or data[8:16] != stamp:
            return None
        code = marshal.loads(memoryview(data)[16:])
        _fix_co_filename(code, source)
        spec = ModuleSpec(name, PycacheLoader, origin=source, loader_state=code, is_package=search is not None)
        if search is not None:
            spec.submodule_search_locations = search
        spec.cached, spec.has_location = cached, True
        return spec


def _read_pyc(path):
    """Read at its size: a read of 1 MiB maps (and faults in) a fresh buffer
    for each module, and a second one to find the end."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        size = posix.fstat(fd).st_size
        data = posix.read(fd, size)
        while len(data) < size and (chunk := posix.read(fd, size - len(data))):
            data += chunk
        return data
    finally:
        posix.close(fd)


def install_pycache():
    """Ahead of the standard finders, for this package, unless Python runs
    with -O (its .pyc files have another name) or another -X pycache."""
    if sys.flags.optimize or sys.pycache_prefix is not None:
        return
    sys.meta_path.insert(0, PycacheFinder(__name__, __path__[0]))
