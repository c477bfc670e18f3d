#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cpuid.h>
#include <fcntl.h>

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

long oc_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
    long r = syscall(nr, a1, a2, a3, a4, a5, a6);
    return r == -1 ? -errno : r;
}

long oc_ptrace(long request, pid_t pid, void *addr, void *data) {
    return ptrace((enum __ptrace_request)request, pid, addr, data);
}

int oc_getregset(pid_t pid, int type, void *buf, size_t *len) {
    struct iovec iov = { buf, *len };
    if (ptrace(PTRACE_GETREGSET, pid, (void *)(long)type, &iov) < 0) return -1;
    *len = iov.iov_len;
    return 0;
}

int oc_setregset(pid_t pid, int type, void *buf, size_t len) {
    struct iovec iov = { buf, len };
    return (int)ptrace(PTRACE_SETREGSET, pid, (void *)(long)type, &iov);
}

int oc_get_rseq_config(pid_t pid, struct oc_rseq_config *out) {
    memset(out, 0, sizeof(*out));
    long r = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid,
                    (void *)sizeof(*out), out);
    return r < 0 ? -1 : 0;
}

/* Runs in the child between clone3 and the tracer's seize: raw syscalls only, since the
   child is a copy of a multi-threaded Swift process. */
static void stub_child(uint64_t stub_addr, size_t stub_len, const uint8_t *code, size_t code_len, int ready) {
    long p = syscall(SYS_mmap, stub_addr, stub_len, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (long)stub_addr) syscall(SYS_exit_group, 120);
    for (size_t i = 0; i < code_len; i++) ((volatile uint8_t *)stub_addr)[i] = code[i];
    char c = 1;
    if (syscall(SYS_write, ready, &c, 1) != 1) syscall(SYS_exit_group, 121);
    for (;;) syscall(SYS_pause);
}

pid_t oc_spawn_stub(uint64_t flags, const pid_t *set_tid, size_t set_tid_size,
                    uint64_t stub_addr, size_t stub_len, const uint8_t *code, size_t code_len) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -errno;
    struct oc_clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    /* With CLONE_PARENT the child inherits our exit signal; clone3 wants 0 then. */
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    args.set_tid = (uint64_t)(uintptr_t)set_tid;
    args.set_tid_size = set_tid_size;
    long r = syscall(SYS_clone3, &args, sizeof(args));
    if (r == 0) stub_child(stub_addr, stub_len, code, code_len, ready[1]);
    int err = errno;
    close(ready[1]);
    if (r < 0) { close(ready[0]); return -err; }
    char c;
    ssize_t n;
    do { n = read(ready[0], &c, 1); } while (n < 0 && errno == EINTR);
    close(ready[0]);
    return n == 1 ? (pid_t)r : -ECHILD;
}

void oc_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
}

int oc_kill_thread(pid_t tgid, pid_t tid, int sig) {
    return (int)syscall(SYS_tgkill, tgid, tid, sig);
}

int oc_wifexited(int s) { return WIFEXITED(s); }
int oc_wexitstatus(int s) { return WEXITSTATUS(s); }
int oc_wifsignaled(int s) { return WIFSIGNALED(s); }
int oc_wtermsig(int s) { return WTERMSIG(s); }
int oc_wifstopped(int s) { return WIFSTOPPED(s); }
int oc_wstopsig(int s) { return WSTOPSIG(s); }
int oc_wevent(int s) { return s >> 16; }

ssize_t oc_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                            const struct iovec *remote, unsigned long riovcnt) {
    return process_vm_readv(pid, local, liovcnt, remote, riovcnt, 0);
}

ssize_t oc_process_vm_writev(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                             const struct iovec *remote, unsigned long riovcnt) {
    return process_vm_writev(pid, local, liovcnt, remote, riovcnt, 0);
}
