/* ocirt-init: the root: its propagation, pivot_root or the --no-pivot move. */
#include "init.h"

void op_rootprop(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(mount(NULL, "/", NULL, num(a[ROOTPROP_FLAGS]), NULL), "set propagation of /");
}

/* pivot_root needs the rootfs' parent mount to be non-shared. */
void op_parent_private(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *rootfs = a[PARENT_PRIVATE_ROOTFS];
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        die("open /proc/self/mountinfo: %s", err(errno));
    char line[4096], best[PATH_MAX] = "/";
    size_t bestlen = 1;
    while (fgets(line, sizeof line, f)) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
            continue;
        size_t n = strlen(mp);
        if (n > bestlen && !strncmp(rootfs, mp, n) && (rootfs[n] == '/' || rootfs[n] == 0)) {
            snprintf(best, sizeof best, "%s", mp);
            bestlen = n;
        }
    }
    fclose(f);
    CHECK(mount(NULL, best, NULL, MS_PRIVATE, NULL), "make %s private", best);
}

void op_bindroot(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *rootfs = a[BINDROOT_ROOTFS];
    CHECK(mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL), "bind rootfs %s", rootfs);
    close(run->root_fd);
    run->root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(run->root_fd, "open rootfs %s", rootfs);
}

/* The init's stdio that is the host's /dev/null becomes the container's
 * /dev/null, as runc does: CRIU cannot dump a file whose mount is not the
 * container's (podman gives a detached container /dev/null as stdin). */
static void reopen_dev_null(void)
{
    struct stat null, st;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return; /* a rootfs without a usable /dev/null: nothing to give */
    if (fstat(fd, &null) == 0 && S_ISCHR(null.st_mode))
        for (int i = 0; i < 3; i++)
            if (fstat(i, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev &&
                (st.st_dev != null.st_dev || st.st_ino != null.st_ino))
                CHECK(dup3(fd, i, 0), "reopen fd %d on the container's /dev/null", i);
    close(fd);
}

void op_pivot(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int old = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    CHECK(old, "open /");
    CHECK(fchdir(run->root_fd), "chdir %s", a[PIVOT_ROOTFS]);
    CHECK(syscall(SYS_pivot_root, ".", "."), "pivot_root %s", a[PIVOT_ROOTFS]);
    CHECK(fchdir(old), "chdir to old root");
    /* Keep unmount events of the old root from reaching the host. */
    CHECK(mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL), "make old root rslave");
    CHECK(umount2(".", MNT_DETACH), "unmount old root");
    CHECK(chdir("/"), "chdir /");
    close(old);
    close(run->root_fd);
    run->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    reopen_dev_null();
}

/* mountinfo's escapes (\040 for a space...) undone, in place. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++, o++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *o = (s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0');
            s += 3;
        } else {
            *o = *s;
        }
    }
    *o = 0;
}

/* --no-pivot: the host's mounts stay in our mount namespace under the
 * moved rootfs, and the kernel lets a new user namespace mount a fresh
 * procfs or sysfs (unmasked) as long as a full one is there. Detach every
 * mount neither under ROOTFS nor holding it (made slaves first, so that
 * nothing propagates to the host); a procfs or sysfs the kernel keeps
 * (locked, in a user namespace) is covered with a tmpfs, as runc does. */
static void detach_host_mounts(const char *rootfs)
{
    /* read whole first: the covers must not come up as mounts to detach */
    char *buf = read_text("/proc/self/mountinfo");
    char mp[PATH_MAX], fstype[64], *save;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *sep = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || !sep || sscanf(sep, " - %63s", fstype) != 1)
            continue;
        unescape(mp);
        if (under(mp, rootfs) || under(rootfs, mp))
            continue;
        if (mount(NULL, mp, NULL, MS_SLAVE | MS_REC, NULL) < 0 && errno != EINVAL && errno != ENOENT)
            die("make %s a slave: %s", mp, err(errno));
        if (umount2(mp, MNT_DETACH) == 0 || (errno != EINVAL && errno != EPERM))
            continue; /* detached, or gone with its parent (ENOENT) */
        if (!strcmp(fstype, "proc") || !strcmp(fstype, "sysfs"))
            CHECK(mount("tmpfs", mp, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k"),
                  "cover %s", mp);
    }
    free(buf);
}

void op_chroot_move(struct run *run, struct rec *r)
{
    char **a = r->argv;
    detach_host_mounts(a[CHROOT_MOVE_ROOTFS]);
    CHECK(fchdir(run->root_fd), "chdir %s", a[CHROOT_MOVE_ROOTFS]);
    CHECK(mount(".", "/", NULL, MS_MOVE, NULL), "move rootfs to /");
    CHECK(chroot("."), "chroot");
    CHECK(chdir("/"), "chdir /");
    close(run->root_fd);
    run->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    reopen_dev_null();
}

/* Keeping the nosuid, nodev and noexec of the rootfs' mount (a rootless
 * container's on a nosuid /tmp, say: locked in its user namespace). */
void op_root_ro(struct run *run, struct rec *r)
{
    struct statfs sf;
    CHECK(statfs("/", &sf), "statfs /");
    CHECK(mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(&sf), NULL), "remount / read-only");
}
