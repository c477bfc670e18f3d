/* timens: runs inside a time namespace whose CLOCK_MONOTONIC and CLOCK_BOOTTIME are a
 * day ahead of the host's (it makes one and re-execs into it, keeping its pid). After restore both clocks must continue
 * from where they were: never backwards, and not more than the checkpoint's duration
 * forward (generously: 10 minutes). */
#include "workload.h"

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (clock_s(CLOCK_MONOTONIC) < 86400) {
        /* Offsets can be written only before the namespace's first task; execve then
           moves us into it (time_for_children). */
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
    double mono = clock_s(CLOCK_MONOTONIC), boot = clock_s(CLOCK_BOOTTIME);
    if (mono < 86400) { wl_fail("not in the test's time namespace: monotonic %.0f s", mono); wl_finish(); }
    wl_ready();
    while (!wl_go()) {
        double m = clock_s(CLOCK_MONOTONIC), b = clock_s(CLOCK_BOOTTIME);
        if (m < mono || b < boot) break;
        mono = m; boot = b;
        wl_sleep_ms(10);
    }
    double m = clock_s(CLOCK_MONOTONIC), b = clock_s(CLOCK_BOOTTIME);
    if (m < mono) wl_fail("CLOCK_MONOTONIC went back from %.3f to %.3f", mono, m);
    if (b < boot) wl_fail("CLOCK_BOOTTIME went back from %.3f to %.3f", boot, b);
    if (m > mono + 600) wl_fail("CLOCK_MONOTONIC jumped from %.3f to %.3f", mono, m);
    wl_finish();
}
