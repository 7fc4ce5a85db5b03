"""cffi builder for ocirt._native._lib, the parent-side native module.

Each feature adds a pair in lib/: NAME.h (declarations given to cffi.cdef;
plain C, no preprocessor lines) and NAME.c (the implementation). Libraries
a pair needs are listed on a line `// libs: a b` in its .h file."""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "lib")


def _pairs():
    for header in sorted(glob.glob(os.path.join(LIB, "*.h"))):
        yield header, header[:-2] + ".c"


def _libs(header):
    for line in open(header):
        if line.startswith("// libs:"):
            yield from line.split(":", 1)[1].split()


ffibuilder = FFI()
cdefs, sources, libs = [], [], []
for h, c in _pairs():
    text = open(h).read()
    cdefs.append("\n".join(l for l in text.splitlines() if not l.startswith(("//", "#"))))
    sources.append(os.path.relpath(c, os.path.dirname(os.path.dirname(HERE))))
    libs.extend(_libs(h))
ffibuilder.cdef("\n".join(cdefs) or "int ocirt_native_version(void);")
ffibuilder.set_source(
    "ocirt._native._lib",
    "\n".join(f'#include "{h}"' for h, _ in _pairs()) if cdefs else "int ocirt_native_version(void) { return 1; }",
    sources=sources,
    libraries=sorted(set(libs)),
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
