/* timerfd: a periodic CLOCK_MONOTONIC timer (first expiry 100 ms, then every 150 ms); a
 * CLOCK_REALTIME TFD_TIMER_ABSTIME one-shot an hour ahead; a CLOCK_BOOTTIME one-shot that
 * expired before the dump and was not read (1 tick waiting); a CLOCK_MONOTONIC one-shot
 * 2 s after ready. After go: the interval is still 150 ms and ticks keep coming 150 ms
 * apart; the absolute one still has about an hour left; the expired one holds its tick;
 * the 2 s one fires, and never before its time. */
#include "workload.h"
#include <sys/timerfd.h>

static double ts(struct timespec t) { return (double)t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int periodic = timerfd_create(CLOCK_MONOTONIC, 0);
    int absolute = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    int expired = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    int later = timerfd_create(CLOCK_MONOTONIC, 0);
    if (periodic < 0 || absolute < 0 || expired < 0 || later < 0) { perror("timerfd_create"); return 2; }
    struct itimerspec p = { { 0, 150000000 }, { 0, 100000000 } };
    timerfd_settime(periodic, 0, &p, NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec a = { { 0, 0 }, { now.tv_sec + 3600, now.tv_nsec } };
    timerfd_settime(absolute, TFD_TIMER_ABSTIME, &a, NULL);
    struct itimerspec e = { { 0, 0 }, { 0, 1000000 } };
    timerfd_settime(expired, 0, &e, NULL);
    wl_sleep_ms(20);
    struct itimerspec l = { { 0, 0 }, { 2, 0 } };
    double armed = wl_now();
    timerfd_settime(later, 0, &l, NULL);
    wl_ready();
    wl_wait_go();

    struct itimerspec cur;
    timerfd_gettime(periodic, &cur);
    if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_nsec != 150000000) wl_fail("periodic interval is %.9f s", ts(cur.it_interval));
    if (ts(cur.it_value) <= 0 || ts(cur.it_value) > 0.15) wl_fail("periodic timer has %.9f s left", ts(cur.it_value));
    uint64_t n = 0;
    if (read(periodic, &n, 8) != 8 || n < 1) wl_fail("periodic timer read %llu ticks", (unsigned long long)n);
    read(periodic, &n, 8);  /* in step with the ticks */
    double t0 = wl_now();
    for (int i = 0; i < 3; i++) read(periodic, &n, 8);
    double per = (wl_now() - t0) / 3;
    if (per < 0.14 || per > 0.2) wl_fail("periodic ticks come %.3f s apart, want 0.150", per);

    timerfd_gettime(absolute, &cur);
    if (ts(cur.it_value) < 3600 - 120 || ts(cur.it_value) > 3600) wl_fail("absolute timer has %.3f s left, want about 3600", ts(cur.it_value));
    if (cur.it_interval.tv_sec || cur.it_interval.tv_nsec) wl_fail("absolute timer gained an interval");
    if (read(absolute, &n, 8) != -1 || errno != EAGAIN) wl_fail("absolute timer fired (or lost O_NONBLOCK)");

    if (read(expired, &n, 8) != 8 || n != 1) wl_fail("expired timer holds %llu unread ticks, want 1 (%s)", (unsigned long long)n, strerror(errno));

    if (read(later, &n, 8) != 8 || n != 1) wl_fail("2 s timer read %llu", (unsigned long long)n);
    double fired = wl_now() - armed;
    if (fired < 2.0) wl_fail("2 s timer fired after %.3f s", fired);
    if (fired > 60) wl_fail("2 s timer fired only after %.3f s", fired);
    wl_finish();
}
