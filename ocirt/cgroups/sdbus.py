"""systemd's manager over the system bus (jeepney: pure Python, ~10 ms to
import, so only --systemd-cgroup pays for it). Each job is waited for, as
runc does: a scope exists, or is gone, once its job is removed."""
import os

from ..errors import OcirtError

FLAG = "--systemd-cgroup"
TIMEOUT = 30.0
BOOTED = "/run/systemd/system"   # what sd_booted() and runc look for
_NO_UNIT = ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed")


def check_systemd():
    """systemd is PID 1."""
    if not os.path.isdir(BOOTED):
        raise OcirtError(f"{FLAG}: systemd is not running as the init system here "
                         f"(no {BOOTED}): leave out --systemd-cgroup")


class Manager:
    def __init__(self):
        from jeepney import DBusAddress
        from jeepney.io.blocking import open_dbus_connection
        try:
            self.conn = open_dbus_connection(bus="SYSTEM")
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise OcirtError(f"{FLAG}: cannot connect to the system bus: {e}") from None
        self.addr = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                                interface="org.freedesktop.systemd1.Manager")
        self._call("Subscribe", "", ())   # systemd signals JobRemoved to subscribers

    def close(self):
        self.conn.close()

    def _call(self, method, sig, args):
        from jeepney import new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg
        try:   # an error reply is a reply: unwrap_msg raises it
            return unwrap_msg(self.conn.send_and_get_reply(new_method_call(self.addr, method, sig, args),
                                                           timeout=TIMEOUT))
        except DBusErrorResponse as e:
            raise BusError(e.name, f"{method}: {e.data[0] if e.data else e.name}") from None
        except (OSError, TimeoutError) as e:
            raise OcirtError(f"{FLAG}: {method}: {e or 'no answer from systemd'}") from None

    def _job(self, method, sig, args, unit):
        """Call a method that queues a job; wait for the job's end -> result."""
        from jeepney import MatchRule, message_bus
        rule = MatchRule(type="signal", interface="org.freedesktop.systemd1.Manager",
                         member="JobRemoved", path="/org/freedesktop/systemd1")
        self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=TIMEOUT)
        with self.conn.filter(rule, bufsize=64) as queue:   # other units' jobs end meanwhile
            job = self._call(method, sig, args)[0]
            while True:
                try:
                    msg = self.conn.recv_until_filtered(queue, timeout=TIMEOUT)
                except TimeoutError:
                    raise OcirtError(f"{FLAG}: systemd did not finish {method} of {unit} "
                                     f"in {TIMEOUT:g}s") from None
                if msg.body[1] == job:
                    return msg.body[3]

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
        try:
            self._call("ResetFailedUnit", "s", (unit,))
        except BusError:
            pass  # not failed, or not loaded: nothing to forget


class BusError(Exception):
    def __init__(self, name, msg):
        super().__init__(msg)
        self.name = name
