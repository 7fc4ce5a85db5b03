"""The runc-compatible flag parser (ocirt.cli.parse_flags) and what main()
does with the command line before any container is touched. No root."""
import json

import pytest

from ocirt import SPEC_VERSION, __version__
from ocirt.cli import COMMANDS, GLOBAL_FLAGS, UsageError, main, parse_flags

CREATE = COMMANDS["create"][2]
RUN = COMMANDS["run"][2]
EXEC = COMMANDS["exec"][2]


def test_globals_stop_at_the_command():
    vals, rest = parse_flags(["--root", "/x", "--debug", "create", "-b", "y", "id"], GLOBAL_FLAGS)
    assert vals["root"] == "/x" and vals["debug"] is True
    assert rest == ["create", "-b", "y", "id"]


def test_defaults_are_runc_like():
    vals, rest = parse_flags([], GLOBAL_FLAGS)
    assert rest == []
    assert vals["root"] == "" and vals["log"] == "" and vals["log-format"] == "text"
    assert vals["debug"] is False and vals["systemd-cgroup"] is False
    cvals, _ = parse_flags([], CREATE)
    assert cvals == {"bundle": ".", "console-socket": "", "pid-file": "", "no-pivot": False,
                     "no-new-keyring": False, "preserve-fds": 0}


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "--pid-file", "/p", "id"],
    ["--bundle=/b", "--pid-file=/p", "id"],
    ["-b", "/b", "--pid-file", "/p", "id"],
    ["-b=/b", "--pid-file=/p", "id"],
    ["-bundle", "/b", "-pid-file", "/p", "id"],  # Go's flag package takes one dash too
])
def test_value_spellings(argv):
    vals, rest = parse_flags(argv, CREATE)
    assert (vals["bundle"], vals["pid-file"], rest) == ("/b", "/p", ["id"])


@pytest.mark.parametrize("arg, want", [("--no-pivot", True), ("--no-pivot=true", True),
                                       ("--no-pivot=false", False), ("--no-pivot=0", False),
                                       ("--no-pivot=FALSE", False)])
def test_bool_spellings(arg, want):
    vals, rest = parse_flags([arg, "id"], CREATE)
    assert vals["no-pivot"] is want and rest == ["id"]


def test_bool_does_not_eat_the_next_argument():
    vals, rest = parse_flags(["-d", "id"], RUN)
    assert vals["detach"] is True and rest == ["id"]


def test_int_flag_and_its_error():
    assert parse_flags(["--preserve-fds", "3", "id"], CREATE)[0]["preserve-fds"] == 3
    with pytest.raises(UsageError, match='invalid value "x" for flag --preserve-fds'):
        parse_flags(["--preserve-fds", "x", "id"], CREATE)


def test_list_flags_accumulate():
    vals, rest = parse_flags(["-e", "A=1", "--env", "B=2", "--env=C=3", "id", "sh"], EXEC)
    assert vals["env"] == ["A=1", "B=2", "C=3"] and rest == ["id", "sh"]
    # defaults are copies: one parse does not leak into the next
    assert parse_flags(["id"], EXEC)[0]["env"] == []


def test_double_dash_ends_flags():
    vals, rest = parse_flags(["-t", "--", "id", "--cwd", "/x"], EXEC)
    assert vals["tty"] is True and vals["cwd"] == "" and rest == ["id", "--cwd", "/x"]


def test_flags_after_positionals_are_left_to_the_caller():
    _, rest = parse_flags(["id", "--force"], {"force": ("f", "bool", False)})
    assert rest == ["id", "--force"]


def test_unknown_flag_and_missing_value():
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse_flags(["--nope", "id"], CREATE)
    with pytest.raises(UsageError, match="flag needs an argument: --bundle"):
        parse_flags(["--bundle"], CREATE)


def test_short_alias_is_not_a_long_name():
    with pytest.raises(UsageError):
        parse_flags(["--b", "/x"], CREATE)


# ---- main(): what happens before any container is touched

def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ocirt version {__version__}\ncommit: ") and f"\nspec: {SPEC_VERSION}\n" in out
    assert main(["-v"]) == 0


def test_help_and_no_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"   {name} " in out for name in ("create", "start", "state", "kill", "delete", "run", "list", "spec"))
    assert main([]) == 0 and main(["help"]) == 0      # runc prints its help and exits 0


def test_command_help(capsys):
    assert main(["kill", "--help"]) == 0
    assert "ocirt kill" in capsys.readouterr().out
    assert main(["help", "delete"]) == 0
    assert "ocirt delete" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["nosuch"], ["help", "nosuch"]])
def test_unknown_command_exits_3(argv, capsys):
    assert main(argv) == 3                          # urfave/cli's status, as runc
    assert "No help topic for 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flags, rest", [
    (["ID", "9", "--all"], {"all": True}, ["ID", "9"]),
    (["--all", "ID", "9"], {"all": True}, ["ID", "9"]),
    (["ID", "-9"], {"all": False}, ["ID", "-9"]),             # not a flag past the id: an argument
    (["ID", "--", "--all"], {"all": False}, ["ID", "--all"]),
])
def test_flags_may_follow_the_arguments(argv, flags, rest):
    vals, got = parse_flags(argv, {"all": ("a", "bool", False)}, reorder=True)
    assert (vals, got) == (flags, rest)
    upd, got = parse_flags(["ID", "--cpu-quota", "-1", "--memory=1m"], COMMANDS["update"][2], reorder=True)
    assert (upd["cpu-quota"], upd["memory"], got) == ("-1", "1m", ["ID"])


def test_exec_arguments_are_a_command_line():
    vals, rest = parse_flags(["ID", "ls", "--env", "A=1"], EXEC)
    assert vals["env"] == [] and rest == ["ID", "ls", "--env", "A=1"]


@pytest.mark.parametrize("argv, msg", [
    (["--bogus", "list"], "flag provided but not defined: -bogus"),
    (["state"], '"state" requires a container id'),
    (["kill", "a", "KILL", "x"], '"kill" takes at most 2 argument(s)'),
    (["--systemd-cgroup", "state", "a"], 'container "a" does not exist'),  # the flag is taken
])
def test_usage_errors_are_one_line_exit_1(argv, msg, capsys, tmp_path):
    assert main(["--root", str(tmp_path)] + argv) == 1
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_log_format(capsys, tmp_path):
    assert main(["--root", str(tmp_path), "--log-format", "xml", "list"]) == 1
    assert 'unknown log format "xml"' in capsys.readouterr().err


def test_json_log_of_an_error(capsys, tmp_path):
    log = tmp_path / "log.json"
    assert main(["--root", str(tmp_path), "--log", str(log), "--log-format", "json", "state", "nope"]) == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and 'container "nope" does not exist' in entry["msg"]
    assert entry["msg"] in capsys.readouterr().err


def test_list_of_an_empty_root(capsys, tmp_path):
    assert main(["--root", str(tmp_path / "none"), "list", "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == "null"
    assert main(["--root", str(tmp_path / "none"), "list", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["--root", str(tmp_path / "none"), "list", "--format", "yaml"]) == 1


@pytest.mark.parametrize("value", ["auto", "false", "0", "true", "T"])
def test_rootless_values_are_runcs(value, capsys, tmp_path):
    assert main(["--root", str(tmp_path), f"--rootless={value}", "list", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_a_bad_rootless_value_fails_create_and_is_named(capsys, tmp_path):
    """As runc: parsed by the commands that make a container (create, run),
    first; state, list and delete, which do not use it, ignore it."""
    root = tmp_path / "root"
    for command in (["create", "--bundle", str(tmp_path), "c1"], ["run", "--bundle", str(tmp_path), "c1"]):
        assert main(["--root", str(root), "--rootless=maybe"] + command) == 1
        assert capsys.readouterr().err == 'ocirt: invalid --rootless value "maybe": use true, false or auto\n'
        assert not root.exists()
    assert main(["--root", str(root), "--rootless=maybe", "list", "-q"]) == 0
    assert main(["--root", str(root), "--rootless=maybe", "state", "c1"]) == 1
    assert capsys.readouterr().err == 'ocirt: container "c1" does not exist\n'


def test_cyclic_gc_is_on_for_a_long_wait_and_as_it_was_after():
    import gc

    from ocirt import CyclicGC
    was = gc.isenabled()
    try:
        gc.disable()  # as the launcher starts a command
        with CyclicGC():
            assert gc.isenabled() and gc.get_freeze_count() > 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
        gc.enable()  # an API caller's
        with CyclicGC():
            assert gc.isenabled() and gc.get_freeze_count() == 0
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
