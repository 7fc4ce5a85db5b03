/* ocirt-init: the clone and the two stages after it; ready, the exec fifo's wait. */
#include "init.h"

/* Set up: the helper may go, and the init outlive it. A create's helper
 * hears "r" first: the pipe's end without it means that we were killed,
 * and that it must reap us (else a subreaper caller inherits a zombie). */
static void release_helper(struct run *run)
{
    if (run->fifo_fd >= 0)
        (void)!write(report.failed_fd, "r", 1);
    close(report.failed_fd);
    report.failed_fd = -1;
}

/* Block until `start` opens the fifo for reading; "0" tells it we are
 * here (a fifo nobody opened for writing reads as empty, too). */
void op_fifo_wait(struct run *run, struct rec *r)
{
    release_helper(run);
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
    if (run->notified) /* from here our syscalls may wait for the seccomp agent: */
        release_helper(run); /* the helper must not (exec -d by the agent itself) */
    if (strcmp(a[READY_KEEP], "1")) {
        close(report.sync_fd);
        report.sync_fd = -1;
    }
}

#define MAP_LINES 340 /* the kernel's most */

/* newuidmap/newgidmap (setuid, Debian's uidmap) write the map for a caller
 * that may not (its /etc/subuid ranges): argv is the tool, the child's pid
 * and the map's numbers. Its refusal is its first line on stderr. */
static void map_with_tool(struct run *run, const char *tool, char *map)
{
    char pid[16], *argv[3 * MAP_LINES + 3] = {(char *)tool, pid}, *envp[] = {NULL}, *save = NULL;
    int argc = 2, ep[2];
    snprintf(pid, sizeof pid, "%d", run->cloned);
    for (char *t = strtok_r(map, " \n", &save); t && argc < (int)(sizeof argv / sizeof *argv) - 1;
         t = strtok_r(NULL, " \n", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    CHECK(pipe2(ep, O_CLOEXEC), "pipe");
    pid_t p = fork();
    CHECK(p, "fork %s", tool);
    if (p == 0) {
        dup2(ep[1], 1);
        dup2(ep[1], 2);
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        execve(tool, argv, envp);
        dprintf(2, "%s: %s\n", tool, err(errno));
        _exit(127);
    }
    close(ep[1]);
    char msg[512];
    ssize_t n, len = 0;
    while ((n = read(ep[0], msg + len, sizeof msg - 1 - len)) > 0 || (n < 0 && errno == EINTR))
        len += n > 0 ? n : 0;
    close(ep[0]);
    msg[len] = 0;
    msg[strcspn(msg, "\n")] = 0;
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        die("%s refused the map: %s", tool, *msg ? msg : "it failed");
}

/* a: where map tool ("": written here) */
static void map_ids(struct run *run, struct rec *r, const char *file)
{
    char path[64];
    if (r->argv[UIDMAP_TOOL][0]) {
        map_with_tool(run, r->argv[UIDMAP_TOOL], r->argv[UIDMAP_MAP]);
        return;
    }
    snprintf(path, sizeof path, "/proc/%d/%s", run->cloned, file);
    write_file(path, r->argv[UIDMAP_MAP], r->len[UIDMAP_MAP]);
}

void op_uidmap(struct run *run, struct rec *r)
{
    map_ids(run, r, "uid_map");
}

/* Unprivileged, the kernel takes a gid map only once setgroups is denied
 * (else a process could drop a group that denies it access); newgidmap
 * decides that itself (it allows setgroups with subordinate ranges). */
void op_gidmap(struct run *run, struct rec *r)
{
    if (geteuid() != 0 && !r->argv[GIDMAP_TOOL][0]) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/setgroups", run->cloned);
        write_file(path, "deny", 4);
    }
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

/* The child of the clone: take what the helper hands over (our host pid,
 * the bind sources), become root of a new user namespace and a session
 * leader, then run the child's steps. */
static void __attribute__((noreturn)) child_start(struct run *run, struct rec *r, uint64_t flags, int go, int failed)
{
    int i = r - run->plan;
    report.failed_fd = failed;
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
    if (read(go, &run->host_pid, sizeof run->host_pid) != sizeof run->host_pid)
        _exit(1); /* the helper died: nothing to report to */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* our id maps are written: see op_clone */
    recv_bind_sources(run, i + 1, go);
    close(go);
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

/* The helper after the clone (MODE as op_clone's): leave, or wait for the
 * process and report how it ended. */
static void __attribute__((noreturn)) helper_end(pid_t pid, int mode, int failed)
{
    int ran = mode == 0 ? -1 : report_exec(pid, failed);
    if (mode != 1) {
        /* Reap a child that fails before it runs its program (or, under
         * create, before it waits for `start`): a caller that is a child
         * subreaper (a shim, conmon) must not inherit a failed process. */
        char c;
        ssize_t n = 0;
        if (mode == 0)
            while ((n = read(failed, &c, 1)) < 0 && errno == EINTR)
                ;
        if (mode == 0 ? !(n == 1 && c == 'r') : ran < 0)
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
    char msg[32];
    send_msg(msg, snprintf(msg, sizeof msg, "exit %d", code));
    _exit(0);
}

/* clone: a: where flags mode
 * mode 0 (create): leave once the child waits for `start` (or failed);
 * 1 (run, exec): report the execve, wait, report the exit status;
 * 2 (exec -d): report the execve and leave. */
void op_clone(struct run *run, struct rec *r)
{
    int i = r - run->plan;
    uint64_t flags = num(r->argv[CLONE_FLAGS]);
    int go[2], failed[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go), "socketpair");
    CHECK(pipe2(failed, O_CLOEXEC), "pipe");
    struct clone_args ca = {.flags = flags, .exit_signal = SIGCHLD};
    if (run->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = run->cgroup_fd;
    }
    /* Unprivileged, the helper may write the id maps of a child it owns
     * only while the child is dumpable (else its /proc files are the host
     * root's): dumpable from the clone until `go`, which comes after the maps. */
    int unprivileged_maps = (flags & CLONE_NEWUSER) && geteuid() != 0;
    run->self_binds = unprivileged_maps; /* see open_bind_sources */
    if (unprivileged_maps)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    pid_t pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (unprivileged_maps && pid != 0)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    CHECK(pid, "clone");
    if (pid == 0) {
        close(go[0]);
        close(failed[0]);
        child_start(run, r, flags, go[1], failed[1]);
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
    helper_end(pid, num(r->argv[CLONE_MODE]), failed[0]);
}
