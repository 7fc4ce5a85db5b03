"""ocirt/pathops.py: os.path's functions for the commands that do without
os, checked against os.path itself."""
import itertools
import os
import posixpath

from ocirt import pathops

PARTS = ["", "/", "a", "b/", "..", ".", "//", "../c", "/d/../e"]


def test_normpath_is_posixpaths_but_for_a_leading_double_slash():
    for parts in itertools.product(PARTS, repeat=3):
        path = "".join(parts)
        want = posixpath.normpath(path)
        if want.startswith("//") and not want.startswith("///"):
            want = want[1:]  # Go's filepath.Clean (runc) makes it "/"
        assert pathops.normpath(path) == want, path


def test_join_and_parent_are_posixpaths():
    for base, path in itertools.product(["", "/", "/a", "/a/", "a"], ["b", "/b", "b/c", ""]):
        assert pathops.join(base, path) == posixpath.join(base, path), (base, path)
    for path in ["/a/b", "/a", "/", "/a/b/"]:
        assert pathops.parent(path) == posixpath.dirname(path.rstrip("/") or "/"), path


def test_exists_and_isdir(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    assert pathops.exists(str(f)) and not pathops.isdir(str(f)) and pathops.isdir(str(tmp_path))
    assert not pathops.exists(str(tmp_path / "none")) and not pathops.exists("bad\0path")
    assert pathops.exists(str(tmp_path)) == os.path.exists(str(tmp_path))


def test_abspath_is_posixpaths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in ["", ".", "a/../b", "/x/./y/", "../c"]:
        assert pathops.abspath(path) == posixpath.abspath(path), path


def test_real_dir_is_realpath_of_a_directory_else_none(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "f").write_text("")
    (tmp_path / "link").symlink_to("d/e")
    (tmp_path / "dangling").symlink_to("none")
    for path in ["d", "link", "d/../link", "link/.."]:
        assert pathops.real_dir(str(tmp_path / path)) == os.path.realpath(tmp_path / path), path
    for path in ["f", "none", "dangling", "f/.."]:
        assert pathops.real_dir(str(tmp_path / path)) is None, path


def test_read_text_is_opens_read(tmp_path):
    f = tmp_path / "f"
    f.write_bytes("a\nb é\n".encode() * 30000)  # past one read
    assert pathops.read_text(str(f)) == f.read_text()
    for path, error in ((tmp_path, IsADirectoryError), (tmp_path / "none", FileNotFoundError)):
        try:
            pathops.read_text(str(path))
        except error as e:
            assert e.filename == str(path)
        else:
            raise AssertionError(path)


def test_mode_tests_are_stats(tmp_path):
    import stat
    os.mkfifo(tmp_path / "fifo")
    os.symlink("none", tmp_path / "link")
    (tmp_path / "f").write_text("")
    for path in (tmp_path, tmp_path / "fifo", tmp_path / "f", "/dev/null"):
        mode = os.stat(path).st_mode
        assert (pathops.is_dir_mode(mode), pathops.is_reg_mode(mode)) == (stat.S_ISDIR(mode), stat.S_ISREG(mode))
    mode = os.lstat(tmp_path / "link").st_mode
    assert not pathops.is_dir_mode(mode) and not pathops.is_reg_mode(mode)
