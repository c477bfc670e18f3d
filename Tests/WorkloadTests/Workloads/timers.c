/* timers: POSIX timers on several clocks: a one-shot CLOCK_MONOTONIC timer 2.5 s out
 * (SIGRTMIN+1, value 0x1111), a periodic 50 ms CLOCK_REALTIME timer (SIGRTMIN+2), a
 * periodic 100 ms CLOCK_BOOTTIME timer aimed at a second thread (SIGEV_THREAD_ID,
 * SIGRTMIN+3), a CLOCK_MONOTONIC timer 10^6 s out (SIGUSR2), a disarmed SIGEV_NONE timer
 * on the process CPU clock. After go: /proc/self/timers reads as before (same ids,
 * signals, values, targets, clocks), intervals are kept, the far timer has what it had
 * left (the downtime does not count), the one-shot fires once when its remaining time
 * says, the periodic ones tick at their rate, the thread timer hits only its thread.
 * `DIR timens` does all this in a time namespace a day ahead of the host's. */
#include "workload.h"
#include <pthread.h>

static volatile int hits[4], wrong_value[4], wrong_thread, fired_oneshot;
static volatile double oneshot_at;
static volatile pid_t target_tid;
static timer_t t_one, t_per, t_thr, t_far, t_none;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int k = sig - SIGRTMIN;
    if (sig == SIGUSR2) k = 0;
    if (k < 1 || k > 3) return;
    /* a late handler (a busy machine) sees the expirations it missed as overruns */
    hits[k] += 1 + si->si_overrun;
    uintptr_t want[4] = { 0, 0x1111, 0x2222, 0x3333 };
    if ((uintptr_t)si->si_value.sival_ptr != want[k] || si->si_code != SI_TIMER) wrong_value[k]++;
    if (k == 1) { fired_oneshot++; oneshot_at = wl_now(); }
    if (k == 3 && gettid() != target_tid) wrong_thread++;
}

static void *second(void *arg)
{
    (void)arg;
    target_tid = gettid();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 3);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    for (;;) pause();
    return NULL;
}

static timer_t make(clockid_t clock, int notify, int sig, uintptr_t value, pid_t tid)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = notify;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_ptr = (void *)value;
    if (notify == SIGEV_THREAD_ID) ev._sigev_un._tid = tid;
    timer_t t;
    if (timer_create(clock, &ev, &t) != 0) { perror("timer_create"); exit(2); }
    return t;
}

static void arm(timer_t t, double value, double interval)
{
    struct itimerspec its = { { (time_t)interval, (long)((interval - (time_t)interval) * 1e9) },
                              { (time_t)value, (long)((value - (time_t)value) * 1e9) } };
    if (timer_settime(t, 0, &its, NULL) != 0) { perror("timer_settime"); exit(2); }
}

static double left(timer_t t, double *interval)
{
    struct itimerspec its;
    if (timer_gettime(t, &its) != 0) { wl_fail("timer_gettime: %s", strerror(errno)); return -1; }
    if (interval) *interval = its.it_interval.tv_sec + its.it_interval.tv_nsec / 1e9;
    return its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
}

static void read_timers(char *buf, size_t size)
{
    int fd = open("/proc/self/timers", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
    buf[n < 0 ? 0 : n] = 0;
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (argc >= 3 && strcmp(argv[2], "timens") == 0 && now.tv_sec < 86400) {
        /* offsets only before the namespace's first task: exec moves us into it */
        if (syscall(SYS_unshare, 0x80 /* CLONE_NEWTIME */) != 0) { perror("unshare time"); return 2; }
        int fd = open("/proc/self/timens_offsets", O_WRONLY);
        const char *offsets = "monotonic 86400 0\nboottime 86400 0\n";
        if (fd < 0 || write(fd, offsets, strlen(offsets)) < 0) { perror("timens_offsets"); return 2; }
        close(fd);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 2;
    }
    wl_init(argc, argv);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    for (int k = 1; k <= 3; k++) sigaction(SIGRTMIN + k, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    /* only the second thread takes the thread-directed signal */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 3);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t th;
    pthread_create(&th, NULL, second, NULL);
    while (!target_tid) wl_sleep_ms(1);

    t_one = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0x1111, 0);
    t_per = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN + 2, 0x2222, 0);
    t_thr = make(CLOCK_BOOTTIME, SIGEV_THREAD_ID, SIGRTMIN + 3, 0x3333, target_tid);
    t_far = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR2, 0x4444, 0);
    t_none = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, 0, 0);
    double armed = wl_now();
    arm(t_one, 2.5, 0);
    arm(t_per, 0.05, 0.05);
    arm(t_thr, 0.1, 0.1);
    arm(t_far, 1e6, 0);
    char before[4096], after[4096];
    read_timers(before, sizeof before);
    wl_ready();
    wl_wait_go();

    read_timers(after, sizeof after);
    if (strcmp(before, after) != 0) wl_fail("/proc/self/timers was:\n%s\nis:\n%s", before, after);
    double iv;
    double far = left(t_far, &iv);
    double since = wl_now() - armed;
    if (far > 1e6 || far < 1e6 - since - 1) wl_fail("far timer has %.3f s left, %.3f s after arming 10^6 s", far, since);
    if (left(t_per, &iv) >= 0 && (iv < 0.0499 || iv > 0.0501)) wl_fail("periodic timer interval %.6f", iv);
    if (left(t_thr, &iv) >= 0 && (iv < 0.0999 || iv > 0.1001)) wl_fail("thread timer interval %.6f", iv);
    if (left(t_none, &iv) != 0 || iv != 0) wl_fail("SIGEV_NONE timer is armed");
    /* the one-shot: fires once, when its remaining time said */
    double rest = left(t_one, NULL), asked = wl_now();
    if (!fired_oneshot && rest <= 0) wl_fail("one-shot timer neither fired nor armed");
    if (!fired_oneshot) {
        while (!fired_oneshot && wl_now() < asked + rest + 2) wl_sleep_ms(5);
        if (!fired_oneshot) wl_fail("one-shot timer did not fire %.3f s after its %.3f s left", wl_now() - asked, rest);
        else if (oneshot_at < asked + rest - 0.005 || oneshot_at > asked + rest + 1.0)
            wl_fail("one-shot timer fired %.3f s after go, its remaining time was %.3f s", oneshot_at - asked, rest);
    }
    if (oneshot_at - armed < 2.5 - 0.005) wl_fail("one-shot timer fired %.3f s after arming, before its 2.5 s", oneshot_at - armed);
    int p0 = hits[2], t0 = hits[3];
    double start = wl_now();
    wl_sleep_ms(1000);
    double took = wl_now() - start;
    int p = hits[2] - p0, t = hits[3] - t0;
    if (p < (int)(took / 0.05) - 4 || p > (int)(took / 0.05) + 2) wl_fail("periodic timer ticked %d times in %.3f s (50 ms)", p, took);
    if (t < (int)(took / 0.1) - 3 || t > (int)(took / 0.1) + 2) wl_fail("thread timer ticked %d times in %.3f s (100 ms)", t, took);
    if (fired_oneshot != 1) wl_fail("one-shot timer fired %d times", fired_oneshot);
    if (hits[0]) wl_fail("far timer fired");
    for (int k = 1; k <= 3; k++) if (wrong_value[k]) wl_fail("timer %d: %d signals with the wrong value or code", k, wrong_value[k]);
    if (wrong_thread) wl_fail("thread timer hit another thread %d times", wrong_thread);
    wl_finish();
}
