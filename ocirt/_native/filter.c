/* ocirt-init: seccomp: the filter, and its listener fd for an agent. */
#include "init.h"

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

long load_filter(char **a, size_t bpflen)
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
