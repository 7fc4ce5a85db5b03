"""The few os.path functions the hot path needs, on posix: `import os`
costs ~0.9 ms here (its _collections_abc), as much as all the work
`ocirt state` does, and state, start, kill and delete do without it."""
import posix
import stat


def exists(path):
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isdir(path):
    try:
        return stat.S_ISDIR(posix.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def parent(path):
    """os.path.dirname of an absolute path."""
    return path.rstrip("/").rpartition("/")[0] or "/"
