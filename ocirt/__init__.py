"""ocirt: a low-level OCI container runtime, command-line compatible with runc."""

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
