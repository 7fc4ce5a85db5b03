"""Build the two native parts: the cffi module (ocirt._native._lib, parent
side: libseccomp, bpf) and the ocirt-init executable (the container side,
exec'd from a sealed memfd so /proc/self/exe never is a host file)."""
import os
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join("ocirt", "_native")


class BuildWithInit(build_ext):
    def run(self):
        super().run()
        out_dir = "" if self.inplace else self.build_lib
        compile_init(os.path.join(out_dir, NATIVE, "ocirt-init"), self.build_temp)
        write_commit(os.path.join(out_dir, "ocirt", "COMMIT"))


def write_commit(target):
    """What `ocirt --version` names, for a wheel (pip install) as for make build."""
    import subprocess
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=HERE,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown\n"
    with open(target, "w") as f:
        f.write(commit)


def compile_init(target, tmp):
    """Static, stripped and against musl: each created container holds a copy
    of this file (the sealed memfd its init runs from), and glibc's static
    floor alone is about 670 KiB. musl brings no kernel headers: link in the
    system's linux/, asm/ and asm-generic/ (libc-independent) only."""
    import glob
    import shutil
    import subprocess
    sources = sorted(glob.glob(os.path.join(HERE, NATIVE, "*.c")))  # ocirt-init's, one file per concern
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    kernel = os.path.join(tmp, "kernel-headers")
    os.makedirs(kernel, exist_ok=True)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    for name, real in (("linux", "linux"), ("asm-generic", "asm-generic"), ("asm", f"{multiarch}/asm")):
        link = os.path.join(kernel, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("/usr/include", real), link)
    if not shutil.which("musl-gcc"):
        raise SystemExit("musl-gcc not found: install musl-tools (make deps)")
    # -Wno-unused-parameter: every step has the op table's signature (steps_gen.h);
    # -flto: one program, as small as when it was one file
    subprocess.check_call(["musl-gcc", "-Os", "-s", "-static", "-isystem", kernel, "-Wall", "-Wextra", "-Werror",
                           "-Wno-format-truncation", "-Wno-unused-parameter", "-std=gnu11", "-ffunction-sections",
                           "-fdata-sections", "-flto", "-Wl,--gc-sections", "-o", target, *sources])
    os.chmod(target, 0o755)


setup(
    cffi_modules=[os.path.join(NATIVE, "build.py") + ":ffibuilder"],
    cmdclass={"build_ext": BuildWithInit},
)
