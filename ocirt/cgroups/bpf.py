"""Attach an eBPF device filter to a cgroup2 directory, replacing the one
attached before (new first, then the old detached: no window without a filter)."""
import os

from .fs import FsError


def set_device_filter(cgroup_dir, program, where):
    from .._native._lib import ffi, lib
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = _attached(lib, ffi, fd, where)
        log = ffi.new("char[]", 1 << 16)
        prog = lib.ocirt_bpf_devprog_load(ffi.from_buffer(program), len(program) // 8, log, len(log))
        if prog < 0:
            detail = ffi.string(log).decode(errors="replace").strip().splitlines()
            raise FsError(f"cannot load the eBPF device filter: {os.strerror(-prog)}"
                          + (f" ({detail[-1]})" if detail else ""), where, -prog)
        try:
            _check(lib.ocirt_bpf_dev_attach(fd, prog), "attach", cgroup_dir, where)
        finally:
            os.close(prog)
        for prog_id in old:
            old_fd = lib.ocirt_bpf_prog_fd_by_id(prog_id)
            if old_fd >= 0:
                lib.ocirt_bpf_dev_detach(fd, old_fd)
                os.close(old_fd)
    finally:
        os.close(fd)


def attached_count(cgroup_dir):
    from .._native._lib import ffi, lib
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return len(_attached(lib, ffi, fd, None))
    finally:
        os.close(fd)


def _attached(lib, ffi, fd, where):
    ids = ffi.new("unsigned int[]", 64)
    count = ffi.new("unsigned int *", 64)
    _check(lib.ocirt_bpf_dev_query(fd, ids, count), "query", "", where)
    return [ids[i] for i in range(count[0])]


def _check(rc, what, path, where):
    if rc < 0:
        raise FsError(f"cannot {what} the eBPF device filter {path}: {os.strerror(-rc)}", where, -rc)
