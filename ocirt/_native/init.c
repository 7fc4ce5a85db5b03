/*
 * ocirt-init: the container side of ocirt.
 *
 * Python builds a Plan (ocirt/plan/) and writes it to a memfd; this program
 * is exec'd from a sealed memfd copy of itself (so /proc/self/exe is never a
 * writable host file) and runs the plan's steps in order:
 *
 *   helper stage (host namespaces): setns, cgroup, timens ... up to "clone"
 *   "clone": the child becomes the container init (or exec'd process); the
 *            helper writes the id maps, reports the child's pid, releases it
 *            and exits (or, in wait mode, waits and reports the exit status)
 *   child stage: mounts, devices, pivot_root, sysctl, ..., credentials,
 *            "ready", exec fifo, seccomp, execve: after the filter is
 *            loaded the runtime makes no syscall of its own but execve
 *
 * Plan format: records of u32 argc, then argc fields of u32 len + bytes (each
 * field carries its own trailing NUL). Field 0 is the step name, field 1 the
 * config.json path the step comes from (for error messages). The steps and
 * their fields are declared in ocirt/plan/steps.py, which steps_gen.h (the
 * op table and field indexes) is generated from: read_plan refuses a step
 * the table has not, or one without its fields.
 *
 * Sync socket (SOCK_SEQPACKET) to the runtime: we send "pid N", "hooks",
 * "ready", "exec" (the program is being executed), "exit N" and
 * "E<where>\t<message>"; the runtime answers "hooks" with "go LEN" and the state json.
 *
 * Exec fifo (create/start): the init opens it for writing once `start`
 * reads it, writes "0", and then only an error "E<where>\t<message>";
 * execve closes it (O_CLOEXEC), so `start` sees the end of the file when
 * the program runs (with a seccomp agent: once it is to be run).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#ifndef __GLIBC__ /* musl: the new mount API is in the kernel header only */
#include <linux/mount.h>
#endif
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define STEP_TABLE
#include "steps_gen.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif
#define PROC_SUPER_MAGIC 0x9fa0
#define PROC_ROOT_INO 1
#define INIT_COMM "ocirt-init" /* our name (comm) until execve */
#define SYSFS_MAGIC 0x62656572
#define DEVPTS_SUPER_MAGIC 0x1cd1
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* openat2 (not in glibc 2.36) */
struct open_how_ {
    uint64_t flags, mode, resolve;
};
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10

struct rec {
    int argc;
    char **argv;
    size_t *len;
    const struct step_op *op;
};

/* Where the helper's messages go. die() and debug() are called from every
 * step and helper function: this one state of theirs is global. */
struct report {
    const char *where; /* the config path of the step being run */
    int sync_fd;       /* the sync socket to the runtime */
    int start_fd;      /* exec.fifo opened by `start`: errors go there */
    /* Child end of a close-on-exec pipe to a detached helper: die() writes a
     * byte so that the helper reaps us; execve, or create's wait for `start`,
     * closes it and the helper leaves us to the caller (see op_clone). */
    int failed_fd;
    /* --debug: where each stage goes (the runtime's --log, else its stderr),
     * in the runtime's format; -1 (no cost) without --debug. Never after the
     * seccomp filter is loaded: nothing but execve may run under it. */
    int debug_fd, debug_json;
};
static struct report report = {"", -1, -1, -1, -1, 0};

/* The state of a run of the plan, handed to every step. */
struct run {
    struct rec *plan;
    int nrecs;
    int root_fd;     /* O_PATH fd of the rootfs, before pivot_root */
    int proc_fd;     /* the root of the container's procfs, once verified */
    int null_fd;     /* the container's /dev/null, for masks (open_null) */
    int fifo_fd;     /* O_PATH fd of exec.fifo */
    int listener_fd; /* connected to linux.seccomp.listenerPath */
    int notified;    /* a seccomp agent has our listener */
    pid_t host_pid;  /* our pid as the runtime sees it */
    pid_t cloned;    /* the helper's child, for the steps the helper runs after the clone */
    char *state_json; /* from the runtime, for createContainer/startContainer hooks:
                       * the state without its status, pid and closing brace */
    char exec_path[PATH_MAX];
    char home_env[PATH_MAX + 8]; /* "HOME=..." for a process.env without HOME (runc's), or empty */
    struct rlimit nofile_late;   /* see op_rlimit */
    int cgroupns_fd;             /* see op_setns */
    int cgroup_fd;               /* see op_cgroup2 */
    int leave_fds[16], n_leave;  /* see op_leave_cgroup */
    int idmap_userns[64], n_idmaps; /* see op_idmap_tree */
    char **idmap_args[64];
    int *bind_fds, n_binds, next_bind; /* see send_bind_sources */
};

/* ---- errors ---- */

static void send_msg(const char *buf, size_t n)
{
    if (report.sync_fd >= 0)
        while (send(report.sync_fd, buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
}

/* Report "where: message" to the runtime (or stderr once the sync socket is
 * gone) and exit. Messages use lower-case errno text, as Go programs print
 * it: clients match on e.g. "no such file or directory". */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
    char msg[4096];
    int n = snprintf(msg, sizeof msg, "E%s\t", report.where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
    if (report.sync_fd >= 0)
        send_msg(msg, strlen(msg));
    else if (report.start_fd >= 0) /* `start` is reading exec.fifo */
        (void)!write(report.start_fd, msg, strlen(msg));
    else
        dprintf(2, "ocirt: %s%s%s\n", report.where, *report.where ? ": " : "", msg + n);
    if (report.failed_fd >= 0)
        (void)!write(report.failed_fd, "x", 1);
    _exit(127);
}

/* Go's text (glibc's) where musl's differs, for the errors our calls can get */
static const struct {
    int e;
    const char *text;
} go_text[] = {
    {EIO, "input/output error"}, {ECHILD, "no child processes"}, {ENOMEM, "cannot allocate memory"},
    {EBUSY, "device or resource busy"}, {EXDEV, "invalid cross-device link"}, {EMFILE, "too many open files"},
    {ENOTTY, "inappropriate ioctl for device"}, {ESPIPE, "illegal seek"}, {ERANGE, "numerical result out of range"},
    {EDEADLK, "resource deadlock avoided"}, {ENAMETOOLONG, "file name too long"},
    {ELOOP, "too many levels of symbolic links"}, {EOVERFLOW, "value too large for defined data type"},
    {ENOTSOCK, "socket operation on non-socket"}, {EOPNOTSUPP, "operation not supported"},
    {EADDRINUSE, "address already in use"}, {ENOTCONN, "transport endpoint is not connected"},
    {ETIMEDOUT, "connection timed out"}, {EDQUOT, "disk quota exceeded"},
};

static const char *err(int e)
{
    static char buf[128];
    for (size_t i = 0; i < sizeof go_text / sizeof go_text[0]; i++)
        if (go_text[i].e == e)
            return go_text[i].text;
    snprintf(buf, sizeof buf, "%s", strerror(e));
    buf[0] = tolower((unsigned char)buf[0]);
    return buf;
}

static void __attribute__((format(printf, 1, 2))) debug(const char *fmt, ...)
{
    if (report.debug_fd < 0)
        return;
    char msg[1024], line[2200], t[32];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(msg, sizeof msg, "ocirt-init[%d]: ", getpid());
    vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
    char esc[2 * sizeof msg], *o = esc;
    for (const char *c = msg; *c; c++) { /* a JSON string (and Go's %q, for text) */
        if (*c == '"' || *c == '\\')
            *o++ = '\\';
        *o++ = (unsigned char)*c < 0x20 ? ' ' : *c;
    }
    *o = 0;
    time_t now = time(NULL);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int len = report.debug_json ? snprintf(line, sizeof line, "{\"level\":\"debug\",\"msg\":\"%s\",\"time\":\"%s\"}\n", esc, t)
                         : snprintf(line, sizeof line, "time=\"%s\" level=debug msg=\"%s\"\n", t, esc);
    (void)!write(report.debug_fd, line, len < (int)sizeof line ? len : (int)sizeof line - 1);
}

/* Log one step of the plan, with its first argument (a mount's: its
 * destination) when that is text. */
static void debug_step(const char *stage, struct rec *r)
{
    if (report.debug_fd < 0)
        return;
    char **a = r->argv;
    int k = r->op->log;
    const char *arg = r->argc > k && r->len[k] < 200 && !memchr(a[k], 0, r->len[k]) ? a[k] : "";
    debug("%s: %s %s%s%s", stage, a[FIELD_NAME], a[FIELD_WHERE], *arg ? ": " : "", arg);
}

#define CHECK(expr, ...)                                                    \
    do {                                                                    \
        if ((expr) < 0) {                                                   \
            int e_ = errno;                                                 \
            char m_[1024];                                                  \
            snprintf(m_, sizeof m_, __VA_ARGS__);                           \
            die("%s: %s", m_, err(e_));                                     \
        }                                                                   \
    } while (0)

/* ---- small helpers ---- */

static uint64_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

static long long snum(const char *s)
{
    return strtoll(s, NULL, 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd, "open %s", path);
    CHECK(write(fd, data, len), "write %s", path);
    close(fd);
}

static int by_name(const void *name, const void *op)
{
    return strcmp(name, ((const struct step_op *)op)->name);
}

/* R's entry in the op table: a step the table has not is refused, and one
 * without the fields it declares (its lists' lengths included). */
static const struct step_op *step_op(struct rec *r)
{
    if (r->argc < 2)
        die("plan: a step of %d fields, without its name and config path", r->argc);
    const char *name = r->argv[FIELD_NAME];
    const struct step_op *op = bsearch(name, step_ops, N_STEPS, sizeof *step_ops, by_name);
    if (!op)
        die("plan: unknown step %s", name);
    int n = op->argc, k = 0;
    for (; k < op->lists && n < r->argc; k++) {
        uint64_t items = num(r->argv[n]);
        if (items >= (uint64_t)(r->argc - n))
            break;
        n += 1 + items;
    }
    if (k < op->lists || n != r->argc)
        die("plan: step %s has %d fields, not %d%s", name, r->argc, op->argc,
            op->lists ? " and its lists" : "");
    return op;
}

static void read_plan(struct run *run, int fd)
{
    struct stat st;
    CHECK(fstat(fd, &st), "plan");
    char *buf = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (buf == MAP_FAILED)
        die("plan: mmap: %s", err(errno));
    close(fd);
    char *p = buf, *end = buf + st.st_size;
    int cap = 64;
    run->plan = calloc(cap, sizeof *run->plan);
    while (p + 4 <= end) {
        if (run->nrecs == cap)
            run->plan = realloc(run->plan, (cap *= 2) * sizeof *run->plan);
        struct rec *r = &run->plan[run->nrecs++];
        memcpy(&r->argc, p, 4);
        p += 4;
        r->argv = calloc(r->argc + 1, sizeof(char *));
        r->len = calloc(r->argc + 1, sizeof(size_t));
        for (int i = 0; i < r->argc; i++) {
            uint32_t n;
            if (p + 4 > end)
                die("plan: truncated");
            memcpy(&n, p, 4);
            p += 4;
            if (p + n > end || n == 0)
                die("plan: truncated");
            r->argv[i] = p;
            r->len[i] = n - 1;
            p += n;
        }
        r->op = step_op(r);
    }
}

/* One sendmsg of LEN bytes of MSG carrying FD. */
static ssize_t send_fd(int sock, int fd, const void *msg, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* The fd a send_fd() on SOCK carries, or -1. */
static int recv_fd(int sock)
{
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* Receive one message from the runtime; returns its length. */
static ssize_t recv_msg(char *buf, size_t cap)
{
    ssize_t n;
    do
        n = recv(report.sync_fd, buf, cap - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        die("sync: runtime went away");
    buf[n] = 0;
    return n;
}

/* ---- safe paths inside the rootfs ---- */

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how_ how = {.flags = flags, .mode = 0, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Open PATH (relative to the rootfs) with symlinks resolved as if the rootfs
 * were "/": nothing can lead outside it. */
static int open_in_root(int root, const char *path, int flags)
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
static int open_no_symlinks(int root, const char *path, int flags)
{
    while (*path == '/')
        path++;
    return openat2_(root, path, flags | O_CLOEXEC,
                    RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

/* mkdir -p inside the rootfs, each component resolved in root. */
static void mkdir_in_root(int root, const char *path, mode_t mode)
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
static int open_parent(int root, const char *path, const char **name)
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

static void touch_in_root(int root, const char *path)
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

static void fdpath(char *buf, size_t cap, int fd)
{
    snprintf(buf, cap, "/proc/self/fd/%d", fd);
}

/* Is PATH (clean, absolute) DIR or below it? */
static int under(const char *path, const char *dir)
{
    size_t n = strcmp(dir, "/") ? strlen(dir) : 0;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* ---- the container's /proc, by fd ---- */

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

static void proc_write(struct run *run, const char *name, const char *value, const char *what)
{
    int fd = proc_open(run, name);
    CHECK(write(fd, value, strlen(value)), "%s: write %s", what, value);
    close(fd);
}

/* ---- helper stage ---- */

static int ns_type(const char *name)
{
    static const struct {
        const char *n;
        int t;
    } t[] = {{"user", CLONE_NEWUSER}, {"mount", CLONE_NEWNS},    {"pid", CLONE_NEWPID},
             {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},
             {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].n, name))
            return t[i].t;
    return 0;
}

/* A cgroup namespace to join is joined by the child, after the clone: with
 * nsdelegate (systemd's cgroup2 mount) CLONE_INTO_CGROUP from inside the
 * container's cgroup namespace is refused (ENOENT), the helper's own cgroup
 * being outside it. */
void op_setns(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int fd = open(a[SETNS_PATH], O_RDONLY | O_CLOEXEC);
    CHECK(fd, "open %s", a[SETNS_PATH]);
    if (!strcmp(a[SETNS_TYPE], "cgroup")) {
        run->cgroupns_fd = fd;
        return;
    }
    CHECK(setns(fd, ns_type(a[SETNS_TYPE])), "setns %s namespace %s", a[SETNS_TYPE], a[SETNS_PATH]);
    close(fd);
}

/* Connected now, from the host's view; the fd is sent once the filter is in. */
void op_seccomp_listener(struct run *run, struct rec *r)
{
    char **a = r->argv;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(a[SECCOMP_LISTENER_PATH]) >= sizeof sa.sun_path)
        die("%s: path too long", a[SECCOMP_LISTENER_PATH]);
    strcpy(sa.sun_path, a[SECCOMP_LISTENER_PATH]);
    run->listener_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(run->listener_fd, "socket");
    CHECK(connect(run->listener_fd, (struct sockaddr *)&sa, sizeof sa), "connect to %s", a[SECCOMP_LISTENER_PATH]);
}

void op_timens(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(unshare(CLONE_NEWTIME), "unshare time namespace");
    if (*a[TIMENS_OFFSETS])
        write_file("/proc/self/timens_offsets", a[TIMENS_OFFSETS], strlen(a[TIMENS_OFFSETS]));
}

/* idmapped mounts: the helper (still root in the host user namespace, which
 * MOUNT_ATTR_IDMAP needs) makes a user namespace for each mapping here;
 * send_bind_sources clones the source into a detached tree mapped through
 * it, in the child's mount namespace, and the child attaches the trees in
 * plan order with move_mount. */
static int set_attr(int fd, unsigned flags, uint64_t set, uint64_t clr, int userns)
{
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr, .userns_fd = userns};
    return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, &attr, sizeof attr);
}

/* A user namespace with these maps, held by a child that waits for us. */
static int userns_with(const char *uidmap, const char *gidmap)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC), "pipe");
    pid_t pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    CHECK(pid, "create a user namespace for an idmapped mount");
    if (pid == 0) {
        char c;
        close(p[1]);
        (void)!read(p[0], &c, 1); /* EOF when the helper is done (or dead) */
        _exit(0);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    write_file(path, uidmap, strlen(uidmap));
    snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
    write_file(path, gidmap, strlen(gidmap));
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd, "open %s", path);
    close(p[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return fd;
}

/* a: where src uidmap gidmap rbind(0/1) ridmap(0/1); consecutive mounts
 * with the same maps share a user namespace. */
void op_idmap_tree(struct run *run, struct rec *r)
{
    char **a = r->argv;
    if (run->n_idmaps == (int)(sizeof run->idmap_userns / sizeof *run->idmap_userns))
        die("too many idmapped mounts");
    char **last = run->n_idmaps ? run->idmap_args[run->n_idmaps - 1] : NULL;
    if (last && !strcmp(last[IDMAP_TREE_UIDMAP], a[IDMAP_TREE_UIDMAP]) &&
        !strcmp(last[IDMAP_TREE_GIDMAP], a[IDMAP_TREE_GIDMAP]))
        run->idmap_userns[run->n_idmaps] = run->idmap_userns[run->n_idmaps - 1];
    else
        run->idmap_userns[run->n_idmaps] = userns_with(a[IDMAP_TREE_UIDMAP], a[IDMAP_TREE_GIDMAP]);
    run->idmap_args[run->n_idmaps++] = a;
}

/* The K-th idmapped tree, cloned from the source as the current mount
 * namespace (the child's) has it. */
static int idmap_tree(struct run *run, int k)
{
    char **a = run->idmap_args[k];
    unsigned rec = !strcmp(a[IDMAP_TREE_RBIND], "1") ? AT_RECURSIVE : 0;
    int tree = syscall(SYS_open_tree, AT_FDCWD, a[IDMAP_TREE_SRC], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
    CHECK(tree, "open bind source %s", a[IDMAP_TREE_SRC]);
    unsigned recattr = !strcmp(a[IDMAP_TREE_RIDMAP], "1") ? AT_RECURSIVE : 0;
    if (set_attr(tree, recattr, MOUNT_ATTR_IDMAP, 0, run->idmap_userns[k]) < 0) {
        int e = errno;
        die("idmap %s: %s%s", a[IDMAP_TREE_SRC], err(e),
            e == EINVAL ? " (its filesystem may not support idmapped mounts)" : "");
    }
    return tree;
}

/* ---- child stage: mounts ---- */

/* Is WORD in the comma-separated LIST? */
static int has_word(const char *list, const char *word)
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
        unsigned long locked = sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
        if ((flags | locked) != flags && mount(NULL, target, NULL, flags | locked, NULL) == 0)
            return;
    }
    die("remount %s: %s", dst, err(e));
}

/* Bind sources are host paths, opened by the helper as the host's root
 * (the container's root may be a mapped user that cannot reach them), as
 * runc does: in the child's mount namespace, whose copies of the host's
 * mounts a bind needs as its source (and keeps locked, ro stays ro), and
 * handed to the child over the go socket, in plan order. */
static int is_bind(struct rec *r)
{
    return r->op == &step_ops[STEP_MOUNT] && (num(r->argv[MOUNT_FLAGS]) & MS_BIND);
}

/* Helper: open the bind sources of the steps after FIRST in PID's mount
 * namespace (idmapped ones as mapped trees) and send them on SOCK. */
static void send_bind_sources(struct run *run, pid_t pid, int first, int sock)
{
    int own = -1, k = 0;
    const char *where = report.where;
    for (int j = first; j < run->nrecs; j++) {
        if (!is_bind(&run->plan[j]))
            continue;
        report.where = run->plan[j].argv[FIELD_WHERE];
        if (own < 0) {
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
            own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
            int ns = open(path, O_RDONLY | O_CLOEXEC);
            CHECK(own < 0 ? own : ns, "open %s", path);
            CHECK(setns(ns, CLONE_NEWNS), "join the container's mount namespace");
            close(ns);
        }
        int fd = has_word(run->plan[j].argv[MOUNT_EXTRA], "idmapped") ? idmap_tree(run, k++)
                                                         : open(run->plan[j].argv[MOUNT_SRC], O_PATH | O_CLOEXEC);
        CHECK(fd, "open bind source %s", run->plan[j].argv[MOUNT_SRC]);
        CHECK(send_fd(sock, fd, "", 1), "send bind source %s", run->plan[j].argv[MOUNT_SRC]);
        close(fd);
    }
    if (own >= 0) {
        CHECK(setns(own, CLONE_NEWNS), "return to the runtime's mount namespace");
        close(own);
    }
    report.where = where;
}

/* Child: receive what send_bind_sources sends. */
static void recv_bind_sources(struct run *run, int first, int sock)
{
    for (int j = first; j < run->nrecs; j++)
        run->n_binds += is_bind(&run->plan[j]);
    run->bind_fds = calloc(run->n_binds + 1, sizeof *run->bind_fds);
    for (int k = 0; k < run->n_binds; k++)
        if ((run->bind_fds[k] = recv_fd(sock)) < 0)
            _exit(1); /* the helper failed: it reports why */
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

/* ---- devices and links ---- */

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

/* ---- rootfs ---- */

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
}

/* The whole of PATH, NUL-terminated, in a malloc'd buffer. */
static char *read_text(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd, "open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (ssize_t n; buf && (n = read(fd, buf + len, cap - len - 1)) != 0; len += n) {
        CHECK(n, "read %s", path);
        if (len + n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    if (!buf)
        die("read %s: %s", path, err(ENOMEM));
    buf[len] = 0;
    close(fd);
    return buf;
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
}

void op_root_ro(struct run *run, struct rec *r)
{
    CHECK(mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), "remount / read-only");
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
    unsigned long keep = sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    CHECK(mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL),
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

/* ---- kernel settings ---- */

void op_sysctl(struct run *run, struct rec *r)
{
    char **a = r->argv;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "sys/%s", a[SYSCTL_KEY]);
    for (char *p = path + 4; *p; p++)
        if (*p == '.')
            *p = '/';
    proc_write(run, path, a[SYSCTL_VALUE], "sysctl");
}

void op_hostname(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(sethostname(a[HOSTNAME_NAME], strlen(a[HOSTNAME_NAME])), "sethostname %s", a[HOSTNAME_NAME]);
}

void op_domainname(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(setdomainname(a[DOMAINNAME_NAME], strlen(a[DOMAINNAME_NAME])), "setdomainname %s", a[DOMAINNAME_NAME]);
}

/* An RLIMIT_NOFILE below the fds we hold would leave create's init
 * unable to open exec.fifo for `start`: while the fifo is ahead, it is set
 * no lower than the current limits (raised, if asked, while we still have
 * the capability), and lowered to its value once the fifo is open
 * (lowering needs no capability). */
void op_rlimit(struct run *run, struct rec *r)
{
    char **a = r->argv;
    struct rlimit rl = {.rlim_cur = num(a[RLIMIT_SOFT]), .rlim_max = num(a[RLIMIT_HARD])}, now;
    if ((int)num(a[RLIMIT_RESOURCE]) == RLIMIT_NOFILE && run->fifo_fd >= 0 && getrlimit(RLIMIT_NOFILE, &now) == 0) {
        run->nofile_late = rl;
        rl.rlim_cur = rl.rlim_cur > now.rlim_cur ? rl.rlim_cur : now.rlim_cur;
        rl.rlim_max = rl.rlim_max > now.rlim_max ? rl.rlim_max : now.rlim_max;
    }
    CHECK(setrlimit(num(a[RLIMIT_RESOURCE]), &rl), "setrlimit %s", a[RLIMIT_NAME]);
}

/* Helper, before any setns: the host's /proc is ours. */
void op_oom(struct run *run, struct rec *r)
{
    char **a = r->argv;
    write_file("/proc/self/oom_score_adj", a[OOM_SCORE], strlen(a[OOM_SCORE]));
}

void op_personality(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(personality(num(a[PERSONALITY_DOMAIN])), "personality %s", a[PERSONALITY_DOMAIN]);
}

void op_sched(struct run *run, struct rec *r)
{
    char **a = r->argv;
    /* policy nice priority flags runtime deadline period (sched_setattr) */
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } at = {48, num(a[SCHED_POLICY]), num(a[SCHED_FLAGS]), snum(a[SCHED_NICE]), num(a[SCHED_PRIORITY]),
            num(a[SCHED_RUNTIME_NS]), num(a[SCHED_DEADLINE_NS]), num(a[SCHED_PERIOD_NS])};
    CHECK(syscall(SYS_sched_setattr, 0, &at, 0), "sched_setattr");
}

void op_ioprio(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)num(a[IOPRIO_PRIO])), "ioprio_set");
}

/* A kernel list ("0-3,7") into a bitmap of nbits (checked by the plan). */
static void parse_list(const char *s, unsigned long *bits, size_t nbits)
{
    memset(bits, 0, nbits / 8);
    for (char *p = (char *)s; *p;) {
        unsigned long lo = strtoul(p, &p, 10), hi = lo;
        if (*p == '-')
            hi = strtoul(p + 1, &p, 10);
        for (unsigned long c = lo; c <= hi && c < nbits; c++)
            bits[c / (8 * sizeof *bits)] |= 1UL << (c % (8 * sizeof *bits));
        if (*p == ',')
            p++;
        else if (*p)
            die("bad list %s", s);
    }
}

void op_affinity(struct run *run, struct rec *r)
{
    char **a = r->argv;
    cpu_set_t set;
    parse_list(a[AFFINITY_CPUS], (unsigned long *)&set, CPU_SETSIZE);
    CHECK(sched_setaffinity(0, sizeof set, &set), "sched_setaffinity %s", a[AFFINITY_CPUS]);
}

/* a: where mode|flags nodes */
void op_mempolicy(struct run *run, struct rec *r)
{
    char **a = r->argv;
    unsigned long nodes[1024 / (8 * sizeof(unsigned long))];
    parse_list(a[MEMPOLICY_NODES], nodes, 1024);
    /* maxnode counts one more than the bits the kernel reads */
    const char *list = a[MEMPOLICY_NODES];
    CHECK(syscall(SYS_set_mempolicy, (int)num(a[MEMPOLICY_MODE]), *list ? nodes : NULL, *list ? 1025 : 0),
          "set_mempolicy %s", list);
}

void op_lsm(struct run *run, struct rec *r)
{
    char **a = r->argv;
    /* a[LSM_ATTR]: file under /proc/self/attr, a[LSM_VALUE]: value */
    char path[128];
    snprintf(path, sizeof path, "self/attr/%s", a[LSM_ATTR]);
    proc_write(run, path, a[LSM_VALUE], path);
}

/* keyring: a: where name perm-bits. Join the session keyring `name`, made
 * if no keyring of that name is searchable, so the container does not hold
 * the caller's. A kernel without keys is let be (as runc: keyrings guard
 * little beside the credentials). perm-bits, unless 0, are added to the
 * keyring's permissions (runc's ModKeyringPerm, whose mask keeps them all). */
void op_keyring(struct run *run, struct rec *r)
{
    char **a = r->argv;
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, a[KEYRING_NAME]);
    if (id < 0 && errno == ENOSYS)
        return;
    CHECK(id, "join session keyring %s", a[KEYRING_NAME]);
    uint32_t bits = num(a[KEYRING_PERM]);
    if (!bits)
        return;
    char desc[1200]; /* "type;uid;gid;perm;name", the name at most 1029 bytes */
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof desc);
    CHECK(n, "describe session keyring %s", a[KEYRING_NAME]);
    if (n > (long)sizeof desc)
        die("describe session keyring %s: description too long", a[KEYRING_NAME]);
    char *perm = desc;
    for (int i = 0; i < 3; i++) {
        if (!(perm = strchr(perm, ';')))
            die("describe session keyring %s: unexpected \"%s\"", a[KEYRING_NAME], desc);
        perm++;
    }
    uint32_t cur = strtoul(perm, NULL, 16);
    CHECK(syscall(SYS_keyctl, KEYCTL_SETPERM, id, cur | bits), "set the permissions of session keyring %s",
          a[KEYRING_NAME]);
}

/* ---- terminal ---- */

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

/* ---- credentials ---- */

static void capmask(char **a, int i, uint32_t out[2])
{
    uint64_t v = num(a[i]);
    out[0] = (uint32_t)v;
    out[1] = (uint32_t)(v >> 32);
}

static int last_cap(void)
{
    static int last = -1;
    if (last < 0) {
        char buf[16] = {0};
        int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0)
            last = atoi(buf);
        else
            last = 40;
        if (fd >= 0)
            close(fd);
    }
    return last;
}

void op_bounding(struct run *run, struct rec *r)
{
    char **a = r->argv;
    uint64_t keep = num(a[BOUNDING_KEEP]);
    for (int c = 0; c <= last_cap(); c++)
        if (!(keep & (1ULL << c)))
            CHECK(prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop capability %d from the bounding set", c);
}

/* a: where uid gid umask ngroups groups... */
void op_user(struct run *run, struct rec *r)
{
    char **a = r->argv;
    uid_t uid = num(a[USER_UID]);
    gid_t gid = num(a[USER_GID]);
    int ngroups = num(a[USER_GROUPS]);
    gid_t groups[ngroups > 0 ? ngroups : 1];
    for (int i = 0; i < ngroups; i++)
        groups[i] = num(a[USER_GROUPS + 1 + i]);
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keep capabilities");
    /* setgroups is refused in a user namespace with setgroups=deny. */
    if (setgroups(ngroups, groups) < 0 && !(errno == EPERM && ngroups == 0))
        die("setgroups: %s", err(errno));
    CHECK(setresgid(gid, gid, gid), "setgid %u", gid);
    CHECK(setresuid(uid, uid, uid), "setuid %u", uid);
    if (a[USER_UMASK][0] != '-')
        umask(num(a[USER_UMASK]));
}

/* a: where effective permitted inheritable ambient (64-bit masks) keep_admin
 * keep_admin: keep CAP_SYS_ADMIN effective for loading seccomp without
 * no_new_privs after the credentials are set. execve computes the new
 * permitted and effective sets from the bounding, inheritable and ambient
 * sets (and the file's), never from the old permitted or effective ones
 * (capabilities(7)), so the program does not get it. */
void op_caps(struct run *run, struct rec *r)
{
    char **a = r->argv;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    uint32_t e[2], p[2], i[2];
    capmask(a, CAPS_EFFECTIVE, e);
    capmask(a, CAPS_PERMITTED, p);
    capmask(a, CAPS_INHERITABLE, i);
    if (!strcmp(a[CAPS_KEEP_ADMIN], "1")) {
        e[CAP_SYS_ADMIN / 32] |= 1U << (CAP_SYS_ADMIN % 32);
        p[CAP_SYS_ADMIN / 32] |= 1U << (CAP_SYS_ADMIN % 32);
    }
    /* A capability we do not hold ourselves cannot be granted: skip it, as
     * the spec allows (this host's root may lack one in its bounding set). */
    struct __user_cap_data_struct cur[2];
    CHECK(syscall(SYS_capget, &h, cur), "get capabilities");
    for (int k = 0; k < 2; k++)
        d[k] = (struct __user_cap_data_struct){e[k] & cur[k].permitted, p[k] & cur[k].permitted,
                                               i[k] & cur[k].permitted};
    CHECK(syscall(SYS_capset, &h, d), "set capabilities");
    uint64_t amb = num(a[CAPS_AMBIENT]) & ((uint64_t)cur[1].permitted << 32 | cur[0].permitted);
    for (int c = 0; c <= last_cap(); c++)
        if (amb & (1ULL << c))
            CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0), "raise ambient capability %d", c);
    CHECK(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "clear keep-capabilities");
}

void op_nnp(struct run *run, struct rec *r)
{
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs");
}

/* ---- process ---- */

void op_cwd(struct run *run, struct rec *r)
{
    char **a = r->argv;
    if (chdir(a[CWD_PATH]) < 0) {
        if (errno != ENOENT || strcmp(a[CWD_CREATE], "create"))
            die("chdir %s: %s", a[CWD_PATH], err(errno));
        mkdir_in_root(run->root_fd, a[CWD_PATH], 0755);
        CHECK(chdir(a[CWD_PATH]), "chdir %s", a[CWD_PATH]);
    }
    /* The kernel marks a cwd outside our root "(unreachable)": refuse it
     * (a leaked host directory fd must never become the cwd). */
    char buf[PATH_MAX];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    if (n < 0 || buf[0] != '/')
        die("cwd %s is outside the container", a[CWD_PATH]);
}

/* a: where name PATH */
void op_lookup(struct run *run, struct rec *r)
{
    char **a = r->argv;
    const char *name = a[LOOKUP_NAME];
    if (strchr(name, '/')) {
        snprintf(run->exec_path, sizeof run->exec_path, "%s", name);
        struct stat st;
        if (stat(run->exec_path, &st) < 0)
            die("exec: \"%s\": stat %s: %s", name, name, err(errno));
        if (S_ISDIR(st.st_mode))
            die("exec: \"%s\": is a directory", name);
        /* refused at create, as runc does: podman maps it to exit 126 */
        if (!(st.st_mode & 0111))
            die("exec: \"%s\": permission denied", name);
        return;
    }
    char *path = strdup(a[LOOKUP_PATH]);
    for (char *dir = strtok(path, ":"); dir; dir = strtok(NULL, ":")) {
        struct stat st;
        snprintf(run->exec_path, sizeof run->exec_path, "%s/%s", *dir ? dir : ".", name);
        if (stat(run->exec_path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
            return;
    }
    die("exec: \"%s\": executable file not found in $PATH", name);
}

/* Opened by the helper, before any namespace is joined: the state root
 * need not be searchable by a user namespace's root. */
void op_fifo_open(struct run *run, struct rec *r)
{
    char **a = r->argv;
    run->fifo_fd = open(a[FIFO_OPEN_PATH], O_PATH | O_CLOEXEC);
    CHECK(run->fifo_fd, "open exec fifo %s", a[FIFO_OPEN_PATH]);
}

/* Block until `start` opens the fifo for reading; "0" tells it we are
 * here (a fifo nobody opened for writing reads as empty, too). */
void op_fifo_wait(struct run *run, struct rec *r)
{
    close(report.failed_fd); /* set up: the helper may go, and the init outlive it */
    report.failed_fd = -1;
    char p[64];
    fdpath(p, sizeof p, run->fifo_fd);
    report.start_fd = open(p, O_WRONLY | O_CLOEXEC);
    CHECK(report.start_fd, "open exec fifo");
    close(run->fifo_fd);
    CHECK(write(report.start_fd, "0", 1), "write exec fifo");
    if (run->nofile_late.rlim_cur <= run->nofile_late.rlim_max)
        CHECK(setrlimit(RLIMIT_NOFILE, &run->nofile_late), "setrlimit RLIMIT_NOFILE");
}

/* Let `start` go before the execve (a seccomp agent may be what runs it,
 * and our syscalls from here on may wait for that agent). */
void op_fifo_go(struct run *run, struct rec *r)
{
    close(report.start_fd);
    report.start_fd = -1;
}

/* a: where keep(0/1): keep the sync socket until execve closes it, for a
 * runtime that waits to hear that the program runs (run, exec). */
void op_ready(struct run *run, struct rec *r)
{
    char **a = r->argv;
    send_msg("ready", 5);
    if (run->notified) { /* from here our syscalls may wait for the seccomp agent: */
        close(report.failed_fd); /* the helper must not (exec -d by the agent itself) */
        report.failed_fd = -1;
    }
    if (strcmp(a[READY_KEEP], "1")) {
        close(report.sync_fd);
        report.sync_fd = -1;
    }
}

/* Ask the runtime to run its hooks; it answers "go LEN" and then the state
 * JSON in messages of at most 64 KiB (one datagram is bounded by the
 * socket's buffer; annotations alone may be 256 KiB), or "E<error>". */
void op_hooks(struct run *run, struct rec *r)
{
    send_msg("hooks", 5);
    char head[1 << 16];
    recv_msg(head, sizeof head);
    size_t len, off = 0;
    if (sscanf(head, "go %zu", &len) != 1)
        die("%s", head[0] == 'E' ? head + 1 : "hooks failed");
    char *buf = malloc(len + 1);
    CHECK(buf ? 0 : -1, "state for the hooks: %zu bytes", len);
    while (off < len)
        off += recv_msg(buf + off, len - off + 1);
    run->state_json = buf;
}

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* Write DATA to the hook's stdin (fd IN) and wait for the hook to end, the
 * two within TIMEOUT seconds (0: none), so that a hook that reads nothing
 * cannot block us once the state is over the pipe's size. Returns its wait
 * status, or -1 when it was killed for the timeout. */
static int hook_wait(pid_t pid, int in, const char *data, size_t len, long long timeout)
{
    int pfd = syscall(SYS_pidfd_open, pid, 0);
    CHECK(pfd, "pidfd_open hook");
    fcntl(in, F_SETFL, O_NONBLOCK);
    struct pollfd pf[2] = {{.fd = pfd, .events = POLLIN}, {.fd = in, .events = POLLOUT}};
    int n = 2, st;
    long long end = timeout > 0 ? now_ms() + timeout * 1000 : -1;
    signal(SIGPIPE, SIG_IGN); /* a hook need not read its stdin */
    while (!pf[0].revents) {
        int wait = -1;
        if (end >= 0) {
            long long left = end - now_ms();
            if (left <= 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
            }
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        if (poll(pf, n, wait) < 0 || n < 2 || !pf[1].revents)
            continue;
        ssize_t w = write(in, data, len);
        if (w < 0 && errno == EAGAIN)
            continue;
        data += w > 0 ? w : 0;
        len = w > 0 ? len - w : 0;
        if (!len) {
            close(in);
            n = 1;
        }
    }
    signal(SIGPIPE, SIG_DFL);
    if (n == 2)
        close(in);
    close(pfd);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static long load_filter(char **a, size_t bpflen);

/* The seccomp step the process is to get before its execve, if not loaded yet. */
static struct rec *filter_to_come(struct run *run)
{
    for (int i = 0; i < run->nrecs; i++)
        if (run->plan[i].op == &step_ops[STEP_SECCOMP])
            return run->notified || num(run->plan[i].argv[SECCOMP_PARTS]) ? NULL : &run->plan[i];
    return NULL;
}

/* The hook's child: stdin the state, the process's stdout and stderr and
 * nothing else (not the fds the runtime's caller passed on); a hook in
 * the container (startContainer) under the process's seccomp filter, as
 * with runc. Returns only on error: the failed stage, errno in *e. */
static const char *hook_child(struct run *run, int in, int in_root, const char *path, char **argv, char **envp, int *e)
{
    dup2(in, 0);
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    struct rec *f = in_root ? NULL : filter_to_come(run);
    if (in_root && fchdir(run->root_fd) < 0)
        return *e = errno, "chdir to the container's root: ";
    if (f && load_filter(f->argv, f->len[SECCOMP_BPF]) < 0)
        return *e = errno, "load the seccomp filter: ";
    execve(path, argv, envp);
    return *e = errno, "";
}

/* Run one hook with the state (as this process sees it) on its stdin, in
 * the container's root (in_root, createContainer: runc's cwd there) or in
 * our cwd (startContainer: the process's).
 * a: where timeout status flags path argc args... envc env...
 * flags: 1 run in the container's root, 2 the env is the process's */
void op_hook(struct run *run, struct rec *r)
{
    char **a = r->argv;
    long long timeout = snum(a[HOOK_TIMEOUT]);
    const char *status = a[HOOK_STATUS], *path = a[HOOK_PATH];
    int flags = num(a[HOOK_FLAGS]), in_root = flags & 1;
    int argc = num(a[HOOK_ARGS]), env = HOOK_ARGS + 1 + argc;
    int envc = num(a[env]);
    char *argv[argc + 2], *envp[envc + 2];
    if (argc == 0)
        argv[argc++] = (char *)path;
    else
        memcpy(argv, &a[HOOK_ARGS + 1], argc * sizeof *argv);
    argv[argc] = NULL;
    memcpy(envp, &a[env + 1], envc * sizeof *envp);
    if ((flags & 2) && run->home_env[0]) /* the process's env, and the HOME it gets */
        envp[envc++] = run->home_env;
    envp[envc] = NULL;
    char *data = NULL;
    int len = run->state_json ? asprintf(&data, "%s,\"status\":\"%s\",\"pid\":%d}", run->state_json, status, getpid()) : 0;
    CHECK(len, "state for hook %s", path);
    int in[2], ep[2];
    CHECK(pipe2(in, O_CLOEXEC), "pipe");
    CHECK(pipe2(ep, O_CLOEXEC), "pipe");
    pid_t pid = fork();
    CHECK(pid, "fork hook");
    if (pid == 0) {
        /* errors are told through the close-on-exec pipe (one error, from
         * the parent): the stage's address (the same in both) and errno */
        int e;
        const char *stage = hook_child(run, in[0], in_root, path, argv, envp, &e);
        struct iovec iov[2] = {{&stage, sizeof stage}, {&e, sizeof e}};
        (void)!writev(ep[1], iov, 2);
        _exit(127);
    }
    close(in[0]);
    close(ep[1]);
    const char *stage;
    int e;
    struct iovec iov[2] = {{&stage, sizeof stage}, {&e, sizeof e}};
    if (readv(ep[0], iov, 2) == sizeof stage + sizeof e) {
        waitpid(pid, NULL, 0);
        die("hook %s: %s%s", path, stage, err(e));
    }
    close(ep[0]);
    int st = hook_wait(pid, in[1], data, len, timeout);
    free(data);
    if (st < 0)
        die("hook %s: timed out after %lld s", path, timeout);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        die("hook %s failed: %s %d", path, WIFEXITED(st) ? "exit status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* The payload for listenerPath: the parts joined by our host pid. */
static char *notify_payload(struct run *run, char **parts, int n, size_t *len)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += strlen(parts[i]) + 24;
    char *buf = malloc(cap);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            off += snprintf(buf + off, cap - off, "%d", run->host_pid);
        off += snprintf(buf + off, cap - off, "%s", parts[i]);
    }
    *len = off;
    return buf;
}

/* Hand the listener fd to the seccomp agent: one sendmsg carrying it, the
 * rest of the payload (if any) without, then close the connection. */
static void send_listener(struct run *run, int nfd, const char *msg, size_t len)
{
    ssize_t n = send_fd(run->listener_fd, nfd, msg, len);
    CHECK(n, "send the seccomp listener fd");
    for (size_t off = n; off < len; off += n)
        CHECK(n = send(run->listener_fd, msg + off, len - off, MSG_NOSIGNAL), "send the seccomp state");
    close(run->listener_fd);
    run->listener_fd = -1;
}

static long load_filter(char **a, size_t bpflen)
{
    struct sock_fprog prog = {.len = bpflen / 8, .filter = (struct sock_filter *)a[SECCOMP_BPF]};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)num(a[SECCOMP_FLAGS]), &prog);
}

/* a: where flags bpf nparts parts... (parts: the SCMP_ACT_NOTIFY payload) */
void op_seccomp(struct run *run, struct rec *r)
{
    char **a = r->argv;
    report.debug_fd = -1; /* nothing but execve may run under the filter */
    size_t len = 0;
    int nparts = num(a[SECCOMP_PARTS]);
    /* Built before the filter: from then on a notified syscall would wait
     * for an agent that has not got the fd yet. */
    char *payload = nparts ? notify_payload(run, &a[SECCOMP_PARTS + 1], nparts, &len) : NULL;
    long fd = load_filter(a, r->len[SECCOMP_BPF]);
    CHECK(fd, "load seccomp filter");
    run->notified = payload != NULL;
    if (payload) {
        send_listener(run, fd, payload, len);
        close(fd);
    }
}

void op_close_fds(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(syscall(SYS_close_range, (unsigned)num(a[CLOSE_FDS_FIRST]), ~0U, CLOSE_RANGE_CLOEXEC), "close_range");
}

/* The home of UID in the container's /etc/passwd, else "/". Read with care:
 * the image's file may be a fifo, a device or a procfs file (a symlink). */
void op_home(struct run *run, struct rec *r)
{
    char **a = r->argv;
    uid_t uid = num(a[HOME_UID]);
    char buf[1 << 16] = {0}, *home = "/";
    ssize_t n = 0;
    struct stat st;
    struct statfs sf;
    int fd = open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && !fstatfs(fd, &sf) &&
        sf.f_type != PROC_SUPER_MAGIC && sf.f_type != SYSFS_MAGIC)
        n = read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    for (char *line = n > 0 ? buf : NULL, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f[7] = {0}, *p = line; /* name:password:uid:gid:gecos:home:shell */
        for (int i = 0; i < 7 && p; i++) {
            f[i] = p;
            p = strchr(p, ':');
            if (p)
                *p++ = 0;
        }
        if (f[5] && *f[2] && strtoul(f[2], NULL, 10) == uid && *f[5]) {
            home = f[5];
            break;
        }
    }
    snprintf(run->home_env, sizeof run->home_env, "HOME=%s", home);
}

/* a: where argc args... envc env... */
void __attribute__((noreturn)) op_exec(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int argc = num(a[EXEC_ARGS]), env = EXEC_ARGS + 1 + argc;
    int envc = num(a[env]);
    char *argv[argc + 1], *envp[envc + 2];
    memcpy(argv, &a[EXEC_ARGS + 1], argc * sizeof *argv);
    argv[argc] = NULL;
    memcpy(envp, &a[env + 1], envc * sizeof *envp);
    if (run->home_env[0])
        envp[envc++] = run->home_env;
    envp[envc] = NULL;
    execve(run->exec_path, argv, envp);
    die("exec: \"%s\": %s", argv[0], err(errno));
}

/* ---- the two stages ---- */

void op_remount_ro(struct run *run, struct rec *r)
{
    remount_ro(run->root_fd, r->argv[REMOUNT_RO_PATH]);
}

static void map_ids(struct run *run, struct rec *r, const char *file)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", run->cloned, file);
    write_file(path, r->argv[UIDMAP_MAP], r->len[UIDMAP_MAP]);
}

void op_uidmap(struct run *run, struct rec *r)
{
    map_ids(run, r, "uid_map");
}

void op_gidmap(struct run *run, struct rec *r)
{
    map_ids(run, r, "gid_map");
}

/* The steps after the clone: the child runs its own and the any-stage
 * ones, the helper its own (the id maps, which need the child's pid). */
static void run_after_clone(struct run *run, int first, int child)
{
    for (int j = first; j < run->nrecs; j++) {
        struct rec *r = &run->plan[j];
        if (child ? !(r->op->stage & STAGE_CHILD) : r->op->stage != STAGE_HELPER)
            continue;
        report.where = r->argv[FIELD_WHERE];
        if (child)
            debug_step("init", r);
        r->op->fn(run, r);
    }
}

void op_cgroup(struct run *run, struct rec *r)
{
    write_file(r->argv[CGROUP_PROCS], "0", 1);
}

void op_debug(struct run *run, struct rec *r)
{
    report.debug_fd = num(r->argv[DEBUG_FD]);
    report.debug_json = num(r->argv[DEBUG_JSON]);
    fcntl(report.debug_fd, F_SETFD, FD_CLOEXEC); /* not for hooks or the program */
}

/* The cgroup2 directory the child is born in (CLONE_INTO_CGROUP); opened
 * before any setns, while host paths still resolve. */
void op_cgroup2(struct run *run, struct rec *r)
{
    char **a = r->argv;
    run->cgroup_fd = open(a[CGROUP2_DIR], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(run->cgroup_fd, "open cgroup %s", a[CGROUP2_DIR]);
}

/* The runtime makes the cgroup only now, around the helper itself (a
 * systemd scope needs a process to be started with): wait for its "go". */
void op_hold(struct run *run, struct rec *r)
{
    send_msg("hold", 4);
    char buf[4096];
    recv_msg(buf, sizeof buf);
    if (strcmp(buf, "go"))
        die("%s", buf[0] == 'E' ? buf + 1 : "the runtime did not make the cgroup");
}

/* A helper that stays to wait for its process goes back to the runtime's
 * cgroups after the clone (so kill --all, ps and pids.max meet only the
 * container's processes): their cgroup.procs, opened before any setns. */
void op_leave_cgroup(struct run *run, struct rec *r)
{
    char **a = r->argv;
    if (run->n_leave == (int)(sizeof run->leave_fds / sizeof *run->leave_fds))
        die("too many cgroup hierarchies");
    run->leave_fds[run->n_leave] = open(a[LEAVE_CGROUP_PROCS], O_WRONLY | O_CLOEXEC);
    CHECK(run->leave_fds[run->n_leave], "open %s", a[LEAVE_CGROUP_PROCS]);
    run->n_leave++;
}

/* Did the child die before its execve? Only a child that exited (we have
 * not reaped it) and still has the name main() gave it. */
static int died_before_exec(pid_t pid, int *status)
{
    siginfo_t si = {0};
    if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid != pid)
        return 0;
    char path[64], comm[32] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, comm, sizeof comm - 1) : -1;
    if (fd >= 0)
        close(fd);
    *status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    return n > 0 && !strcmp(comm, INIT_COMM "\n");
}

/* Wait until the child execs (failed[0] is closed on exec) or fails; tell
 * the runtime "exec", unless the child sent its error itself. Returns 0 if
 * the program runs. */
static int report_exec(pid_t pid, int failed)
{
    char c;
    ssize_t n;
    while ((n = read(failed, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n == 1)
        return -1;
    int status;
    if (died_before_exec(pid, &status)) {
        /* it could not even write its error (seccomp?) */
        char msg[256];
        int len = status > 128 ? snprintf(msg, sizeof msg, "Eprocess\tkilled by signal %d (%s) before "
                                          "its program ran", status - 128, strsignal(status - 128))
                               : snprintf(msg, sizeof msg, "Eprocess\texited with status %d before "
                                          "its program ran", status);
        send_msg(msg, len);
        return -1;
    }
    send_msg("exec", 4);
    return 0;
}

/* clone: a: where flags mode
 * mode 0 (create): leave once the child waits for `start` (or failed);
 * 1 (run, exec): report the execve, wait, report the exit status;
 * 2 (exec -d): report the execve and leave. */
void op_clone(struct run *run, struct rec *r)
{
    int i = r - run->plan;
    uint64_t flags = num(r->argv[CLONE_FLAGS]);
    int mode = num(r->argv[CLONE_MODE]);
    int go[2], failed[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go), "socketpair");
    CHECK(pipe2(failed, O_CLOEXEC), "pipe");
    struct clone_args ca = {.flags = flags, .exit_signal = SIGCHLD};
    if (run->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = run->cgroup_fd;
    }
    pid_t pid = syscall(SYS_clone3, &ca, sizeof ca);
    CHECK(pid, "clone");
    if (pid == 0) {
        close(go[0]);
        close(failed[0]);
        report.failed_fd = failed[1];
        if (run->cgroup_fd >= 0)
            close(run->cgroup_fd); /* a host directory: not to be reachable from in here */
        if (run->cgroupns_fd >= 0) {
            report.where = "linux.namespaces";
            CHECK(setns(run->cgroupns_fd, CLONE_NEWCGROUP), "setns cgroup namespace");
            close(run->cgroupns_fd);
            report.where = r->argv[FIELD_WHERE];
        }
        for (int j = 0; j < run->n_leave; j++)
            close(run->leave_fds[j]); /* the helper's, as well */
        if (read(go[1], &run->host_pid, sizeof run->host_pid) != sizeof run->host_pid)
            _exit(1); /* the helper died: nothing to report to */
        recv_bind_sources(run, i + 1, go[1]);
        close(go[1]);
        if (flags & CLONE_NEWUSER) {
            CHECK(setresgid(0, 0, 0), "setgid 0 in the user namespace");
            CHECK(setresuid(0, 0, 0), "setuid 0 in the user namespace");
        }
        if (setsid() < 0 && errno != EPERM)
            die("setsid: %s", err(errno));
        /* the root paths resolve in: the runtime's, unless the plan binds a rootfs */
        run->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(run->root_fd, "open /");
        run_after_clone(run, i + 1, 1);
        die("plan has no exec step");
    }
    close(go[1]);
    close(failed[1]);
    if (run->listener_fd >= 0)
        close(run->listener_fd); /* the child's now: the agent sees the end when it is done */
    for (int j = 0; j < run->n_leave; j++)
        CHECK(write(run->leave_fds[j], "0", 1), "leave the container's cgroup");
    run->cloned = pid;
    run_after_clone(run, i + 1, 0);
    char msg[32];
    debug("helper: cloned the init, pid %d (flags %#llx)", pid, (unsigned long long)ca.flags);
    send_msg(msg, snprintf(msg, sizeof msg, "pid %d", pid));
    CHECK(write(go[0], &pid, sizeof pid), "release child");
    send_bind_sources(run, pid, i + 1, go[0]);
    close(go[0]);
    int ran = mode == 0 ? -1 : report_exec(pid, failed[0]);
    if (mode != 1) {
        /* Reap a child that fails before it runs its program (or, under
         * create, before it waits for `start`): a caller that is a child
         * subreaper (a shim, conmon) must not inherit a failed process. */
        char c;
        ssize_t n = 0;
        if (mode == 0)
            while ((n = read(failed[0], &c, 1)) < 0 && errno == EINTR)
                ;
        if (mode == 0 ? n == 1 : ran < 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        _exit(0);
    }
    /* Wait mode (run, foreground exec): report how the process ended. */
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", err(errno));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    debug("helper: the process exited, status %d", code);
    send_msg(msg, snprintf(msg, sizeof msg, "exit %d", code));
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        dprintf(2, "ocirt-init: internal helper of ocirt, not to be run by hand\n");
        return 2;
    }
    /* Nothing in the container may ptrace us or open /proc/<pid>/exe, mem... */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* execve renames us: a process that died with this name never ran its program */
    prctl(PR_SET_NAME, INIT_COMM, 0, 0, 0);
    struct run state = {.root_fd = -1, .proc_fd = -1, .null_fd = -1, .fifo_fd = -1, .listener_fd = -1,
                        .nofile_late = {RLIM_INFINITY, 0}, .cgroupns_fd = -1, .cgroup_fd = -1};
    struct run *run = &state;
    report.sync_fd = atoi(argv[2]);
    read_plan(run, atoi(argv[1]));
    umask(0);
    for (int i = 0; i < run->nrecs; i++) {
        struct rec *r = &run->plan[i];
        report.where = r->argv[FIELD_WHERE];
        debug_step("helper", r);
        if (!(r->op->stage & STAGE_HELPER))
            die("plan: step %s comes before the clone, which it needs", r->argv[FIELD_NAME]);
        r->op->fn(run, r);
    }
    die("plan has no clone step");
}
