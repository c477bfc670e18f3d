#ifndef OCICHECKPOINT_CSHIM_H
#define OCICHECKPOINT_CSHIM_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/uio.h>
#include <signal.h>

/* Raw syscall: Swift cannot call the variadic syscall(2). Returns -errno on failure. */
long oc_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* ptrace(2) is variadic in glibc. Returns -1 and sets errno on failure. */
long oc_ptrace(long request, pid_t pid, void *addr, void *data);

/* PTRACE_GETREGSET/SETREGSET on one regset (NT_PRSTATUS, NT_X86_XSTATE...).
   On return *len holds the size the kernel filled. */
int oc_getregset(pid_t pid, int type, void *buf, size_t *len);
int oc_setregset(pid_t pid, int type, void *buf, size_t len);

/* PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13). */
struct oc_rseq_config {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
};
int oc_get_rseq_config(pid_t pid, struct oc_rseq_config *out);

/* clone3(2) argument block, as in linux/sched.h. */
struct oc_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/* Start the first task of a restore: a child created with clone3(`flags`, set_tid) that
   maps `stub_len` bytes RWX at `stub_addr`, copies `code` there, reports through a pipe
   and then waits in pause(2) for the caller to PTRACE_SEIZE it. `flags` may carry
   CLONE_NEW* and CLONE_PARENT. Returns the child's pid (in the caller's pid namespace)
   or -errno. */
pid_t oc_spawn_stub(uint64_t flags, const pid_t *set_tid, size_t set_tid_size,
                    uint64_t stub_addr, size_t stub_len, const uint8_t *code, size_t code_len);

/* cpuid(leaf, subleaf) -> eax, ebx, ecx, edx */
void oc_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/* Signal-set helpers: sigset_t macros are not importable. */
int oc_kill_thread(pid_t tgid, pid_t tid, int sig);

/* waitpid status macros */
int oc_wifexited(int status);
int oc_wexitstatus(int status);
int oc_wifsignaled(int status);
int oc_wtermsig(int status);
int oc_wifstopped(int status);
int oc_wstopsig(int status);
/* The PTRACE_EVENT_* code carried in a stop status (status >> 16). */
int oc_wevent(int status);



/* process_vm_readv/writev need _GNU_SOURCE, which Swift's Glibc import lacks. */
ssize_t oc_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                            const struct iovec *remote, unsigned long riovcnt);
ssize_t oc_process_vm_writev(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                             const struct iovec *remote, unsigned long riovcnt);
#endif
