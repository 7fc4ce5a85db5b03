/*
 * ocirt-init: the container side of ocirt (init.h: what its files share).
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
#ifndef OCIRT_INIT_H
#define OCIRT_INIT_H
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
extern struct report report;

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
    int self_binds;  /* the child opens its bind sources itself (an unprivileged helper) */
};

#define CHECK(expr, ...)                                                    \
    do {                                                                    \
        if ((expr) < 0) {                                                   \
            int e_ = errno;                                                 \
            char m_[1024];                                                  \
            snprintf(m_, sizeof m_, __VA_ARGS__);                           \
            die("%s: %s", m_, err(e_));                                     \
        }                                                                   \
    } while (0)

/* errors.c */
void send_msg(const char *buf, size_t n);
void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...);
const char *err(int e);
void __attribute__((format(printf, 1, 2))) debug(const char *fmt, ...);
void debug_step(const char *stage, struct rec *r);

/* io.c */
uint64_t num(const char *s);
long long snum(const char *s);
void write_file(const char *path, const char *data, size_t len);
ssize_t send_fd(int sock, int fd, const void *msg, size_t len);
int recv_fd(int sock);
ssize_t recv_msg(char *buf, size_t cap);
char *read_text(const char *path);

/* paths.c */
int open_in_root(int root, const char *path, int flags);
int open_no_symlinks(int root, const char *path, int flags);
void mkdir_in_root(int root, const char *path, mode_t mode);
int open_parent(int root, const char *path, const char **name);
void touch_in_root(int root, const char *path);
void fdpath(char *buf, size_t cap, int fd);
int under(const char *path, const char *dir);
void proc_write(struct run *run, const char *name, const char *value, const char *what);

/* The flags a mount came with that a bind remount must repeat: in a user
 * namespace the kernel locks them (EPERM without), elsewhere it would clear them. */
static inline unsigned long kept_flags(const struct statfs *sf)
{
    return sf->f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

/* binds.c */
int set_attr(int fd, unsigned flags, uint64_t set, uint64_t clr, int userns);
void send_bind_sources(struct run *run, pid_t pid, int first, int sock);
void recv_bind_sources(struct run *run, int first, int sock);

/* mounts.c */
int has_word(const char *list, const char *word);

/* filter.c */
long load_filter(char **a, size_t bpflen);

#endif
