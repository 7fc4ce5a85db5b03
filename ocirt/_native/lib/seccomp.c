/* See seccomp.h. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "seccomp.h"

/* Python passes kernel ABI values (SECCOMP_RET_*) and scmp_compare numbers. */
_Static_assert(SCMP_CMP_NE == 1 && SCMP_CMP_MASKED_EQ == 7, "scmp_compare numbering");
_Static_assert(SCMP_ACT_NOTIFY == 0x7fc00000U && SCMP_ACT_ALLOW == 0x7fff0000U, "actions");

#define MAX_ARGS 6

int ocirt_scmp_version(void)
{
    const struct scmp_version *v = seccomp_version();
    return v->major * 10000 + v->minor * 100 + v->micro;
}

const char *ocirt_scmp_library(void)
{
    Dl_info info;
    if (!dladdr((void *)seccomp_version, &info) || !info.dli_fname)
        return "";
    return info.dli_fname;
}

uint32_t ocirt_scmp_arch(const char *name)
{
    return seccomp_arch_resolve_name(name);
}

int ocirt_scmp_syscall(const char *name)
{
    return seccomp_syscall_resolve_name(name);
}

int ocirt_scmp_syscall_arch(uint32_t arch, const char *name)
{
    return seccomp_syscall_resolve_name_arch(arch, name);
}

uint32_t ocirt_scmp_arch_native(void)
{
    return seccomp_arch_native();
}

void *ocirt_scmp_new(uint32_t default_action)
{
    return seccomp_init(default_action);
}

void ocirt_scmp_free(void *ctx)
{
    seccomp_release(ctx);
}

int ocirt_scmp_arch_add(void *ctx, uint32_t arch)
{
    int rc = seccomp_arch_add(ctx, arch);
    return rc == -EEXIST ? 0 : rc;  /* listing the native arch is fine */
}

int ocirt_scmp_optimize(void *ctx, int level)
{
    return seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, level);
}

int ocirt_scmp_rule_add(void *ctx, uint32_t action, int nr,
                        unsigned int nargs, const struct ocirt_scmp_arg *args)
{
    struct scmp_arg_cmp cmp[MAX_ARGS];
    if (nargs > MAX_ARGS)
        return -EINVAL;
    for (unsigned int i = 0; i < nargs; i++) {
        cmp[i] = (struct scmp_arg_cmp){
            .arg = args[i].index,
            .op = (enum scmp_compare)args[i].op,
            .datum_a = args[i].value,
            .datum_b = args[i].value_two,
        };
    }
    return seccomp_rule_add_array(ctx, action, nr, nargs, cmp);
}

int ocirt_scmp_export(void *ctx, int fd)
{
    return seccomp_export_bpf(ctx, fd);
}

int ocirt_seccomp_flags_check(unsigned int flags)
{
    /* The kernel checks the flags before reading the program: EFAULT on a
       NULL program means every flag was accepted (libseccomp probes alike). */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno != EFAULT)
        return -errno;
    return 0;
}

int ocirt_seccomp_install(const void *bpf, size_t len, unsigned int flags)
{
    struct sock_fprog prog = {
        .len = (unsigned short)(len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)bpf,
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    return rc < 0 ? -errno : (int)rc;
}
