"""Run the hooks that execute in the runtime's namespaces (prestart,
createRuntime, poststart, poststop) with the state JSON on stdin."""
import _signal
import os
import select
import time

from ocirt import jsonio
from ocirt.errors import OcirtError, jpath
from ocirt.plan.hooks import FOREVER


def run(hooks, kind, state, warn=None, log=None):
    """Run hooks[kind] in order. A failure raises OcirtError, or is passed to
    warn(msg) for the kinds whose failure only warns (poststart, poststop)."""
    payload = jsonio.dumps(state).encode()
    # as runc, which works in the bundle: hooks run there, but poststop
    # (run by delete) in the caller's directory
    cwd = state.get("bundle") if kind != "poststop" else None
    for i, h in enumerate(hooks.get(kind) or []):
        where = jpath(jpath("hooks", kind), i)
        if log is not None:
            log.debug(f"{state['id']}: running hook {where}: {h['path']}")
        try:
            _run_one(h, payload, cwd)
        except OcirtError as e:
            e.where = where
            if warn is None:
                raise
            warn(str(e))


def container_side(state):
    """The state for the hooks run inside the container (createContainer,
    startContainer), sent to ocirt-init without status, pid and the closing
    brace: it adds them as it sees them (runtime-spec state: the pid as seen
    from the hook's namespace)."""
    rest = {k: v for k, v in state.items() if k not in ("status", "pid")}
    return jsonio.dumps(rest)[:-1]


def _run_one(h, payload, cwd):
    path = h["path"]
    r, w = os.pipe()
    try:
        pid = _spawn(path, h.get("args") or [path], _env(h), r, cwd)
    except BaseException:
        os.close(w)
        raise
    finally:
        os.close(r)
    status = _feed_and_wait(pid, w, payload, h.get("timeout"))
    if status is None:
        raise OcirtError(f"hook {path}: timed out after {h['timeout']} s")
    code = os.waitstatus_to_exitcode(status)
    if code:
        what = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise OcirtError(f"hook {path} failed: {what}")


def _spawn(path, argv, env, stdin, cwd):
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if cwd else None
    try:
        if cwd:
            os.chdir(cwd)    # posix_spawn takes no working directory
        # SIGPIPE back to its default: Python ignores it, and an ignored
        # signal stays ignored across execve
        return os.posix_spawn(path, argv, env,
                              file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0)], setsigdef=[_signal.SIGPIPE])
    except OSError as e:
        raise OcirtError(f"hook {path}: {e.strerror.lower()}") from None
    except ValueError as e:  # a NUL byte (refused in config.json, but a state may be older)
        raise OcirtError(f"hook {path}: {e}") from None
    finally:
        if here is not None:
            os.fchdir(here)
            os.close(here)


def _env(h):
    """The hook's `env`; without one (not even []), the runtime's own, as
    runc gives (hooks such as nvidia's find their tools on its PATH)."""
    if h.get("env") is None:
        return os.environ
    return dict(e.split("=", 1) for e in h["env"] if "=" in e)


def _feed_and_wait(pid, w, payload, timeout):
    """Write the state to the hook's stdin and wait for its end, the two
    within timeout seconds: a hook that reads nothing cannot block us once
    the state is over the pipe's size. The wait status, or None on timeout."""
    pidfd = os.pidfd_open(pid)
    os.set_blocking(w, False)
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    p.register(w, select.POLLOUT)
    view = memoryview(payload)
    end = time.monotonic() + min(timeout, FOREVER) if timeout else None
    try:
        while True:
            ms = _ms_left(end)
            if ms == 0:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return None
            for fd, _ in p.poll(ms):
                if fd == pidfd:
                    return os.waitpid(pid, 0)[1]
                try:
                    view = view[os.write(w, view):]
                except BrokenPipeError:
                    view = view[:0]  # a hook need not read its stdin
                if not view:
                    p.unregister(w)
                    os.close(w)
                    w = None
    finally:
        os.close(pidfd)
        if w is not None:
            os.close(w)


def _ms_left(end):
    """poll's timeout until end (-1: none); poll takes at most 2^31-1 ms, so
    a longer wait goes in slices."""
    if end is None:
        return -1
    left = end - time.monotonic()
    return 0 if left <= 0 else min(int(left * 1000) + 1, 2**31 - 1)
