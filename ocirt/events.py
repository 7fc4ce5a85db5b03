"""The events of a running container's cgroup: stats every interval and an
"oom" per OOM kill, until its last process is gone."""
import os
import time

from ocirt import CyclicGC

LIVENESS = 1.0          # seconds between looks at the cgroup while streaming events


def stream(cg, interval, init_pid):
    """Yield ("stats", stats) every interval and ("oom", None) per OOM
    kill, until the cgroup has no process left (or is gone: the container
    was deleted). Woken by the memory controller's OOM notification and by
    the init's exit; the cgroup is looked at anyway every LIVENESS seconds."""
    import select
    p = select.poll()
    notifier = cg.oom_notifier()
    if notifier is not None:
        p.register(notifier[0], notifier[1])
    try:
        init = os.pidfd_open(init_pid)
        p.register(init, select.POLLIN)
    except ProcessLookupError:
        init = None
    try:
        with CyclicGC():
            yield from _watch(cg, interval, p, init, notifier)
    finally:  # an API caller's process lives on: its fds must not leak
        for fd in (init, notifier and notifier[0]):
            if fd is not None:
                os.close(fd)


def _watch(cg, interval, p, init, notifier):
    ooms = cg.oom_count()
    due = time.monotonic() + interval
    while True:
        alive = bool(cg.pids())
        n = cg.oom_count()
        for _ in range(n - ooms):
            yield "oom", None
        ooms = max(ooms, n)
        if not alive:
            return
        now = time.monotonic()
        if now >= due:
            yield "stats", cg.stats()
            due = max(due + interval, now)
        for fd, _ in p.poll(1000 * max(0.0, min(LIVENESS, due - time.monotonic()))):
            if fd == init:
                p.unregister(init)  # it stays readable: once is enough
            elif notifier is not None and fd == notifier[0]:
                notifier[2]()
