#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include "bpfdev.h"

static int sys_bpf(int cmd, union bpf_attr *attr)
{
    long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
    return r < 0 ? -errno : (int)r;
}

int ocirt_bpf_devprog_load(const void *insns, unsigned int insn_cnt, char *log, unsigned int log_size)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (__u64)(unsigned long)insns;
    attr.insn_cnt = insn_cnt;
    attr.license = (__u64)(unsigned long)"Apache";
    if (log && log_size) {
        attr.log_buf = (__u64)(unsigned long)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    int fd = sys_bpf(BPF_PROG_LOAD, &attr);
    /* a too small log buffer makes the load fail with ENOSPC: retry without it */
    if (fd == -ENOSPC && log)
        return ocirt_bpf_devprog_load(insns, insn_cnt, NULL, 0);
    return fd;
}

static int attach_cmd(int cmd, int cgroup_fd, int prog_fd)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = cgroup_fd;
    attr.attach_bpf_fd = prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    if (cmd == BPF_PROG_ATTACH)
        attr.attach_flags = BPF_F_ALLOW_MULTI;
    return sys_bpf(cmd, &attr);
}

int ocirt_bpf_dev_attach(int cgroup_fd, int prog_fd)
{
    return attach_cmd(BPF_PROG_ATTACH, cgroup_fd, prog_fd);
}

int ocirt_bpf_dev_detach(int cgroup_fd, int prog_fd)
{
    return attach_cmd(BPF_PROG_DETACH, cgroup_fd, prog_fd);
}

int ocirt_bpf_dev_query(int cgroup_fd, unsigned int *ids, unsigned int *count)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (__u64)(unsigned long)ids;
    attr.query.prog_cnt = *count;
    int r = sys_bpf(BPF_PROG_QUERY, &attr);
    *count = attr.query.prog_cnt;
    return r;
}

int ocirt_bpf_prog_fd_by_id(unsigned int id)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = id;
    return sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
}
