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
        out_dir = NATIVE if self.inplace else os.path.join(self.build_lib, NATIVE)
        compile_init(os.path.join(out_dir, "ocirt-init"))


def compile_init(target):
    import subprocess
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"
    src = os.path.join(HERE, NATIVE, "init.c")
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    subprocess.check_call([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-format-truncation", "-std=gnu11", "-static",
                           "-o", target, src])
    os.chmod(target, 0o755)


setup(
    cffi_modules=[os.path.join(NATIVE, "build.py") + ":ffibuilder"],
    cmdclass={"build_ext": BuildWithInit},
)
