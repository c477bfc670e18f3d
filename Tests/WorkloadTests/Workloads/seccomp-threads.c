/* seccomp-threads: filters per thread. The main thread installs F1 (uname fails with
 * EPERM) with SECCOMP_FILTER_FLAG_TSYNC while two threads run, so all three share it;
 * thread B then adds F2 (getpgrp fails with EACCES) and F2u (uname fails with EACCES,
 * which wins over F1's EPERM as the newer filter) for itself alone (not with "tsync").
 * With "strict", a child enters strict mode and waits in read(): after go it must still
 * be in strict mode (a byte read and echoed, then getpid kills it with SIGKILL).
 * After go: each thread sees exactly its filters, and main installs F3 (getppid fails
 * with EIO) with TSYNC, which works only if the threads still share F1 with main: it
 * must fail naming thread B when B has F2, and reach every thread with "tsync". */
#include "workload.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

static int uname_filtered(void) { struct utsname u; return uname(&u) == -1 && errno == EPERM; }
static int getpgrp_filtered(void) { return syscall(SYS_getpgrp) == -1 && errno == EACCES; }

static int install(int nr, int err, unsigned flags)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = code };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static volatile int phase, seen[2], extra_installed, own_filter = 1;
static volatile int result[2] = { -1, -1 }, getppid_filtered[2] = { -1, -1 };
static volatile pid_t tid[2];

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    tid[i] = gettid();
    while (phase < 1) usleep(1000);
    if (i == 1 && own_filter && (install(SYS_getpgrp, EACCES, 0) != 0 || install(SYS_uname, EACCES, 0) != 0))
        wl_fail("F2 in thread B: %s", strerror(errno));
    if (i == 1) extra_installed = 1;
    while (phase < 2) usleep(1000);
    struct utsname u;
    errno = 0;
    int unamed = uname(&u) == -1 ? errno : 0;
    result[i] = (unamed == EPERM) * 2 + getpgrp_filtered() + (unamed == EACCES) * 4;
    seen[i] = 1;
    while (phase < 3) usleep(1000);
    getppid_filtered[i] = syscall(SYS_getppid) == -1 && errno == EIO;
    for (;;) pause();
    return NULL;
}

static pid_t strict_child(int *to, int *from)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) { perror("pipe"); exit(2); }
    pid_t c = fork();
    if (c == 0) {
        close(a[1]); close(b[0]);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) _exit(3);
        char x;
        if (syscall(SYS_read, a[0], &x, 1) == 1) { x++; syscall(SYS_write, b[1], &x, 1); }
        syscall(SYS_getpid);   /* not allowed in strict mode: SIGKILL */
        syscall(SYS_exit, 0);
    }
    close(a[0]); close(b[1]);
    *to = a[1]; *from = b[0];
    return c;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int strict = argc > 2 && strcmp(argv[2], "strict") == 0;
    own_filter = !(argc > 2 && strcmp(argv[2], "tsync") == 0);
    pid_t pids[2] = { getpid(), 0 };
    int to = -1, from = -1;
    if (strict) pids[1] = strict_child(&to, &from);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void *)(long)i);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("nnp"); return 2; }
    if (install(SYS_uname, EPERM, SECCOMP_FILTER_FLAG_TSYNC) != 0) { wl_fail("F1 with TSYNC: %s", strerror(errno)); wl_finish(); }
    phase = 1;
    while (!extra_installed && !wl_fail_msg[0]) usleep(1000);
    if (wl_fail_msg[0]) wl_finish();
    if (strict) {
        double deadline = wl_now() + 5;
        char path[64], line[256];
        int mode = -1;
        snprintf(path, sizeof path, "/proc/%d/status", pids[1]);
        while (mode != 1 && wl_now() < deadline) {
            FILE *f = fopen(path, "r");
            while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "Seccomp:", 8)) mode = atoi(line + 8);
            if (f) fclose(f);
            if (mode != 1) wl_sleep_ms(2);
        }
        if (mode != 1) { wl_fail("the strict child shows seccomp mode %d", mode); wl_finish(); }
    }
    wl_ready_pids(pids, strict ? 2 : 1);
    wl_wait_go();

    phase = 2;
    while (!seen[0] || !seen[1]) usleep(1000);
    if (!uname_filtered() || getpgrp_filtered()) wl_fail("main thread: uname filtered %d, getpgrp filtered %d (want 1, 0)", uname_filtered(), getpgrp_filtered());
    if (result[0] != 2) wl_fail("thread A: uname/getpgrp filtered %d (want uname only)", result[0]);
    if (result[1] != (own_filter ? 5 : 2)) wl_fail("thread B: uname EACCES/EPERM/getpgrp filtered %d (want %d)", result[1], own_filter ? 5 : 2);
    long r = install(SYS_getppid, EIO, SECCOMP_FILTER_FLAG_TSYNC);
    if (own_filter && r != tid[1]) wl_fail("F3 with TSYNC returned %ld, want thread B's tid %d", r, tid[1]);
    if (!own_filter && r != 0) wl_fail("F3 with TSYNC returned %ld (%s), want 0: the threads no longer share F1", r, r < 0 ? strerror(errno) : "a thread's tid");
    phase = 3;
    while (getppid_filtered[0] < 0 || getppid_filtered[1] < 0) usleep(1000);
    if (getppid_filtered[0] != !own_filter || getppid_filtered[1] != !own_filter)
        wl_fail("after F3: getppid filtered in A %d, B %d (want %d)", getppid_filtered[0], getppid_filtered[1], !own_filter);
    if (strict) {
        char x = 'a';
        if (write(to, &x, 1) != 1 || read(from, &x, 1) != 1 || x != 'b') wl_fail("strict child did not echo");
        int st = 0;
        if (waitpid(pids[1], &st, 0) != pids[1]) wl_fail("waitpid strict child: %s", strerror(errno));
        else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) wl_fail("strict child ended with 0x%x, want SIGKILL (strict mode lost?)", st);
    }
    wl_finish();
}
