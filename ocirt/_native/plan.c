/* ocirt-init: reading the plan, checking it against the op table, running the helper stage. */
#define STEP_TABLE
#include "init.h"

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
