"""Runtime-spec v1.3.0 conformance suite for any runc-compatible runtime (see README.md)."""
