/* ocirt-init: the mounts steps: mount, read-only paths, masks. */
#include "init.h"

/* Is WORD in the comma-separated LIST? */
int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
            return 1;
    return 0;
}

static void copy_file(int from, int to, const char *name, const struct stat *st)
{
    int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(in, "tmpcopyup: open %s", name);
    int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
    CHECK(out, "tmpcopyup: create %s", name);
    for (off_t left = st->st_size; left > 0;) {
        ssize_t n = sendfile(out, in, NULL, left);
        CHECK(n, "tmpcopyup: copy %s", name);
        if (n == 0)
            break;
        left -= n;
    }
    close(in);
    close(out);
}

/* tmpcopyup: copy the directory FROM (what the tmpfs now hides) into TO,
 * keeping types, modes, owners and times. */
static void copy_tree(int from, int to)
{
    DIR *d = fdopendir(dup(from));
    if (!d)
        die("tmpcopyup: %s", err(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        struct stat st;
        CHECK(fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW), "tmpcopyup: stat %s", name);
        if (S_ISDIR(st.st_mode)) {
            CHECK(mkdirat(to, name, st.st_mode & 07777), "tmpcopyup: mkdir %s", name);
            int f = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int t = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            CHECK(f < 0 ? f : t, "tmpcopyup: open %s", name);
            copy_tree(f, t);
            close(f);
            close(t);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(from, to, name, &st);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(from, name, target, sizeof target - 1);
            CHECK(n, "tmpcopyup: readlink %s", name);
            target[n] = 0;
            CHECK(symlinkat(target, to, name), "tmpcopyup: symlink %s", name);
        } else {
            CHECK(mknodat(to, name, st.st_mode, st.st_rdev), "tmpcopyup: mknod %s", name);
        }
        CHECK(fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW), "tmpcopyup: chown %s", name);
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        CHECK(utimensat(to, name, ts, AT_SYMLINK_NOFOLLOW), "tmpcopyup: set times of %s", name);
    }
    closedir(d);
}

/* In a user namespace the kernel locks the nosuid, nodev and noexec a
 * mount came with: a bind remount must repeat them or fail with EPERM. */
static void remount_bind(int fd, const char *target, unsigned long flags, const char *dst)
{
    if (mount(NULL, target, NULL, flags, NULL) == 0)
        return;
    int e = errno;
    struct statfs sf;
    if (e == EPERM && fstatfs(fd, &sf) == 0) {
        unsigned long locked = kept_flags(&sf);
        if ((flags | locked) != flags && mount(NULL, target, NULL, flags | locked, NULL) == 0)
            return;
    }
    die("remount %s: %s", dst, err(e));
}

/* Only procfs goes at /proc: a bind there must be of a procfs' root (a
 * part of one would not be the /proc the masks and the runtime expect). */
static void check_procfs_root(int fd, const char *src)
{
    struct statfs sf;
    struct stat st;
    CHECK(fstatfs(fd, &sf), "statfs %s", src);
    CHECK(fstat(fd, &st), "stat %s", src);
    if (sf.f_type != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO)
        die("bind source %s is not the root of a procfs: only proc may be mounted at /proc", src);
}

/* Only what the config puts under /proc or /sys lands on procfs or sysfs
 * (a symlink in the image, /data -> /proc/sys, must not take a volume
 * there); "/proc" targets (IN_PROC, a few files the plan allows) must
 * really be on procfs (no symlink or bind can redirect them elsewhere). */
static void check_dest_fs(int fd, const char *dst, int in_proc)
{
    struct statfs sf;
    CHECK(fstatfs(fd, &sf), "statfs %s", dst);
    int proc = sf.f_type == PROC_SUPER_MAGIC, sys = sf.f_type == SYSFS_MAGIC;
    if ((proc && !under(dst, "/proc")) || (sys && !under(dst, "/sys")))
        die("mount destination %s resolves onto %s (a symlink in the rootfs?): refused", dst,
            proc ? "procfs" : "sysfs");
    if (in_proc && !proc)
        die("mount destination %s is not on a procfs", dst);
}

/* mount SRC on container path DST.
 * a: where src dst fstype flags data mkkind remount_flags propagation attr_set attr_clr extra
 * extra: "in-proc" (check the destination is on procfs), "proc-source" (the
 *        bind source must be a procfs: the mount is at /proc), "tmpcopyup",
 *        "idmapped" (attach the next idmapped tree instead of mounting src) */
void op_mount(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *src = a[MOUNT_SRC], *dst = a[MOUNT_DST], *type = a[MOUNT_FSTYPE], *data = a[MOUNT_DATA];
    const char *kind = a[MOUNT_KIND], *extra = a[MOUNT_EXTRA];
    unsigned long flags = num(a[MOUNT_FLAGS]), remount = num(a[MOUNT_REMOUNT]), prop = num(a[MOUNT_PROPAGATION]);
    uint64_t attr_set = num(a[MOUNT_ATTR_SET]), attr_clr = num(a[MOUNT_ATTR_CLR]);

    if (!strcmp(kind, "file"))
        touch_in_root(run->root_fd, dst);
    else
        mkdir_in_root(run->root_fd, dst, 0755);
    int fd = open_in_root(run->root_fd, dst, O_PATH);
    CHECK(fd, "open mount destination %s", dst);
    char target[64];
    fdpath(target, sizeof target, fd);
    check_dest_fs(fd, dst, has_word(extra, "in-proc"));
    const char *msrc = src;
    char srcpath[64];
    int sfd = -1;
    if (flags & MS_BIND) {
        if (run->next_bind >= run->n_binds)
            die("no bind source for %s", dst);
        sfd = run->bind_fds[run->next_bind++];
        if (has_word(extra, "proc-source"))
            check_procfs_root(sfd, src);
        fdpath(srcpath, sizeof srcpath, sfd);
        msrc = srcpath;
    }
    if (has_word(extra, "idmapped")) {
        CHECK(syscall(SYS_move_mount, sfd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
              "attach idmapped mount of %s on %s", src, dst);
    } else if (mount(msrc, target, type, flags, *data ? data : NULL) < 0) {
        int e = errno;
        die("mount %s on %s (type %s): %s", src, dst, *type ? type : "bind", err(e));
    }
    if (sfd >= 0)
        close(sfd);
    /* Later steps act on what is now mounted there. */
    int old = fd;
    fd = open_in_root(run->root_fd, dst, O_PATH);
    CHECK(fd, "open %s", dst);
    if (has_word(extra, "tmpcopyup")) {
        int from = openat(old, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int to = open_in_root(run->root_fd, dst, O_RDONLY | O_DIRECTORY);
        CHECK(from < 0 ? from : to, "tmpcopyup: open %s", dst);
        copy_tree(from, to);
        close(from);
        close(to);
    }
    close(old);
    fdpath(target, sizeof target, fd);
    if (remount)
        remount_bind(fd, target, remount, dst);
    for (unsigned long bit = 1; bit; bit <<= 1)
        if (prop & bit & ~MS_REC)
            CHECK(mount(NULL, target, NULL, bit | (prop & MS_REC), NULL), "set propagation of %s", dst);
    if (attr_set || attr_clr)
        CHECK(set_attr(fd, AT_RECURSIVE, attr_set, attr_clr, 0), "set recursive attributes on %s", dst);
    close(fd);
}

/* Make the mount at PATH read-only (not those under it), keeping its
 * nosuid, nodev and noexec: a bind remount clears what it does not repeat
 * (and the atime flags are kept when none is given). */
static void remount_ro(int root, const char *path)
{
    int fd = open_in_root(root, path, O_PATH);
    CHECK(fd, "open %s", path);
    char target[64];
    fdpath(target, sizeof target, fd);
    struct statfs sf;
    CHECK(fstatfs(fd, &sf), "statfs %s", path);
    CHECK(mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(&sf), NULL),
          "remount %s read-only", path);
    close(fd);
}

void op_readonly(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int fd = open_in_root(run->root_fd, a[READONLY_PATH], O_PATH);
    if (fd < 0) {
        if (errno == ENOENT)
            return;
        die("open %s: %s", a[READONLY_PATH], err(errno));
    }
    char target[64];
    fdpath(target, sizeof target, fd);
    CHECK(mount(target, target, NULL, MS_BIND | MS_REC, NULL), "bind %s", a[READONLY_PATH]);
    close(fd);
    remount_ro(run->root_fd, a[READONLY_PATH]);
}

/* The container's /dev/null, opened once and checked to be the null device:
 * masks are bound from this fd, never from the name, which a /dev from the
 * bundle or a host process racing us could make a file or a symlink. */
static void open_null(struct run *run, const char *path)
{
    if (run->null_fd >= 0)
        return;
    run->null_fd = open_no_symlinks(run->root_fd, "/dev/null", O_PATH);
    if (run->null_fd < 0)
        die("cannot mask %s: /dev/null: %s", path, errno == ELOOP ? "a symlink" : err(errno));
    struct stat st;
    CHECK(fstat(run->null_fd, &st), "stat /dev/null");
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
        die("cannot mask %s: /dev/null is not the null device (c 1:3)", path);
}

void op_mask(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int fd = open_in_root(run->root_fd, a[MASK_PATH], O_PATH);
    if (fd < 0) {
        if (errno == ENOENT)
            return;
        die("open %s: %s", a[MASK_PATH], err(errno));
    }
    struct stat st;
    CHECK(fstat(fd, &st), "stat %s", a[MASK_PATH]);
    char target[64];
    fdpath(target, sizeof target, fd);
    if (S_ISDIR(st.st_mode))
        CHECK(mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0k"), "mask %s", a[MASK_PATH]);
    else {
        open_null(run, a[MASK_PATH]);
        char null[64];
        fdpath(null, sizeof null, run->null_fd);
        CHECK(mount(null, target, NULL, MS_BIND, NULL), "mask %s", a[MASK_PATH]);
    }
    close(fd);
}

void op_remount_ro(struct run *run, struct rec *r)
{
    remount_ro(run->root_fd, r->argv[REMOUNT_RO_PATH]);
}
