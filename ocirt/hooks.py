"""Run the hooks that execute in the runtime's namespaces (prestart,
createRuntime, poststart, poststop) with the state JSON on stdin."""
import os
import select

from ocirt import jsonio
from ocirt.errors import OcirtError, jpath


def run(hooks, kind, state, warn=None):
    """Run hooks[kind] in order. A failure raises OcirtError, or is passed to
    warn(msg) for the kinds whose failure only warns (poststart, poststop)."""
    payload = jsonio.dumps(state).encode()
    # as runc, which works in the bundle: hooks run there, but poststop
    # (run by delete) in the caller's directory
    cwd = state.get("bundle") if kind != "poststop" else None
    for i, h in enumerate(hooks.get(kind) or []):
        where = jpath(jpath("hooks", kind), i)
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
    argv = h.get("args") or [path]
    r, w = os.pipe()
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if cwd else None
    try:
        if cwd:
            os.chdir(cwd)    # posix_spawn takes no working directory
        pid = os.posix_spawn(path, argv, _env(h),
                             file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
    except OSError as e:
        os.close(r)
        os.close(w)
        raise OcirtError(f"hook {path}: {e.strerror.lower()}") from None
    finally:
        if here is not None:
            os.fchdir(here)
            os.close(here)
    os.close(r)
    try:
        os.write(w, payload)
    except BrokenPipeError:
        pass  # a hook need not read its stdin
    os.close(w)
    status = _wait(pid, h.get("timeout"))
    if status is None:
        raise OcirtError(f"hook {path}: timed out after {h['timeout']} s")
    code = os.waitstatus_to_exitcode(status)
    if code:
        what = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise OcirtError(f"hook {path} failed: {what}")


def _env(h):
    """The hook's `env`; without one (not even []), the runtime's own, as
    runc gives (hooks such as nvidia's find their tools on its PATH)."""
    if h.get("env") is None:
        return os.environ
    return dict(e.split("=", 1) for e in h["env"] if "=" in e)


def _wait(pid, timeout):
    if timeout:
        fd = os.pidfd_open(pid)
        p = select.poll()
        p.register(fd, select.POLLIN)
        ready = p.poll(timeout * 1000)
        os.close(fd)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
    return os.waitpid(pid, 0)[1]
