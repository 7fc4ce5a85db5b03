/* ocirt-init: device nodes and links. */
#include "init.h"

void op_mknod(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *path = a[MKNOD_PATH];
    mode_t mode = num(a[MKNOD_MODE]);
    char t = a[MKNOD_TYPE][0];
    mode |= t == 'c' || t == 'u' ? S_IFCHR : t == 'b' ? S_IFBLK : S_IFIFO;
    const char *name;
    int parent = open_parent(run->root_fd, path, &name);
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* linux.devices: what exists there must be this very device (the
         * spec wants an error otherwise); default devices just replace it. */
        int same = (st.st_mode & S_IFMT) == (mode & S_IFMT) &&
                   (S_ISFIFO(st.st_mode) || st.st_rdev == makedev(num(a[MKNOD_MAJOR]), num(a[MKNOD_MINOR])));
        if (!same && !strcmp(a[MKNOD_POLICY], "strict"))
            die("%s already exists and is not this device", path);
        CHECK(unlinkat(parent, name, 0), "remove %s", path);
    }
    CHECK(mknodat(parent, name, mode, makedev(num(a[MKNOD_MAJOR]), num(a[MKNOD_MINOR]))), "mknod %s", path);
    CHECK(fchownat(parent, name, num(a[MKNOD_UID]), num(a[MKNOD_GID]), AT_SYMLINK_NOFOLLOW), "chown %s", path);
    close(parent);
}

/* In a user namespace mknod is refused: bind the host's node instead. */
void op_binddev(struct run *run, struct rec *r)
{
    char **a = r->argv;
    touch_in_root(run->root_fd, a[BINDDEV_PATH]);
    int fd = open_in_root(run->root_fd, a[BINDDEV_PATH], O_PATH);
    CHECK(fd, "open %s", a[BINDDEV_PATH]);
    char target[64];
    fdpath(target, sizeof target, fd);
    CHECK(mount(a[BINDDEV_PATH], target, NULL, MS_BIND, NULL), "bind device %s", a[BINDDEV_PATH]);
    close(fd);
}

void op_symlink(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *target = a[SYMLINK_TARGET], *link = a[SYMLINK_LINK], *name;
    int parent = open_parent(run->root_fd, link, &name);
    if (symlinkat(target, parent, name) < 0 && errno != EEXIST)
        die("symlink %s -> %s: %s", link, target, err(errno));
    close(parent);
}
