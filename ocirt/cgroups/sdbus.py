"""systemd's manager over the system bus (a user's over the user bus:
rootless), through libsystemd's sd-bus (the
library systemd and crun use) loaded with ctypes: ~5 ms to import and load
on the host, where a pure-Python D-Bus library (jeepney) took ~20, and ten
times that under emulation; only --systemd-cgroup pays for it. Each job is
waited for, as runc does: a scope exists, or is gone, once its job is removed.
The match on JobRemoved and Subscribe are sent without waiting: the bus
handles a connection's messages in order, so both are in place before the
job is queued, and a create or delete makes two round trips fewer."""
import os

from ..errors import OcirtError

FLAG = "--systemd-cgroup"
TIMEOUT_USEC = 30 * 1000000
BOOTED = "/run/systemd/system"   # what sd_booted() and runc look for
_NO_UNIT = ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed")
# the bus's answers when systemd is not on it (or failed to start when activated)
_NO_SYSTEMD = ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
               "org.freedesktop.DBus.Error.Spawn.")
_DEST, _PATH = b"org.freedesktop.systemd1", b"/org/freedesktop/systemd1"
_IFACE = b"org.freedesktop.systemd1.Manager"


def check_systemd():
    """systemd is PID 1."""
    if not os.path.isdir(BOOTED):
        raise OcirtError(f"{FLAG}: systemd is not running as the init system here "
                         f"(no {BOOTED}): leave out --systemd-cgroup")


class _Lib:
    """libsystemd and the ctypes types its sd-bus calls need (loaded once)."""
    lib = None

    @classmethod
    def load(cls):
        if cls.lib is None:
            import ctypes
            try:
                lib = ctypes.CDLL("libsystemd.so.0", use_errno=True)
            except OSError as e:
                raise OcirtError(f"{FLAG}: cannot load libsystemd: {e}") from None
            P, c_int = ctypes.c_void_p, ctypes.c_int

            class Error(ctypes.Structure):
                _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p), ("_need_free", c_int)]

            for name, args in (("sd_bus_open_system", [P]), ("sd_bus_flush_close_unref", [P]),
                               ("sd_bus_message_new_method_call", [P, P, ctypes.c_char_p, ctypes.c_char_p,
                                                                   ctypes.c_char_p, ctypes.c_char_p]),
                               ("sd_bus_message_open_container", [P, ctypes.c_char, ctypes.c_char_p]),
                               ("sd_bus_message_close_container", [P]),
                               ("sd_bus_message_append_array", [P, ctypes.c_char, P, ctypes.c_size_t]),
                               ("sd_bus_call", [P, P, ctypes.c_uint64, P, P]), ("sd_bus_send", [P, P, P]),
                               ("sd_bus_message_unref", [P]), ("sd_bus_error_free", [P]),
                               ("sd_bus_match_signal_async", [P, P, ctypes.c_char_p, ctypes.c_char_p,
                                                              ctypes.c_char_p, ctypes.c_char_p, P, P, P]),
                               ("sd_bus_slot_unref", [P]), ("sd_bus_process", [P, P]),
                               ("sd_bus_wait", [P, ctypes.c_uint64]), ("sd_bus_open_user", [P]),
                               ("sd_bus_get_property_string", [P, ctypes.c_char_p, ctypes.c_char_p,
                                                               ctypes.c_char_p, ctypes.c_char_p, P, P])):
                f = getattr(lib, name)
                f.argtypes, f.restype = args, (P if name.endswith("unref") else c_int)
            lib.sd_bus_message_append.restype = lib.sd_bus_message_read.restype = c_int
            cls.free = ctypes.CDLL(None).free
            cls.free.argtypes = [P]
            cls.ctypes, cls.Error, cls.lib = ctypes, Error, lib
            cls.handler = ctypes.CFUNCTYPE(c_int, P, P, P)
        return cls


class Manager:
    def __init__(self, user=False):
        """user: the caller's own manager, on its user bus (sd-bus finds it:
        $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus)."""
        L = self.L = _Lib.load()
        self.bus = L.ctypes.c_void_p()
        self.bus_name = "user bus" if user else "system bus"
        r = (L.lib.sd_bus_open_user if user else L.lib.sd_bus_open_system)(L.ctypes.byref(self.bus))
        if r < 0:
            raise OcirtError(f"{FLAG}: cannot connect to the {self.bus_name}: {os.strerror(-r)}"
                             + (" (a user manager and $XDG_RUNTIME_DIR/bus: systemd --user, dbus-user-session)"
                                if user else ""))
        self.removed = {}   # job path -> result, from JobRemoved signals
        self.slot = L.ctypes.c_void_p()
        self._on_removed = L.handler(self._job_removed)   # kept: the C side holds it
        r = L.lib.sd_bus_match_signal_async(self.bus, L.ctypes.byref(self.slot), _DEST, _PATH, _IFACE,
                                            b"JobRemoved", self._on_removed, None, None)
        if r >= 0:   # systemd signals JobRemoved to subscribers
            r = self._call("Subscribe", "", (), wait=False)
        if r < 0:
            self.close()
            raise OcirtError(f"{FLAG}: cannot watch systemd's jobs: {os.strerror(-r)}")

    def close(self):
        if self.bus:
            self.L.lib.sd_bus_slot_unref(self.slot)
            self.L.lib.sd_bus_flush_close_unref(self.bus)
            self.bus = None

    def _job_removed(self, msg, _userdata, _error):
        c = self.L.ctypes
        job_id, job, unit, result = c.c_uint32(), c.c_char_p(), c.c_char_p(), c.c_char_p()
        if self.L.lib.sd_bus_message_read(c.c_void_p(msg), b"uoss", c.byref(job_id), c.byref(job),
                                          c.byref(unit), c.byref(result)) > 0:
            self.removed[job.value] = result.value.decode()
        return 0

    def _call(self, method, sig, args, reply_sig=None, wait=True):
        """One method call; -> the reply's single value of reply_sig, if given
        (without wait: sent, its reply left unread -> sd-bus's return code)."""
        L, c = self.L, self.L.ctypes
        m, reply, err = c.c_void_p(), c.c_void_p(), L.Error()
        r = L.lib.sd_bus_message_new_method_call(self.bus, c.byref(m), _DEST, _PATH, _IFACE,
                                                 method.encode())
        try:
            for t, v in zip(_types(sig), args):
                r = r if r < 0 else self._append(m, t, v)
            if r < 0:
                raise OcirtError(f"{FLAG}: {method}: cannot build the message: {os.strerror(-r)}")
            if not wait:
                return L.lib.sd_bus_send(self.bus, m, None)
            r = L.lib.sd_bus_call(self.bus, m, TIMEOUT_USEC, c.byref(err), c.byref(reply))
            if r < 0:
                if err.name and err.name.decode().startswith(_NO_SYSTEMD):
                    raise OcirtError(f"{FLAG}: systemd does not answer on the {self.bus_name}: "
                                     f"{method}: {(err.message or err.name).decode()}")
                if err.name:
                    raise BusError(err.name.decode(), f"{method}: {(err.message or err.name).decode()}")
                raise OcirtError(f"{FLAG}: {method}: {os.strerror(-r)}")
            if reply_sig:
                out = c.c_char_p()
                if L.lib.sd_bus_message_read(reply, reply_sig.encode(), c.byref(out)) < 0:
                    raise OcirtError(f"{FLAG}: {method}: unexpected reply from systemd")
                return out.value
        finally:
            L.lib.sd_bus_error_free(c.byref(err))
            L.lib.sd_bus_message_unref(m)
            L.lib.sd_bus_message_unref(reply)

    def _append(self, m, sig, value):
        """Append one value of complete type sig (basic, array, struct, variant
        as a (sig, value) pair) -> sd-bus's return code."""
        L, c = self.L, self.L.ctypes
        if sig[0] == "a" and sig[1] in _FIXED:
            data = (getattr(c, _FIXED[sig[1]]) * len(value))(*value)
            return L.lib.sd_bus_message_append_array(m, sig[1].encode(), data, c.sizeof(data))
        if sig[0] in "a(v":
            if sig[0] == "a":
                kind, inner, items = b"a", sig[1:], [(sig[1:], v) for v in value]
            elif sig[0] == "(":
                kind, inner, items = b"r", sig[1:-1], list(zip(_types(sig[1:-1]), value))
            else:   # a variant: value is (its signature, its value)
                kind, inner, items = b"v", value[0], [value]
            r = L.lib.sd_bus_message_open_container(m, kind, inner.encode())
            for t, v in items:
                r = r if r < 0 else self._append(m, t, v)
            return r if r < 0 else L.lib.sd_bus_message_close_container(m)
        if sig in "sog":
            arg = c.c_char_p(value.encode())
        else:
            arg = getattr(c, _FIXED[sig])(int(value))
        return L.lib.sd_bus_message_append(m, sig.encode(), arg)

    def _job(self, method, sig, args, unit):
        """Call a method that queues a job; wait for the job's end -> result."""
        job = self._call(method, sig, args, reply_sig="o")
        while job not in self.removed:   # other units' jobs end meanwhile
            r = self.L.lib.sd_bus_process(self.bus, None)
            if r == 0:
                r = self.L.lib.sd_bus_wait(self.bus, TIMEOUT_USEC)
                if r == 0:
                    raise OcirtError(f"{FLAG}: systemd did not finish {method} of {unit} "
                                     f"in {TIMEOUT_USEC // 1000000}s")
            if r < 0:
                raise OcirtError(f"{FLAG}: waiting for {method} of {unit}: {os.strerror(-r)}")
        return self.removed.pop(job)

    def control_group(self):
        """The manager's own cgroup (a user's: /user.slice/user-UID.slice/user@UID.service)."""
        L, c = self.L, self.L.ctypes
        err, out = L.Error(), c.c_void_p()
        r = L.lib.sd_bus_get_property_string(self.bus, _DEST, _PATH, _IFACE, b"ControlGroup", c.byref(err),
                                             c.byref(out))
        try:
            if r < 0:
                why = (err.message or err.name or b"").decode() or os.strerror(-r)
                raise OcirtError(f"{FLAG}: the ControlGroup of systemd on the {self.bus_name}: {why}")
            return c.string_at(out).decode()
        finally:
            L.lib.sd_bus_error_free(c.byref(err))
            L.free(out)

    def start_scope(self, unit, props):
        """StartTransientUnit; raises unless the job is "done"."""
        variants = [(name, (sig, value)) for name, sig, value in props]
        try:
            result = self._job("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "fail", variants, []), unit)
        except BusError as e:
            if e.name == "org.freedesktop.systemd1.UnitExists":
                raise OcirtError(f"the systemd unit {unit} already exists", "linux.cgroupsPath") from None
            raise OcirtError(f"{FLAG}: {e}", "linux.resources") from None
        if result != "done":
            self.reset_failed(unit)
            raise OcirtError(f"{FLAG}: systemd could not start {unit}: {result} "
                             f"(see journalctl -u {unit})")

    def set_properties(self, unit, props):
        variants = [(name, (sig, value)) for name, sig, value in props]
        try:
            self._call("SetUnitProperties", "sba(sv)", (unit, True, variants))
        except BusError as e:
            raise OcirtError(f"{FLAG}: {e}", "linux.resources") from None

    def stop(self, unit):
        """Stop the unit; one systemd already removed (its processes ended) is fine."""
        try:
            self._job("StopUnit", "ss", (unit, "replace"), unit)
        except BusError as e:
            if e.name not in _NO_UNIT:
                raise OcirtError(f"{FLAG}: {e}") from None
        self.reset_failed(unit)

    def reset_failed(self, unit):
        """Waited for: a create of the same id may follow at once, on
        another connection, whose order with this one the bus does not keep."""
        try:
            self._call("ResetFailedUnit", "s", (unit,))
        except BusError:
            pass  # not failed, or not loaded: nothing to forget


# D-Bus's fixed-size basic types -> the name of their ctypes type (b is a
# 32-bit int on the wire); names, as ctypes is imported only when the bus is used
_FIXED = {"y": "c_uint8", "b": "c_int", "n": "c_int16", "q": "c_uint16", "i": "c_int32",
          "u": "c_uint32", "x": "c_int64", "t": "c_uint64", "h": "c_int"}


def _types(sig):
    """A D-Bus signature -> its complete types: "sa(sv)b" -> ["s", "a(sv)", "b"]."""
    out, i = [], 0
    while i < len(sig):
        j = _end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _end(sig, i):
    """Index just past the complete type starting at sig[i]."""
    if sig[i] == "a":
        return _end(sig, i + 1)
    if sig[i] in "({":
        depth = 0
        for j in range(i, len(sig)):
            depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(sig[j], 0)
            if depth == 0:
                return j + 1
        raise ValueError(f"unbalanced D-Bus signature {sig!r}")
    return i + 1


class BusError(Exception):
    def __init__(self, name, msg):
        super().__init__(msg)
        self.name = name
