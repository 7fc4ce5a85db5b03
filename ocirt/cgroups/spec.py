"""Reading linux.resources: typed values with the field's path for errors."""
from ..errors import OcirtError, jpath


class Section:
    """One object of linux.resources (e.g. "memory") with its JSON path."""

    def __init__(self, data, where):
        if data is not None and not isinstance(data, dict):
            raise OcirtError("must be an object", where)
        self.data = data or {}
        self.where = where

    def at(self, key):
        return jpath(self.where, key)

    def int(self, key, lo=None, hi=None):
        """The integer at key, or None when absent."""
        v = self.data.get(key)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool):
            raise OcirtError(f"{v!r} is not an integer", self.at(key))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise OcirtError(f"{v} is out of range [{lo}, {hi}]", self.at(key))
        return v

    def bool(self, key):
        v = self.data.get(key)
        if v is not None and not isinstance(v, bool):
            raise OcirtError(f"{v!r} is not a boolean", self.at(key))
        return v

    def str(self, key):
        v = self.data.get(key)
        if v is not None and not isinstance(v, str):
            raise OcirtError(f"{v!r} is not a string", self.at(key))
        return v

    def list(self, key):
        v = self.data.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise OcirtError("must be an array", self.at(key))
        return [Section(x, jpath(self.at(key), i)) for i, x in enumerate(v)]

    def sub(self, key):
        return Section(self.data.get(key), self.at(key))

    def __contains__(self, key):
        return self.data.get(key) is not None


def device(entry):
    """"major:minor" of a blockIO device entry."""
    nums = [entry.int(k, 0) for k in ("major", "minor")]
    for k, v in zip(("major", "minor"), nums):
        if v is None:
            raise OcirtError("a device number is required", entry.at(k))
    return "%d:%d" % tuple(nums)


def unsupported(section, keys, why):
    """Fail on the first of keys that is set: the host cannot honour it."""
    for k in keys:
        v = section.data.get(k)
        if v not in (None, [], {}):
            raise OcirtError(f"not supported {why}", section.at(k))


def ignored(resources, where="linux.resources"):
    """Warnings for the fields that are read and not applied: kernel memory
    limits, which kernels no longer honour (v1 keeps the files and ignores
    writes; v2 accounts kernel memory in memory.max). runc warns and goes on."""
    m = Section(resources, where).sub("memory")
    return [OcirtError("ignored: kernels no longer honour kernel memory limits", m.at(k))
            for k in ("kernel", "kernelTCP") if m.int(k) is not None]
