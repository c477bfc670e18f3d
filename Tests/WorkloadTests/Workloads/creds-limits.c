/* creds-limits: credentials per thread and rlimits of a process that left root.
 * Root process: thread T switches to uids 1001/1002/1003 with the raw setresuid syscall
 * (that thread only), thread K drops CAP_NET_RAW and CAP_SYS_TIME from its effective and
 * permitted sets with raw capset (that thread only); main keeps root. RLIMIT_NOFILE is
 * 500/600. Child U: RLIMIT_MEMLOCK 256 KiB, locks 64 KiB with mlock, RLIMIT_CORE 0/1234,
 * then setresuid/setresgid to 65534 (dropping every capability) and sets itself
 * dumpable again. The main thread sets SECBIT_NO_SETUID_FIXUP (securebits are per thread).
 * After go each thread and U check everything is as it was, keep-caps off included. */
#include "workload.h"
#include <linux/capability.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static volatile int phase, ready_threads;
static int ready_fd;
static char fail_t[256], fail_k[256];

static void uids(uid_t *r, uid_t *e, uid_t *s) { syscall(SYS_getresuid, r, e, s); }

static int caps(uint32_t *eff, uint32_t *prm)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return -1;
    *eff = d[0].effective; *prm = d[0].permitted;
    return 0;
}

static void *thread_t(void *arg)
{
    (void)arg;
    if (syscall(SYS_setresuid, 1001, 1002, 1003) != 0) snprintf(fail_t, sizeof fail_t, "setresuid: %s", strerror(errno));
    __sync_fetch_and_add(&ready_threads, 1);
    while (phase < 1) usleep(1000);
    uid_t r, e, s;
    uids(&r, &e, &s);
    if (r != 1001 || e != 1002 || s != 1003) snprintf(fail_t, sizeof fail_t, "thread T uids %d/%d/%d, want 1001/1002/1003", r, e, s);
    else if (prctl(PR_GET_KEEPCAPS) != 0) snprintf(fail_t, sizeof fail_t, "thread T has keep-caps set");
    __sync_fetch_and_add(&ready_threads, 1);
    for (;;) pause();
    return NULL;
}

static const uint32_t dropped = (1u << CAP_NET_RAW) | (1u << CAP_SYS_TIME);

static void *thread_k(void *arg)
{
    (void)arg;
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~dropped; d[0].permitted &= ~dropped;
    if (syscall(SYS_capset, &h, d) != 0) snprintf(fail_k, sizeof fail_k, "capset: %s", strerror(errno));
    __sync_fetch_and_add(&ready_threads, 1);
    while (phase < 1) usleep(1000);
    uint32_t eff, prm;
    if (caps(&eff, &prm) != 0 || (eff & dropped) || (prm & dropped) || !(eff & (1u << CAP_SYS_ADMIN)))
        snprintf(fail_k, sizeof fail_k, "thread K caps eff %x prm %x: want NET_RAW, SYS_TIME dropped, SYS_ADMIN kept", eff, prm);
    __sync_fetch_and_add(&ready_threads, 1);
    for (;;) pause();
    return NULL;
}

static int limit_is(int res, rlim_t cur, rlim_t max)
{
    struct rlimit rl;
    return getrlimit(res, &rl) == 0 && rl.rlim_cur == cur && rl.rlim_max == max;
}

static long vmlck_kb(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "VmLck:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

static int child_u(void)
{
    struct rlimit ml = { 256 << 10, 256 << 10 }, core = { 0, 1234 };
    char *buf = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(buf, 0x5a, 64 << 10);
    if (setrlimit(RLIMIT_MEMLOCK, &ml) || setrlimit(RLIMIT_CORE, &core) || mlock(buf, 64 << 10)) { perror("limits"); return 2; }
    long locked = vmlck_kb();
    if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) { perror("setresuid"); return 2; }
    prctl(PR_SET_DUMPABLE, 1);
    /* The ready mark is a pipe byte: U cannot write in DIR any more. */
    if (write(ready_fd, "u", 1) != 1) return 2;
    while (!wl_go()) wl_sleep_ms(10);
    char fail[512] = "";
    uid_t r, e, s;
    uids(&r, &e, &s);
    if (r != 65534 || e != 65534 || s != 65534) snprintf(fail, sizeof fail, "U uids %d/%d/%d", r, e, s);
    else if (getgid() != 65534 || getegid() != 65534) snprintf(fail, sizeof fail, "U gids %d/%d", getgid(), getegid());
    else if (!limit_is(RLIMIT_MEMLOCK, 256 << 10, 256 << 10) || !limit_is(RLIMIT_CORE, 0, 1234)) snprintf(fail, sizeof fail, "U rlimits changed");
    else if (vmlck_kb() != locked || locked < 64) snprintf(fail, sizeof fail, "U VmLck %ld kB, was %ld kB", vmlck_kb(), locked);
    else if (prctl(PR_GET_DUMPABLE) != 1) snprintf(fail, sizeof fail, "U dumpable %d, want 1", prctl(PR_GET_DUMPABLE));
    else if (prctl(PR_GET_KEEPCAPS) != 0) snprintf(fail, sizeof fail, "U has keep-caps set");
    for (int i = 0; !fail[0] && i < 64 << 10; i++) if (buf[i] != 0x5a) snprintf(fail, sizeof fail, "U locked memory changed at %d", i);
    uint32_t eff = 1, prm = 1;
    if (!fail[0] && (caps(&eff, &prm) != 0 || eff || prm)) snprintf(fail, sizeof fail, "U caps eff %x prm %x, want none", eff, prm);
    /* u-result is written by the root (U cannot write in DIR now): exit code says it. */
    if (fail[0]) fprintf(stderr, "%s\n", fail);
    return fail[0] ? 1 : 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct rlimit nofile = { 500, 600 };
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) { perror("nofile"); return 2; }
    int p[2];
    if (pipe(p)) { perror("pipe"); return 2; }
    ready_fd = p[1];
    pid_t u = fork();
    if (u == 0) _exit(child_u());
    close(p[1]);
    pthread_t t, k;
    pthread_create(&t, NULL, thread_t, NULL);
    pthread_create(&k, NULL, thread_k, NULL);
    double deadline = wl_now() + 10;
    char mark = 0;
    if (read(p[0], &mark, 1) != 1) { wl_fail("U did not get ready"); wl_finish(); }
    while (ready_threads < 2 && wl_now() < deadline) wl_sleep_ms(2);
    if (fail_t[0] || fail_k[0] || ready_threads < 2) { wl_fail("before: %s %s", fail_t, fail_k); kill(u, SIGKILL); wl_finish(); }
    /* Securebits are per thread: the main thread's only. */
    if (prctl(PR_SET_SECUREBITS, 1 << 2 /* SECBIT_NO_SETUID_FIXUP */) != 0) { wl_fail("securebits: %s", strerror(errno)); wl_finish(); }
    pid_t pids[2] = { getpid(), u };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    phase = 1;
    while (ready_threads < 4) usleep(1000);
    if (fail_t[0]) wl_fail("%s", fail_t);
    if (fail_k[0]) wl_fail("%s", fail_k);
    uid_t r, e, s;
    uids(&r, &e, &s);
    if (r || e || s) wl_fail("main thread uids %d/%d/%d, want root", r, e, s);
    if (prctl(PR_GET_SECUREBITS) != 1 << 2) wl_fail("main thread securebits 0x%x, want 0x4", prctl(PR_GET_SECUREBITS));
    if (!limit_is(RLIMIT_NOFILE, 500, 600)) wl_fail("RLIMIT_NOFILE changed");
    int status = 0;
    if (waitpid(u, &status, 0) != u) wl_fail("waitpid U: %s", strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) wl_fail("U ended with 0x%x (its stderr is in DIR/out)", status);
    wl_finish();
}
