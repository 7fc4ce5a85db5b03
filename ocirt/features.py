"""The runtime-spec features document (features.md,
features-linux.md). Every list comes from the table the config parser
checks against, so the document cannot claim what create refuses, nor miss
what it accepts. Off the hot path: clients call it once, if at all."""
from ocirt import SPEC_VERSION

OCI_VERSION_MIN = "1.0.0"


def features():
    """The features document as a dict."""
    from ocirt.plan.hooks import KINDS
    from ocirt.plan.mounts import MOUNT_OPTIONS
    from ocirt.plan.namespaces import CLONE_FLAGS
    from ocirt.plan.process import CAPABILITIES
    from ocirt import seccomp as bpf
    from ocirt.plan import seccomp
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(KINDS),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": sorted(CLONE_FLAGS),
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True},
            "seccomp": {
                "enabled": True,
                "actions": list(seccomp.SECCOMP_ACTIONS),
                "operators": list(seccomp.SECCOMP_OPERATORS),
                "archs": list(seccomp.SECCOMP_ARCHES),
                "knownFlags": list(seccomp.SECCOMP_FLAGS),
                "supportedFlags": bpf.kernel_flags(),
            },
            # "enabled" says the runtime can apply it, not that the host has it
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": True},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": bpf.libseccomp_version(),
            "org.opencontainers.runc.checkpoint.enabled": _checkpoint_enabled(),
        },
    }


def _checkpoint_enabled():
    """"true" only where checkpoint can work: criu is there and `criu
    check` passes on this kernel (one criu swrk, ~0.1 s)."""
    from ocirt import criu
    return "false" if criu.missing() else "true"
