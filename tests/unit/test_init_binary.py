"""ocirt-init as built: each created container holds a sealed memfd copy of
it, so its size is memory held per container."""
import os
import struct

from ocirt.launch import INIT

SIZE_BOUND = 160 * 1024  # 113 KiB measured (musl, -Os, LTO, stripped); glibc static was 915 KiB


def section_names(path):
    data = open(path, "rb").read()
    assert data[:5] == b"\x7fELF\x02", "a 64-bit ELF file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off, strtab_size = headers[shstrndx][4], headers[shstrndx][5]
    strtab = data[strtab_off:strtab_off + strtab_size]
    return {strtab[h[0]:strtab.index(b"\0", h[0])].decode() for h in headers}


def test_init_is_stripped_static_and_small():
    names = section_names(INIT)
    assert ".text" in names and ".symtab" not in names and ".debug_info" not in names, sorted(names)
    assert ".interp" not in names and ".dynamic" not in names  # static: nothing to load from the host
    assert os.stat(INIT).st_size < SIZE_BOUND


def test_sources_are_split_by_concern():
    """ocirt-init's files (ocirt/_native/*.c) stay short, and so do their
    functions (a body is what lies between a "{" and a "}" in column 0)."""
    native = os.path.dirname(INIT)
    for name in sorted(os.listdir(native)):
        if not name.endswith(".c"):
            continue
        lines = open(os.path.join(native, name)).read().split("\n")
        assert len(lines) < 400, name
        opened = [i for i, line in enumerate(lines) if line == "{"]
        closed = [i for i, line in enumerate(lines) if line == "}"]
        long = [lines[o - 1] for o, c in zip(opened, closed) if c - o - 1 > 60]
        assert not long, (name, long)
