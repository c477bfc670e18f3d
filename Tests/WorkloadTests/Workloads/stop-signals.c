/* stop-signals: what a parent's wait sees of its stopped and dead children.
 * Stopped: by SIGSTOP (with a second thread), SIGTSTP, SIGTTIN, SIGTTOU (each child in a
 * process group of its own, so the group is not orphaned and the tty signals stop it),
 * and one stopped by SIGSTOP with a SIGTRAP pending for its handler.
 * Zombies: exit(42), killed by SIGTERM, by SIGPIPE, by SIGQUIT with a core dumped.
 * Before ready the parent notes every status with waitid(WNOWAIT); after go, waitpid
 * must report the same: stop signal, exit code, killing signal and core flag. */
#include "workload.h"
#include <pthread.h>
#include <sys/resource.h>

enum { NSTOP = 5, NZOMBIE = 4 };
static const int stop_sig[NSTOP] = { SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP };
struct shm { volatile int continued[NSTOP]; volatile int trapped; } *sh;

static void on_trap(int sig) { (void)sig; sh->trapped = 1; }
static void *idle(void *arg) { (void)arg; for (;;) pause(); return NULL; }

static pid_t stopped_child(int i)
{
    pid_t c = fork();
    if (c != 0) return c;
    setpgid(0, 0);
    if (i == 0) { pthread_t t; pthread_create(&t, NULL, idle, NULL); }
    if (i == 4) signal(SIGTRAP, on_trap);
    raise(stop_sig[i]);
    sh->continued[i] = 1;
    _exit(10 + i);
}

static pid_t zombie_child(int i)
{
    pid_t c = fork();
    if (c != 0) return c;
    if (i == 0) _exit(42);
    if (i == 3) {
        struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
        setrlimit(RLIMIT_CORE, &rl);
    }
    int sig = i == 1 ? SIGTERM : i == 2 ? SIGPIPE : SIGQUIT;
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(99);
}

/* waitpid-style status of a child that waitid reports without consuming it. */
static int peek_status(pid_t c, int stopped)
{
    siginfo_t si = { 0 };
    if (waitid(P_PID, c, &si, (stopped ? WSTOPPED : WEXITED) | WNOWAIT) != 0) return -1;
    switch (si.si_code) {
    case CLD_EXITED: return (si.si_status & 0xff) << 8;
    case CLD_KILLED: return si.si_status;
    case CLD_DUMPED: return si.si_status | 0x80;
    case CLD_STOPPED: return (si.si_status << 8) | 0x7f;
    }
    return -2;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    sh = wl_shared(sizeof *sh);
    pid_t stop[NSTOP], zomb[NZOMBIE];
    int want_stop[NSTOP], want_zomb[NZOMBIE];
    for (int i = 0; i < NSTOP; i++) stop[i] = stopped_child(i);
    for (int i = 0; i < NZOMBIE; i++) zomb[i] = zombie_child(i);
    double deadline = wl_now() + 15;
    for (int i = 0; i < NSTOP; i++)
        while (wl_proc_state(stop[i]) != 'T')
            if (wl_now() > deadline) { wl_fail("child %d never stopped", i); wl_finish(); } else wl_sleep_ms(2);
    for (int i = 0; i < NZOMBIE; i++)
        while (wl_proc_state(zomb[i]) != 'Z')
            if (wl_now() > deadline) { wl_fail("zombie %d never died", i); wl_finish(); } else wl_sleep_ms(2);
    kill(stop[4], SIGTRAP);
    for (int i = 0; i < NSTOP; i++) {
        want_stop[i] = peek_status(stop[i], 1);
        if (want_stop[i] != ((stop_sig[i] << 8) | 0x7f)) { wl_fail("child %d stop status 0x%x before the dump", i, want_stop[i]); wl_finish(); }
    }
    for (int i = 0; i < NZOMBIE; i++) want_zomb[i] = peek_status(zomb[i], 0);
    if (!(want_zomb[3] & 0x80)) { wl_fail("no core dumped by SIGQUIT (status 0x%x): core_pattern?", want_zomb[3]); wl_finish(); }
    unlink("core");

    pid_t pids[1 + NSTOP + NZOMBIE];
    pids[0] = getpid();
    for (int i = 0; i < NSTOP; i++) pids[1 + i] = stop[i];
    for (int i = 0; i < NZOMBIE; i++) pids[1 + NSTOP + i] = zomb[i];
    wl_ready_pids(pids, 1 + NSTOP + NZOMBIE);
    wl_wait_go();

    for (int i = 0; i < NSTOP; i++) {
        int st = 0;
        if (sh->continued[i]) wl_fail("child %d ran before SIGCONT", i);
        if (waitpid(stop[i], &st, WUNTRACED | WNOHANG) != stop[i]) wl_fail("child %d: no stop to report (state '%c')", i, wl_proc_state(stop[i]));
        else if (st != want_stop[i]) wl_fail("child %d reports stop status 0x%x, want 0x%x", i, st, want_stop[i]);
        kill(stop[i], SIGCONT);
    }
    for (int i = 0; i < NSTOP; i++) {
        int st = 0;
        if (waitpid(stop[i], &st, 0) != stop[i]) wl_fail("waitpid(child %d): %s", i, strerror(errno));
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 10 + i) wl_fail("child %d ended with 0x%x", i, st);
    }
    if (!sh->trapped) wl_fail("the SIGTRAP pending in the stopped child never reached its handler");
    for (int i = 0; i < NZOMBIE; i++) {
        int st = 0;
        if (waitpid(zomb[i], &st, WNOHANG) != zomb[i]) wl_fail("zombie %d not reaped at once: %s", i, strerror(errno));
        else if (st != want_zomb[i]) wl_fail("zombie %d status 0x%x, want 0x%x", i, st, want_zomb[i]);
    }
    unlink("core");
    wl_finish();
}
