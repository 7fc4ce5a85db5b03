"""--rootless and the default state root: runc's rules, without root."""
import os

import pytest

from ocirt import rootless as rl
from ocirt.errors import OcirtError


@pytest.mark.parametrize("value,want", [("", None), ("auto", None), ("AUTO", None), ("true", True),
                                        ("1", True), ("T", True), ("false", False), ("0", False)])
def test_parse_is_runcs_bool_or_auto(value, want):
    assert rl.parse(value) is want


def test_parse_names_the_flag():
    with pytest.raises(OcirtError, match='invalid --rootless value "yes"'):
        rl.parse("yes")


@pytest.mark.parametrize("text,inside", [("         0          0 4294967295\n", False),
                                         ("         0       1000          1\n", True),
                                         ("0 0 4294967295\n1 1 1\n", True), ("", True)])
def test_user_namespace_is_one_that_does_not_map_everything(tmp_path, text, inside):
    (tmp_path / "uid_map").write_text(text)
    assert rl.in_user_namespace(str(tmp_path / "uid_map")) is inside


def test_no_uid_map_is_the_initial_namespace(tmp_path):
    assert rl.in_user_namespace(str(tmp_path / "none")) is False


def _as(monkeypatch, euid, userns=False, **env):
    monkeypatch.setattr(rl.posix, "geteuid", lambda: euid)
    monkeypatch.setattr(rl, "in_user_namespace", lambda: userns)
    for k in ("XDG_RUNTIME_DIR", "USER"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_auto_is_rootless_when_not_root_or_root_of_a_user_namespace(monkeypatch):
    _as(monkeypatch, 0)
    assert rl.is_rootless("auto") is False and rl.is_rootless("true") is True
    _as(monkeypatch, 1000)
    assert rl.is_rootless("auto") is True and rl.is_rootless("false") is False
    _as(monkeypatch, 0, userns=True)
    assert rl.is_rootless("") is True


def test_default_root_follows_runc(monkeypatch):
    _as(monkeypatch, 1000, XDG_RUNTIME_DIR="/run/user/1000")
    assert rl.default_root() == ("/run/user/1000/ocirt", True)
    _as(monkeypatch, 1000)
    assert rl.default_root() == ("/run/ocirt", False)  # runc falls back to /run/runc too
    _as(monkeypatch, 0, XDG_RUNTIME_DIR="/run/user/0")
    assert rl.default_root() == ("/run/ocirt", False)  # the host's root keeps /run
    _as(monkeypatch, 0, userns=True, XDG_RUNTIME_DIR="/run/user/1000", USER="me")
    assert rl.default_root() == ("/run/user/1000/ocirt", True)
    _as(monkeypatch, 0, userns=True, XDG_RUNTIME_DIR="/run/user/1000", USER="root")
    assert rl.default_root() == ("/run/ocirt", False)


def test_the_xdg_root_is_owner_only_and_sticky(tmp_path, monkeypatch):
    from ocirt.api import Runtime
    _as(monkeypatch, 1000, XDG_RUNTIME_DIR=str(tmp_path))
    rt = Runtime()
    assert rt.root == str(tmp_path / "ocirt") and rt.rootless
    assert os.stat(rt.root).st_mode & 0o7777 == 0o1700
    assert Runtime(str(tmp_path / "given")).root == str(tmp_path / "given")
    assert not os.path.exists(tmp_path / "given")  # --root wins, and is made by create


def test_an_unwritable_xdg_dir_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from ocirt.cli import main
    (tmp_path / "file").write_text("")
    _as(monkeypatch, 1000, XDG_RUNTIME_DIR=str(tmp_path / "file"))
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ocirt: {tmp_path}/file/ocirt: not a directory: the state root") and err.count("\n") == 1
