"""Load a bundle: config.json parsed, validated against the schema and
resolved (root.path made absolute against the bundle)."""
from ocirt import jsonio
from ocirt.errors import OcirtError
from ocirt.pathops import abspath, join, normpath, real_dir


def load(bundle):
    bundle = abspath(bundle)
    path = join(bundle, "config.json")
    try:
        data = jsonio.read_file(path)
        spec = jsonio.loads(data)
    except FileNotFoundError:
        raise OcirtError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise OcirtError(f"{path}: {e.strerror.lower()}") from None
    except ValueError as e:
        raise OcirtError(f"config.json: invalid JSON: {e}") from None
    from ocirt.validate import check_strings, validate_config
    validate_config(spec)
    check_strings(spec, data)
    if "linux" not in spec:
        raise OcirtError("missing: this runtime runs Linux containers", "linux")
    if "process" not in spec:
        raise OcirtError("missing: nothing to run", "process")
    return spec, rootfs_of(spec, bundle)


def rootfs_of(spec, bundle):
    root = (spec.get("root") or {}).get("path")
    if not root:
        raise OcirtError("missing", "root.path")
    rootfs = real_dir(join(bundle, root))
    if rootfs is None:
        raise OcirtError(f"{normpath(join(bundle, root))}: not a directory", "root.path")
    return rootfs
