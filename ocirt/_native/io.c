/* ocirt-init: numbers, small files, the sync socket and fd passing. */
#include "init.h"

uint64_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

long long snum(const char *s)
{
    return strtoll(s, NULL, 0);
}

void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd, "open %s", path);
    CHECK(write(fd, data, len), "write %s", path);
    close(fd);
}

/* One sendmsg of LEN bytes of MSG carrying FD. */
ssize_t send_fd(int sock, int fd, const void *msg, size_t len)
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
int recv_fd(int sock)
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
ssize_t recv_msg(char *buf, size_t cap)
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

/* The whole of PATH, NUL-terminated, in a malloc'd buffer. */
char *read_text(const char *path)
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
