/* ocirt-init: bind sources and idmapped trees, opened by the helper for the child. */
#include "init.h"

/* idmapped mounts: the helper (still root in the host user namespace, which
 * MOUNT_ATTR_IDMAP needs) makes a user namespace for each mapping here;
 * send_bind_sources clones the source into a detached tree mapped through
 * it, in the child's mount namespace, and the child attaches the trees in
 * plan order with move_mount. */
int set_attr(int fd, unsigned flags, uint64_t set, uint64_t clr, int userns)
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

/* Bind sources are host paths, opened by the helper as the host's root
 * (the container's root may be a mapped user that cannot reach them), as
 * runc does: in the child's mount namespace, whose copies of the host's
 * mounts a bind needs as its source (and keeps locked, ro stays ro), and
 * handed to the child over the go socket, in plan order. */
static int is_bind(struct rec *r)
{
    return r->op->fn == op_mount && (num(r->argv[MOUNT_FLAGS]) & MS_BIND);
}

/* Helper: open the bind sources of the steps after FIRST in PID's mount
 * namespace (idmapped ones as mapped trees) and send them on SOCK. */
void send_bind_sources(struct run *run, pid_t pid, int first, int sock)
{
    if (run->self_binds)
        return;
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

/* An unprivileged helper may not join the child's mount namespace (its
 * user namespace is the child's): the child, the same host user, opens
 * its bind sources itself, before its first mount, as the helper would. */
static void open_bind_sources(struct run *run, int first)
{
    const char *where = report.where;
    for (int j = first, k = 0; j < run->nrecs; j++) {
        struct rec *r = &run->plan[j];
        if (!is_bind(r))
            continue;
        report.where = r->argv[FIELD_WHERE];
        if (has_word(r->argv[MOUNT_EXTRA], "idmapped"))
            die("an idmapped mount needs the runtime to be root of the host's user namespace");
        run->bind_fds[k] = open(r->argv[MOUNT_SRC], O_PATH | O_CLOEXEC);
        CHECK(run->bind_fds[k++], "open bind source %s", r->argv[MOUNT_SRC]);
    }
    report.where = where;
}

/* Child: receive what send_bind_sources sends. */
void recv_bind_sources(struct run *run, int first, int sock)
{
    for (int j = first; j < run->nrecs; j++)
        run->n_binds += is_bind(&run->plan[j]);
    run->bind_fds = calloc(run->n_binds + 1, sizeof *run->bind_fds);
    if (run->self_binds) {
        open_bind_sources(run, first);
        return;
    }
    for (int k = 0; k < run->n_binds; k++)
        if ((run->bind_fds[k] = recv_fd(sock)) < 0)
            _exit(1); /* the helper failed: it reports why */
}
