"""The session keyring. As with runc, each container gets a new one, named
`_ses.<id>`, so that its processes do not hold the caller's keys; an
exec'd process joins it by name. --no-new-keyring keeps the caller's."""

# What runc adds to the new keyring's permissions: search by its owner, or
# by any user with a user namespace; joining by name needs search.
KEY_USR_SEARCH = 0x00080000
KEY_OTH_SEARCH = 0x00000008


def init_steps(ctx, userns):
    """The container's init makes the keyring searchable."""
    if ctx.no_new_keyring:
        return []
    return [_join(ctx, KEY_OTH_SEARCH if userns else KEY_USR_SEARCH)]


def exec_steps(ctx):
    """An exec'd process joins it (or a new one, if it cannot find it) and
    leaves its permissions, as runc's; not in a container made without one."""
    if ctx.no_new_keyring:
        return []
    return [_join(ctx, 0)]


def _join(ctx, perm_bits):
    return ("keyring", "process", f"_ses.{ctx.id}", perm_bits)
