/* ocirt-init: the errors and the --debug log, the messages of the helper. */
#include "init.h"

struct report report = {"", -1, -1, -1, -1, 0};

void send_msg(const char *buf, size_t n)
{
    if (report.sync_fd >= 0)
        while (send(report.sync_fd, buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
}

/* Report "where: message" to the runtime (or stderr once the sync socket is
 * gone) and exit. Messages use lower-case errno text, as Go programs print
 * it: clients match on e.g. "no such file or directory". */
void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
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

const char *err(int e)
{
    static char buf[128];
    for (size_t i = 0; i < sizeof go_text / sizeof go_text[0]; i++)
        if (go_text[i].e == e)
            return go_text[i].text;
    snprintf(buf, sizeof buf, "%s", strerror(e));
    buf[0] = tolower((unsigned char)buf[0]);
    return buf;
}

void __attribute__((format(printf, 1, 2))) debug(const char *fmt, ...)
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
void debug_step(const char *stage, struct rec *r)
{
    if (report.debug_fd < 0)
        return;
    char **a = r->argv;
    int k = r->op->log;
    const char *arg = r->argc > k && r->len[k] < 200 && !memchr(a[k], 0, r->len[k]) ? a[k] : "";
    debug("%s: %s %s%s%s", stage, a[FIELD_NAME], a[FIELD_WHERE], *arg ? ": " : "", arg);
}

void op_debug(struct run *run, struct rec *r)
{
    report.debug_fd = num(r->argv[DEBUG_FD]);
    report.debug_json = num(r->argv[DEBUG_JSON]);
    fcntl(report.debug_fd, F_SETFD, FD_CLOEXEC); /* not for hooks or the program */
}
