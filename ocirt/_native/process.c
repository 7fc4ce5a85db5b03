/* ocirt-init: process attributes: kernel settings, limits, scheduling, cwd, the program and its execve. */
#include "init.h"

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
