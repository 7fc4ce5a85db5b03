// eBPF device filter for cgroup v2: load a BPF_PROG_TYPE_CGROUP_DEVICE program
// and attach/detach/query it on a cgroup directory fd. Each call returns
// -errno on failure.
int ocirt_bpf_devprog_load(const void *insns, unsigned int insn_cnt, char *log, unsigned int log_size);
int ocirt_bpf_dev_attach(int cgroup_fd, int prog_fd);
int ocirt_bpf_dev_detach(int cgroup_fd, int prog_fd);
int ocirt_bpf_dev_query(int cgroup_fd, unsigned int *ids, unsigned int *count);
int ocirt_bpf_prog_fd_by_id(unsigned int id);
