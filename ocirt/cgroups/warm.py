"""Pay a cgroup migration's RCU grace period early, in the background.

On cgroup v1, the first write to any cgroup.procs in a while waits for an
RCU grace period (the kernel's global cgroup_threadgroup_rwsem switching
to writer mode: 3-15 ms here), and the helper's join of the container's
cgroups is such a write, late in create and exec, with the runtime idle
meanwhile. So a thread started early moves this process to the cgroup it
is already in (its own cgroup.procs, as a helper that goes back writes
it): the kernel takes that lock, waits out the grace period, and moves
nothing. The helper's own write, while the lock is still in writer mode
or within a grace period of it, does not wait. (A pid that does not exist
would not do: this kernel looks it up before it takes the lock.) Pure
cgroup v2 needs none of it: the helper clones into the cgroup
(CLONE_INTO_CGROUP) and writes no cgroup.procs."""
import _thread
import posix

from . import own_v1_procs


def start():
    """Begin the grace period in a thread: -> a lock it releases when done,
    or None where there is no v1 hierarchy or the runtime may not write its
    own cgroup. Nobody needs to wait for it."""
    try:
        procs = own_v1_procs()
    except OSError:
        return None
    for path in procs.values():
        try:
            fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
        except OSError:
            continue
        done = _thread.allocate_lock()
        done.acquire()
        _thread.start_new_thread(_write, (fd, done))
        return done
    return None


def _write(fd, done):
    try:
        posix.write(fd, b"0")  # this process, to where it is
    except OSError:
        pass  # only an optimisation
    finally:
        posix.close(fd)
        done.release()
