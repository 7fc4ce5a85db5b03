/* ocirt-init: credentials: the session keyring, user and groups, capabilities, no_new_privs. */
#include "init.h"

/* keyring: a: where name perm-bits. Join the session keyring `name`, made
 * if no keyring of that name is searchable, so the container does not hold
 * the caller's. A kernel without keys is let be (as runc: keyrings guard
 * little beside the credentials). perm-bits, unless 0, are added to the
 * keyring's permissions (runc's ModKeyringPerm, whose mask keeps them all). */
void op_keyring(struct run *run, struct rec *r)
{
    char **a = r->argv;
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, a[KEYRING_NAME]);
    if (id < 0 && errno == ENOSYS)
        return;
    CHECK(id, "join session keyring %s", a[KEYRING_NAME]);
    uint32_t bits = num(a[KEYRING_PERM]);
    if (!bits)
        return;
    char desc[1200]; /* "type;uid;gid;perm;name", the name at most 1029 bytes */
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof desc);
    CHECK(n, "describe session keyring %s", a[KEYRING_NAME]);
    if (n > (long)sizeof desc)
        die("describe session keyring %s: description too long", a[KEYRING_NAME]);
    char *perm = desc;
    for (int i = 0; i < 3; i++) {
        if (!(perm = strchr(perm, ';')))
            die("describe session keyring %s: unexpected \"%s\"", a[KEYRING_NAME], desc);
        perm++;
    }
    uint32_t cur = strtoul(perm, NULL, 16);
    CHECK(syscall(SYS_keyctl, KEYCTL_SETPERM, id, cur | bits), "set the permissions of session keyring %s",
          a[KEYRING_NAME]);
}

static void capmask(char **a, int i, uint32_t out[2])
{
    uint64_t v = num(a[i]);
    out[0] = (uint32_t)v;
    out[1] = (uint32_t)(v >> 32);
}

static int last_cap(void)
{
    static int last = -1;
    if (last < 0) {
        char buf[16] = {0};
        int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0)
            last = atoi(buf);
        else
            last = 40;
        if (fd >= 0)
            close(fd);
    }
    return last;
}

void op_bounding(struct run *run, struct rec *r)
{
    char **a = r->argv;
    uint64_t keep = num(a[BOUNDING_KEEP]);
    for (int c = 0; c <= last_cap(); c++)
        if (!(keep & (1ULL << c)))
            CHECK(prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop capability %d from the bounding set", c);
}

/* a: where uid gid umask ngroups groups... */
void op_user(struct run *run, struct rec *r)
{
    char **a = r->argv;
    uid_t uid = num(a[USER_UID]);
    gid_t gid = num(a[USER_GID]);
    int ngroups = num(a[USER_GROUPS]);
    gid_t groups[ngroups > 0 ? ngroups : 1];
    for (int i = 0; i < ngroups; i++)
        groups[i] = num(a[USER_GROUPS + 1 + i]);
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keep capabilities");
    /* setgroups is refused in a user namespace with setgroups=deny. */
    if (setgroups(ngroups, groups) < 0 && !(errno == EPERM && ngroups == 0))
        die("setgroups: %s", err(errno));
    CHECK(setresgid(gid, gid, gid), "setgid %u", gid);
    CHECK(setresuid(uid, uid, uid), "setuid %u", uid);
    if (a[USER_UMASK][0] != '-')
        umask(num(a[USER_UMASK]));
}

/* a: where effective permitted inheritable ambient (64-bit masks) keep_admin
 * keep_admin: keep CAP_SYS_ADMIN effective for loading seccomp without
 * no_new_privs after the credentials are set. execve computes the new
 * permitted and effective sets from the bounding, inheritable and ambient
 * sets (and the file's), never from the old permitted or effective ones
 * (capabilities(7)), so the program does not get it. */
void op_caps(struct run *run, struct rec *r)
{
    char **a = r->argv;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    uint32_t e[2], p[2], i[2];
    capmask(a, CAPS_EFFECTIVE, e);
    capmask(a, CAPS_PERMITTED, p);
    capmask(a, CAPS_INHERITABLE, i);
    if (!strcmp(a[CAPS_KEEP_ADMIN], "1")) {
        e[CAP_SYS_ADMIN / 32] |= 1U << (CAP_SYS_ADMIN % 32);
        p[CAP_SYS_ADMIN / 32] |= 1U << (CAP_SYS_ADMIN % 32);
    }
    /* A capability we do not hold ourselves cannot be granted: skip it, as
     * the spec allows (this host's root may lack one in its bounding set). */
    struct __user_cap_data_struct cur[2];
    CHECK(syscall(SYS_capget, &h, cur), "get capabilities");
    for (int k = 0; k < 2; k++)
        d[k] = (struct __user_cap_data_struct){e[k] & cur[k].permitted, p[k] & cur[k].permitted,
                                               i[k] & cur[k].permitted};
    CHECK(syscall(SYS_capset, &h, d), "set capabilities");
    uint64_t amb = num(a[CAPS_AMBIENT]) & ((uint64_t)cur[1].permitted << 32 | cur[0].permitted);
    for (int c = 0; c <= last_cap(); c++)
        if (amb & (1ULL << c))
            CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0), "raise ambient capability %d", c);
    CHECK(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "clear keep-capabilities");
}

void op_nnp(struct run *run, struct rec *r)
{
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs");
}
