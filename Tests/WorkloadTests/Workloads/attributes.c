/* attributes: per-task state that lives in the kernel and is set by prctl & co: an
 * interval ITIMER_REAL that keeps firing, child subreaper, dumpable, personality flags,
 * umask, a lowered RLIMIT_NOFILE, the thread name and nice value; and, in a child (the
 * root's own parent changes at restore), the pdeath signal. All must be the same after
 * restore, and the timer must still tick. */
#include "workload.h"
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;
static volatile int *child_pdeath;  /* shared: the child's answer, -1 until asked */
static void on_alarm(int sig) { (void)sig; ticks++; }

static void check(void)
{
    int v = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    if (v != 1) wl_fail("child subreaper %d, want 1", v);
    if (prctl(PR_GET_DUMPABLE) != 0) wl_fail("dumpable %d, want 0", prctl(PR_GET_DUMPABLE));
    int pers = personality(0xffffffff);
    if (!(pers & ADDR_NO_RANDOMIZE)) wl_fail("personality 0x%x lost ADDR_NO_RANDOMIZE", pers);
    mode_t m = umask(0);
    umask(m);
    if (m != 027) wl_fail("umask %o, want 027", m);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != 321) wl_fail("RLIMIT_NOFILE soft %lu, want 321", (unsigned long)rl.rlim_cur);
    char name[17] = {0};
    prctl(PR_GET_NAME, name);
    if (strcmp(name, "attr-worker") != 0) wl_fail("thread name '%s', want attr-worker", name);
    errno = 0;
    if (getpriority(PRIO_PROCESS, 0) != 7) wl_fail("nice %d, want 7", getpriority(PRIO_PROCESS, 0));
    struct itimerval it;
    getitimer(ITIMER_REAL, &it);
    if (it.it_interval.tv_sec != 0 || it.it_interval.tv_usec != 50000)
        wl_fail("itimer interval %ld.%06ld, want 0.050000", (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    signal(SIGALRM, on_alarm);
    struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    child_pdeath = wl_shared(sizeof(int) * 2);
    child_pdeath[0] = -1;
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGUSR2);
        while (child_pdeath[1] == 0) wl_sleep_ms(10);
        int sig = 0;
        prctl(PR_GET_PDEATHSIG, &sig);
        child_pdeath[0] = sig;
        _exit(0);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_DUMPABLE, 0);
    personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE);
    umask(027);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 321;
    setrlimit(RLIMIT_NOFILE, &rl);
    prctl(PR_SET_NAME, "attr-worker");
    setpriority(PRIO_PROCESS, 0, 7);
    check();
    if (wl_fail_msg[0]) wl_finish();
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    while (!wl_go()) wl_sleep_ms(10);
    check();
    child_pdeath[1] = 1;
    waitpid(child, NULL, 0);
    if (child_pdeath[0] != SIGUSR2) wl_fail("child's pdeath signal %d, want %d", child_pdeath[0], SIGUSR2);
    int before = ticks;
    wl_sleep_ms(300);
    if (ticks - before < 3) wl_fail("the interval timer stopped: %d ticks in 300 ms", ticks - before);
    wl_finish();
}
