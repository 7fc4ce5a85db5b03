// libs: seccomp
/* Parent-side seccomp: thin wrappers over libseccomp so Python can build a
   filter and export it as raw BPF; the container side only installs it.
   Plain C types only: this text is also the cffi cdef. */

struct ocirt_scmp_arg {
    unsigned int index;
    int op;                         /* enum scmp_compare: NE=1 ... MASKED_EQ=7 */
    uint64_t value;                 /* datum_a (the mask for MASKED_EQ) */
    uint64_t value_two;             /* datum_b */
};

/* libseccomp version as major*10000 + minor*100 + micro. */
int ocirt_scmp_version(void);
/* Path of the loaded libseccomp file (to notice when it is replaced). */
const char *ocirt_scmp_library(void);

/* Token for an architecture name such as "x86_64"; 0 if unknown. */
uint32_t ocirt_scmp_arch(const char *name);
/* Native syscall number for a name; -1 if unknown (pseudo-syscalls are < -1). */
int ocirt_scmp_syscall(const char *name);
/* The same on an architecture (its token); the native architecture's token. */
int ocirt_scmp_syscall_arch(uint32_t arch, const char *name);
uint32_t ocirt_scmp_arch_native(void);

void *ocirt_scmp_new(uint32_t default_action);
void ocirt_scmp_free(void *ctx);
/* These return 0 or a negative errno, as libseccomp does. */
int ocirt_scmp_arch_add(void *ctx, uint32_t arch);
int ocirt_scmp_optimize(void *ctx, int level);
int ocirt_scmp_rule_add(void *ctx, uint32_t action, int nr,
                        unsigned int nargs, const struct ocirt_scmp_arg *args);
int ocirt_scmp_export(void *ctx, int fd);

/* 0 if the kernel accepts seccomp(SECCOMP_SET_MODE_FILTER, flags), else -errno. */
int ocirt_seccomp_flags_check(unsigned int flags);

/* Test helper (the container side has its own): set no_new_privs and install
   a raw BPF program; returns the listener fd, 0, or -errno. */
int ocirt_seccomp_install(const void *bpf, size_t len, unsigned int flags);
