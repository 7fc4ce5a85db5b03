"""ocirt: a low-level OCI container runtime, command-line compatible with runc."""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"
