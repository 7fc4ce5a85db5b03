"""Signal arguments of `kill` (ocirt.signals.parse_signal), as runc takes them:
names with or without SIG in any case, numbers, RTMIN+n / RTMAX-n."""
import signal

import pytest

from ocirt.errors import OcirtError
from ocirt.signals import parse_signal


@pytest.mark.parametrize("text, num", [
    ("KILL", 9), ("SIGKILL", 9), ("9", 9), ("kill", 9), ("SigKill", 9), ("TERM", 15), ("SIGTERM", 15),
    ("HUP", 1), ("USR1", 10), ("SIGUSR2", 12), ("CHLD", 17), ("WINCH", 28), ("1", 1), ("64", 64),
    ("RTMIN", 34), ("SIGRTMIN+3", 37), ("RTMAX-1", 63), ("SIGRTMAX", 64),
])
def test_accepted(text, num):
    assert parse_signal(text) == num


def test_every_python_signal_name_agrees():
    for sig in signal.Signals:
        if sig.name.startswith("SIG") and not sig.name.startswith(("SIG_", "SIGRT")):
            assert parse_signal(sig.name) == sig.value, sig.name


def test_zero_probes_like_runc():
    assert parse_signal("0") == 0


@pytest.mark.parametrize("text", ["", "65", "-9", "+9", " 9", "FOO", "SIG", "SIGFOO", "RTMIN+31", "RTMAX+1",
                                  "RTMIN-1", "KILL9"])
def test_rejected(text):
    with pytest.raises(OcirtError, match="unknown signal"):
        parse_signal(text)
