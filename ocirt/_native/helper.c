/* ocirt-init: the helper's steps before the clone: namespaces to join, cgroups, the exec fifo. */
#include "init.h"

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

void op_timens(struct run *run, struct rec *r)
{
    char **a = r->argv;
    CHECK(unshare(CLONE_NEWTIME), "unshare time namespace");
    if (*a[TIMENS_OFFSETS])
        write_file("/proc/self/timens_offsets", a[TIMENS_OFFSETS], strlen(a[TIMENS_OFFSETS]));
}

/* Helper, before any setns: the host's /proc is ours. */
/* Unprivileged, our /proc files are ours only while we are dumpable (see
 * op_clone): for this write alone (raising the score needs no privilege). */
void op_oom(struct run *run, struct rec *r)
{
    char **a = r->argv;
    int unprivileged = geteuid() != 0;
    if (unprivileged)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    write_file("/proc/self/oom_score_adj", a[OOM_SCORE], strlen(a[OOM_SCORE]));
    if (unprivileged)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Opened by the helper, before any namespace is joined: the state root
 * need not be searchable by a user namespace's root. */
void op_fifo_open(struct run *run, struct rec *r)
{
    char **a = r->argv;
    run->fifo_fd = open(a[FIFO_OPEN_PATH], O_PATH | O_CLOEXEC);
    CHECK(run->fifo_fd, "open exec fifo %s", a[FIFO_OPEN_PATH]);
}

void op_cgroup(struct run *run, struct rec *r)
{
    write_file(r->argv[CGROUP_PROCS], "0", 1);
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
