/* signals: SIGUSR1 handler (SA_SIGINFO|SA_RESTART, sa_mask {SIGUSR2}), SIGUSR2 handler
 * (SA_ONSTACK) with a sigaltstack, SIGTERM ignored; SIGRTMIN+1 and SIGUSR2 blocked,
 * two SIGRTMIN+1 queued with values (111 thread-directed via rt_tgsigqueueinfo, 222
 * process-wide via sigqueue) and SIGUSR2 pending. After go: dispositions, altstack,
 * blocked and pending sets (thread and shared) unchanged; unblocking runs the handlers
 * with the right values, SIGUSR2's on the altstack. */
#include "workload.h"

#define ALT (64 * 1024)
static char *alt;
static volatile int rt_n, rt_val[8], rt_code[8], rt_pid[8];
static volatile int usr2_n, usr2_onstack, usr1_n, usr1_val, usr1_usr2_blocked, usr1_onstack;

static int on_alt(void *p) { return (char *)p >= alt && (char *)p < alt + ALT; }

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    char here;
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    usr1_usr2_blocked = sigismember(&m, SIGUSR2);
    usr1_val = si->si_value.sival_int;
    usr1_onstack = on_alt(&here);
    usr1_n++;
}

static void h_usr2(int sig)
{
    (void)sig;
    char here;
    stack_t ss;
    sigaltstack(NULL, &ss);
    usr2_onstack = on_alt(&here) && (ss.ss_flags & SS_ONSTACK);
    usr2_n++;
}

static void h_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    int i = rt_n;
    if (i < 8) { rt_val[i] = si->si_value.sival_int; rt_code[i] = si->si_code; rt_pid[i] = si->si_pid; }
    rt_n = i + 1;
}

static const int sigs[4] = { SIGUSR1, SIGUSR2, SIGTERM, 0 };
struct state {
    struct sigaction act[4];
    stack_t ss;
    sigset_t blocked, pending;
    char sigpnd[64], shdpnd[64];
};

static void status_line(const char *key, char *out)
{
    char buf[8192];
    FILE *f = fopen("/proc/self/status", "r");
    out[0] = 0;
    if (!f) return;
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, key, strlen(key)) == 0) { snprintf(out, 64, "%s", buf + strlen(key)); break; }
    fclose(f);
}

static void snapshot(struct state *s)
{
    for (int i = 0; i < 4; i++) sigaction(sigs[i] ? sigs[i] : SIGRTMIN + 1, NULL, &s->act[i]);
    sigaltstack(NULL, &s->ss);
    sigprocmask(SIG_BLOCK, NULL, &s->blocked);
    sigpending(&s->pending);
    status_line("SigPnd:", s->sigpnd);
    status_line("ShdPnd:", s->shdpnd);
}

static int same_set(const sigset_t *a, const sigset_t *b)
{
    for (int s = 1; s <= 64; s++)
        if (sigismember(a, s) != sigismember(b, s)) return s;
    return 0;
}

static void compare(const struct state *a, const struct state *b)
{
    for (int i = 0; i < 4; i++) {
        int sig = sigs[i] ? sigs[i] : SIGRTMIN + 1, d;
        if (a->act[i].sa_handler != b->act[i].sa_handler) wl_fail("signal %d: handler changed", sig);
        if (a->act[i].sa_flags != b->act[i].sa_flags)
            wl_fail("signal %d: sa_flags 0x%x != 0x%x", sig, b->act[i].sa_flags, a->act[i].sa_flags);
        if (a->act[i].sa_restorer != b->act[i].sa_restorer) wl_fail("signal %d: sa_restorer changed", sig);
        if ((d = same_set(&a->act[i].sa_mask, &b->act[i].sa_mask))) wl_fail("signal %d: sa_mask differs in signal %d", sig, d);
    }
    if (a->ss.ss_sp != b->ss.ss_sp || a->ss.ss_size != b->ss.ss_size || a->ss.ss_flags != b->ss.ss_flags)
        wl_fail("sigaltstack %p/%zu/%d != %p/%zu/%d", b->ss.ss_sp, b->ss.ss_size, b->ss.ss_flags,
                a->ss.ss_sp, a->ss.ss_size, a->ss.ss_flags);
    int d;
    if ((d = same_set(&a->blocked, &b->blocked))) wl_fail("blocked mask differs in signal %d", d);
    if ((d = same_set(&a->pending, &b->pending))) wl_fail("pending set differs in signal %d", d);
    if (strcmp(a->sigpnd, b->sigpnd)) wl_fail("thread pending SigPnd %.16s != %.16s", b->sigpnd, a->sigpnd);
    if (strcmp(a->shdpnd, b->shdpnd)) wl_fail("shared pending ShdPnd %.16s != %.16s", b->shdpnd, a->shdpnd);
}

typedef void (*handler_t)(int);
static void set_action(int sig, handler_t fn, int flags, int masked)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn; /* shares storage with sa_sigaction */
    sa.sa_flags = flags;
    if (masked) sigaddset(&sa.sa_mask, masked);
    sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    alt = mmap(NULL, ALT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss = { .ss_sp = alt, .ss_size = ALT, .ss_flags = 0 };
    if (alt == MAP_FAILED || sigaltstack(&ss, NULL) != 0) { perror("sigaltstack"); return 2; }
    set_action(SIGUSR1, (handler_t)h_usr1, SA_SIGINFO | SA_RESTART, SIGUSR2);
    set_action(SIGUSR2, h_usr2, SA_ONSTACK, 0);
    set_action(SIGTERM, SIG_IGN, 0, 0);
    set_action(SIGRTMIN + 1, (handler_t)h_rt, SA_SIGINFO, 0);

    sigset_t block;
    sigemptyset(&block); sigaddset(&block, SIGRTMIN + 1); sigaddset(&block, SIGUSR2);
    /* A blocked, pending SIGCONT: any SIGSTOP sent to us (as a dumper's batch could) drops it. */
    sigaddset(&block, SIGCONT);
    sigprocmask(SIG_BLOCK, &block, NULL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGRTMIN + 1; si.si_code = SI_QUEUE; si.si_pid = getpid(); si.si_uid = getuid();
    si.si_value.sival_int = 111;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGRTMIN + 1, &si) != 0) { perror("rt_tgsigqueueinfo"); return 2; }
    if (sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 222 }) != 0) { perror("sigqueue"); return 2; }
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGCONT);

    static struct state before, after;
    snapshot(&before);
    if (!sigismember(&before.pending, SIGUSR2) || !sigismember(&before.pending, SIGRTMIN + 1) || !sigismember(&before.pending, SIGCONT)) {
        wl_fail("setup: signals not pending"); wl_finish();
    }
    wl_ready();
    wl_wait_go();

    snapshot(&after);
    compare(&before, &after);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the pending handlers run here */
    if (rt_n != 2) wl_fail("SIGRTMIN+1 handler ran %d times, want 2", rt_n);
    else if (rt_val[0] != 111 || rt_val[1] != 222)
        wl_fail("SIGRTMIN+1 values %d,%d, want 111 (thread-directed) then 222 (process-wide)", rt_val[0], rt_val[1]);
    else if (rt_code[0] != SI_QUEUE || rt_code[1] != SI_QUEUE || rt_pid[0] != getpid() || rt_pid[1] != getpid())
        wl_fail("SIGRTMIN+1 siginfo: codes %d,%d pids %d,%d", rt_code[0], rt_code[1], rt_pid[0], rt_pid[1]);
    if (usr2_n != 1) wl_fail("SIGUSR2 handler ran %d times, want 1", usr2_n);
    else if (!usr2_onstack) wl_fail("SIGUSR2 handler did not run on the alternate stack");
    if (sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 333 }) != 0) wl_fail("sigqueue SIGUSR1: %s", strerror(errno));
    if (usr1_n != 1 || usr1_val != 333) wl_fail("SIGUSR1 handler: ran %d times, value %d", usr1_n, usr1_val);
    else if (!usr1_usr2_blocked) wl_fail("SIGUSR1 handler ran without SIGUSR2 blocked (sa_mask lost)");
    else if (usr1_onstack) wl_fail("SIGUSR1 handler ran on the alternate stack");
    kill(getpid(), SIGTERM); /* ignored: we live on */
    sigset_t pend;
    sigpending(&pend);
    if (sigismember(&pend, SIGTERM)) wl_fail("SIGTERM pending instead of ignored");
    wl_finish();
}
