"""The man pages, the bash completion and `--help` come from the command
table: every command and every flag of it appears in each, and they work
(groff renders the pages without a warning; bash completes the flags)."""
import shutil
import subprocess

import pytest

from ocirt.cli import COMMANDS, GLOBAL_FLAGS
from ocirt.clidoc import HELP, command_help, completion, flag_help, man_pages


def every_flag():
    yield from (("", f, s) for f, s in GLOBAL_FLAGS.items())
    yield from ((n, f, s) for n, c in COMMANDS.items() for f, s in c[2].items())


def test_every_flag_has_its_help():
    for command, flag, _ in every_flag():
        assert flag_help(command, flag), (command, flag)
    used = {f for _, f, _ in every_flag()} | {(c, f) for c, f, _ in every_flag()}
    assert set(HELP) <= used, set(HELP) - used  # no help for a flag that is gone


def test_man_pages_name_every_command_and_flag():
    pages = man_pages()
    assert set(pages) == {"ocirt.8"} | {f"ocirt-{n}.8" for n in COMMANDS}
    for n in COMMANDS:
        assert f"\\fB{n}\\fR" in pages["ocirt.8"]
    for command, flag, spec in every_flag():
        page = pages[f"ocirt-{command}.8" if command else "ocirt.8"]
        assert "\\-\\-" + flag.replace("-", "\\-") in page, (command, flag)
        if spec[0]:
            assert f", \\-{spec[0]}" in page, (command, flag)


@pytest.mark.skipif(not shutil.which("groff"), reason="no groff")
def test_man_pages_render_without_warnings(tmp_path):
    for name, text in man_pages().items():
        res = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=text, capture_output=True, text=True)
        assert res.returncode == 0 and res.stderr == "", (name, res.stderr)


def complete(script, words):
    """What bash completes for `ocirt WORDS...` (the last word being typed)."""
    line = " ".join(["ocirt", *words])
    prog = (f'{script}\nCOMP_WORDS=(ocirt {" ".join(words)}); COMP_CWORD={len(words)}; COMP_LINE="{line}"; '
            '_ocirt; printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completes_commands_and_each_commands_flags():
    script = completion()
    assert set(complete(script, [""])) >= set(COMMANDS)
    assert set(complete(script, ["--"])) == {f"--{f}" for f in GLOBAL_FLAGS}
    for n, c in COMMANDS.items():
        want = {f"--{f}" for f in c[2]}
        assert set(complete(script, ["--root", "/x", n, "--"])) == want, n
    assert complete(script, ["de"]) == ["delete"]


def test_command_help_lists_every_flag():
    for n, c in COMMANDS.items():
        text = command_help(n)
        assert text.startswith(f"NAME:\n   ocirt {n} - ")
        for f in c[2]:
            assert f"--{f}" in text, (n, f)
