/* ocirt-init: paths inside the rootfs, resolved safely, and the container's /proc by fd. */
#include "init.h"

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how_ how = {.flags = flags, .mode = 0, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Open PATH (relative to the rootfs) with symlinks resolved as if the rootfs
 * were "/": nothing can lead outside it. */
int open_in_root(int root, const char *path, int flags)
{
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    return openat2_(root, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/* Open PATH in the rootfs following no symlink at all: for what the runtime
 * itself opens or mounts once the rootfs is assembled, which the caller then
 * checks by fstat (the image and the volumes may have planted anything). */
int open_no_symlinks(int root, const char *path, int flags)
{
    while (*path == '/')
        path++;
    return openat2_(root, path, flags | O_CLOEXEC,
                    RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

/* mkdir -p inside the rootfs, each component resolved in root. */
void mkdir_in_root(int root, const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            int fd = open_in_root(root, buf, O_PATH | O_DIRECTORY);
            if (fd < 0) {
                if (errno != ENOENT)
                    die("mkdir %s: %s", buf, err(errno));
                char *slash = strrchr(buf, '/');
                *slash = 0;
                int parent = open_in_root(root, *buf ? buf : "/", O_PATH | O_DIRECTORY);
                CHECK(parent, "open %s", *buf ? buf : "/");
                *slash = '/';
                if (mkdirat(parent, slash + 1, mode) < 0 && errno != EEXIST)
                    die("mkdir %s: %s", buf, err(errno));
                close(parent);
            } else {
                close(fd);
            }
            *p = c;
            if (!c)
                break;
        }
    }
}

/* Make PATH's parent inside the rootfs and open it; *name gets PATH's last
 * component, to act on relative to the returned fd. */
int open_parent(int root, const char *path, const char **name)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = 0;
    mkdir_in_root(root, *dir ? dir : "/", 0755);
    int parent = open_in_root(root, *dir ? dir : "/", O_PATH | O_DIRECTORY);
    CHECK(parent, "open %s", dir);
    *name = strrchr(path, '/') + 1;
    return parent;
}

void touch_in_root(int root, const char *path)
{
    int fd = open_in_root(root, path, O_PATH);
    if (fd >= 0) {
        close(fd);
        return;
    }
    const char *name;
    int parent = open_parent(root, path, &name);
    fd = openat(parent, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0755);
    CHECK(fd, "create %s", path);
    close(fd);
    close(parent);
}

void fdpath(char *buf, size_t cap, int fd)
{
    snprintf(buf, cap, "/proc/self/fd/%d", fd);
}

/* Is PATH (clean, absolute) DIR or below it? */
int under(const char *path, const char *dir)
{
    size_t n = strcmp(dir, "/") ? strlen(dir) : 0;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* Open NAME below the container's /proc for writing ("self/..." is our
 * own directory there, whatever pid namespace that procfs is of). The
 * settings written there must reach the kernel, not what a volume or the
 * image put over them (a bind over a /proc/sys file, a tmpfs on
 * /proc/self/attr, a symlink, a second procfs): /proc must be the root of
 * a procfs and NAME is resolved below it with no symlink and no mount
 * crossed. */
static int proc_open(struct run *run, const char *name)
{
    struct statfs sf;
    struct stat st;
    if (run->proc_fd < 0) {
        run->proc_fd = open_in_root(run->root_fd, "/proc", O_PATH | O_DIRECTORY);
        CHECK(run->proc_fd, "open /proc");
        CHECK(fstatfs(run->proc_fd, &sf) < 0 ? -1 : fstat(run->proc_fd, &st), "stat /proc");
        if (sf.f_type != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO)
            die("/proc is not the root of a procfs");
    }
    char path[PATH_MAX], self[32] = "";
    if (!strncmp(name, "self/", 5)) {
        ssize_t n = readlinkat(run->proc_fd, "self", self, sizeof self - 1);
        CHECK(n, "readlink /proc/self");
        self[n] = 0;
        name += 4;
    }
    snprintf(path, sizeof path, "%s%s", self, name);
    int fd = openat2_(run->proc_fd, path, O_WRONLY | O_CLOEXEC,
                      RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH);
    if (fd < 0 && (errno == EXDEV || errno == ELOOP))
        die("/proc/%s: %s over it: refused", path, errno == EXDEV ? "a mount is" : "a symlink is");
    CHECK(fd, "open /proc/%s", path);
    CHECK(fstatfs(fd, &sf), "statfs /proc/%s", path);
    if (sf.f_type != PROC_SUPER_MAGIC)
        die("/proc/%s is not on procfs", path);
    return fd;
}

void proc_write(struct run *run, const char *name, const char *value, const char *what)
{
    int fd = proc_open(run, name);
    CHECK(write(fd, value, strlen(value)), "%s: write %s", what, value);
    close(fd);
}
