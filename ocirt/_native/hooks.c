/* ocirt-init: hooks run by the helper's child: createContainer and startContainer. */
#include "init.h"

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

/* The seccomp step the process is to get before its execve, if not loaded yet. */
static struct rec *filter_to_come(struct run *run)
{
    for (int i = 0; i < run->nrecs; i++)
        if (run->plan[i].op->fn == op_seccomp)
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
