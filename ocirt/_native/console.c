/* ocirt-init: the terminal: the console file, the pty from the container's devpts, --console-socket. */
#include "init.h"

/* The file the init's console is bound on, made while /dev is writable: new
 * (O_EXCL, in a /dev reached without symlinks), or an empty regular file
 * already there; never a symlink's target. */
void op_mkfile(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *name = strrchr(a[MKFILE_PATH], '/') + 1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(name - a[MKFILE_PATH]), a[MKFILE_PATH]);
    mkdir_in_root(run->root_fd, dir, 0755); /* an image without /dev */
    int parent = open_no_symlinks(run->root_fd, dir, O_PATH | O_DIRECTORY);
    CHECK(parent, "open %s", dir);
    int fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 && errno == EEXIST && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (!S_ISREG(st.st_mode) || st.st_size))
        die("%s is there and is not an empty regular file (%s)", a[MKFILE_PATH],
            S_ISLNK(st.st_mode) ? "a symlink" : "it would be hidden");
    if (fd < 0 && errno != EEXIST)
        die("create %s: %s", a[MKFILE_PATH], err(errno));
    if (fd >= 0)
        close(fd);
    close(parent);
}

/* The master from the container's devpts, opened by fd and checked to be
 * its ptmx (an image's /dev/ptmx, or the container itself for exec -t, may
 * lead anywhere), then reopened for use without a new lookup. */
static int open_ptmx(int root)
{
    int fd = open_no_symlinks(root, "/dev/pts/ptmx", O_PATH);
    CHECK(fd, "open /dev/pts/ptmx");
    struct stat st;
    struct statfs sf;
    CHECK(fstat(fd, &st), "stat /dev/pts/ptmx");
    CHECK(fstatfs(fd, &sf), "statfs /dev/pts/ptmx");
    if (sf.f_type != DEVPTS_SUPER_MAGIC || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2))
        die("/dev/pts/ptmx is not the ptmx of a devpts");
    char path[64];
    fdpath(path, sizeof path, fd);
    int master = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(master, "open /dev/pts/ptmx");
    close(fd);
    return master;
}

/* The init's /dev/console: what op_mkfile left there, not followed. */
static int open_console_file(int root)
{
    int fd = open_no_symlinks(root, "/dev/console", O_PATH);
    if (fd < 0)
        die("open /dev/console: %s", errno == ELOOP ? "a symlink" : err(errno));
    struct stat st;
    CHECK(fstat(fd, &st), "stat /dev/console");
    if (!S_ISREG(st.st_mode))
        die("/dev/console is not the file made for the console");
    return fd;
}

/* a: where sock rows cols uid dev_console */
void op_console(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int sock = num(a[CONSOLE_SOCK]);
    int master = open_ptmx(run->root_fd);
    CHECK(unlockpt(master), "unlockpt");
    unsigned n;
    CHECK(ioctl(master, TIOCGPTN, &n), "get the pty number");
    char name[32]; /* what runc sends: the slave's name in the container */
    snprintf(name, sizeof name, "/dev/pts/%u", n);
    struct winsize ws = {.ws_row = num(a[CONSOLE_ROWS]), .ws_col = num(a[CONSOLE_COLS])};
    if (ws.ws_row || ws.ws_col)
        CHECK(ioctl(master, TIOCSWINSZ, &ws), "set console size");
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(slave, "open %s", name);
    /* The process's user may use its terminal: it gets the pty, whose group
     * stays the one devpts gave it (its gid= option: tty), as runc does. */
    CHECK(fchown(slave, num(a[CONSOLE_UID]), -1), "chown %s to uid %s", name, a[CONSOLE_UID]);
    if (!strcmp(a[CONSOLE_DEV_CONSOLE], "1")) {
        /* The init's terminal is also /dev/console, as runc makes it (the
         * plan made the file, before /dev may have become read-only). */
        int fd = open_console_file(run->root_fd);
        char src[64], target[64];
        fdpath(src, sizeof src, slave);
        fdpath(target, sizeof target, fd);
        CHECK(mount(src, target, NULL, MS_BIND, NULL), "bind %s on /dev/console", name);
        close(fd);
    }
    /* Send the master with its name as data (what runc sends). */
    CHECK(send_fd(sock, master, name, strlen(name)), "send console to --console-socket");
    close(master);
    close(sock);
    for (int i = 0; i < 3; i++)
        CHECK(dup2(slave, i), "dup2 console");
    if (slave > 2)
        close(slave);
    CHECK(ioctl(0, TIOCSCTTY, 0), "set controlling terminal");
}
