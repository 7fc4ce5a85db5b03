"""hooks: checked here; createContainer and startContainer become steps of
the container side (they run in the container's namespaces), the others are
run by the runtime (ocirt/hooks.py)."""
from ocirt.errors import OcirtError, jpath
from ocirt.plan import argv_fields

# A timeout beyond any real wait (31 years): keeps huge values finite
FOREVER = 10**9
KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def check_hooks(spec):
    hooks = spec.get("hooks") or {}
    for kind, entries in hooks.items():
        if kind not in KINDS:
            continue  # unknown hook kinds are ignored, as the spec allows for extensions
        for i, h in enumerate(entries or []):
            where = jpath(jpath("hooks", kind), i)
            if not str(h.get("path", "")).startswith("/"):
                raise OcirtError("must be an absolute path", jpath(where, "path"))
            if "timeout" in h and h["timeout"] <= 0:
                raise OcirtError("must be greater than zero", jpath(where, "timeout"))
    return hooks


# The container's status while each in-container kind runs (runtime.md).
STATUS = {"createContainer": "creating", "startContainer": "created"}


# Flags of a hook step: run in the container's root; the process's env, to
# which the init adds the HOME it found (as it does for the program).
IN_ROOT, PROCESS_ENV = 1, 2


def hook_steps(hooks, kind, proc_env):
    """As runc: createContainer runs in the container's root (before
    pivot_root), startContainer in the process's cwd; a hook without `env`
    gets the process's environment (proc_env)."""
    steps = []
    for i, h in enumerate(hooks.get(kind) or []):
        env = proc_env if h.get("env") is None else h["env"]
        flags = (IN_ROOT if kind == "createContainer" else 0) | (PROCESS_ENV if h.get("env") is None else 0)
        steps.append(("hook", jpath(jpath("hooks", kind), i), min(h.get("timeout", 0), FOREVER), STATUS[kind],
                      flags, h["path"], *argv_fields(h.get("args") or []), *argv_fields(env)))
    return steps
