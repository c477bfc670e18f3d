/* vdso: a program that moved its vdso and vvar elsewhere with mremap (argv[2] "moved",
 * keeping their order and distance, as CRIU's restorer does) or unmapped them
 * ("unmapped"). The special areas must be where they were after restore (or absent).
 * glibc's vdso pointers are stale after a move, so only raw syscalls tell the time.
 * "calls": nothing moves; after go glibc's clock_gettime and gettimeofday (through the
 * vdso it found at start) must agree with the syscalls, whatever vdso is behind them. */
#include "workload.h"
#include <sys/time.h>

struct special { unsigned long start, end; char name[32]; };

static int specials(struct special *out, int max)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f) && n < max) {
        unsigned long a, b;
        char *name = strchr(line, '[');
        if (!name || sscanf(line, "%lx-%lx", &a, &b) != 2) continue;
        name[strcspn(name, "\n")] = 0;
        if (strcmp(name, "[vdso]") && strncmp(name, "[vvar", 5)) continue;
        out[n].start = a; out[n].end = b;
        snprintf(out[n].name, sizeof out[n].name, "%s", name);
        n++;
    }
    if (f) fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    const char *how = argc > 2 ? argv[2] : "moved";
    struct special before[8], after[8];
    int n = specials(before, 8);
    if (n == 0) { fprintf(stderr, "no vdso\n"); return 2; }
    unsigned long low = before[0].start, high = before[n - 1].end;
    if (strcmp(how, "calls") == 0) {
        wl_ready();
        wl_wait_go();
        for (int i = 0; i < 1000; i++) {
            struct timespec a, b, c;
            syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
            if (clock_gettime(CLOCK_MONOTONIC, &b) != 0) { wl_fail("clock_gettime failed"); break; }
            syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &c);
            double ta = a.tv_sec + a.tv_nsec / 1e9, tb = b.tv_sec + b.tv_nsec / 1e9, tc = c.tv_sec + c.tv_nsec / 1e9;
            if (tb < ta || tb > tc) { wl_fail("vdso clock_gettime %.9f outside the syscall's %.9f..%.9f", tb, ta, tc); break; }
            struct timeval tv;
            struct timespec r;
            gettimeofday(&tv, NULL);
            syscall(SYS_clock_gettime, CLOCK_REALTIME, &r);
            if (tv.tv_sec > r.tv_sec || r.tv_sec - tv.tv_sec > 1) { wl_fail("gettimeofday %ld, realtime %ld", (long)tv.tv_sec, (long)r.tv_sec); break; }
        }
        wl_finish();
    }
    if (strcmp(how, "unmapped") == 0) {
        if (munmap((void *)low, high - low) != 0) { perror("munmap vdso"); return 2; }
    } else {
        /* a free place 64 MiB below the lowest mapping of the area's neighbourhood */
        char *hole = mmap(NULL, (high - low) + (64UL << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (hole == MAP_FAILED) { perror("mmap"); return 2; }
        munmap(hole, (high - low) + (64UL << 20));
        unsigned long to = ((unsigned long)hole + (32UL << 20)) & ~0xfffUL;
        for (int i = 0; i < n; i++) {
            void *got = mremap((void *)before[i].start, before[i].end - before[i].start, before[i].end - before[i].start,
                               MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(to + before[i].start - low));
            if (got == MAP_FAILED) { perror("mremap vdso"); return 2; }
        }
    }
    n = specials(before, 8);
    wl_ready();
    wl_wait_go();
    int m = specials(after, 8);
    if (m != n) wl_fail("%d special areas, were %d (%s)", m, n, how);
    for (int i = 0; i < n && i < m; i++)
        if (before[i].start != after[i].start || before[i].end != after[i].end || strcmp(before[i].name, after[i].name))
            wl_fail("%s at %lx-%lx, was %s at %lx-%lx", after[i].name, after[i].start, after[i].end, before[i].name, before[i].start, before[i].end);
    struct timespec ts;
    if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) wl_fail("clock_gettime");
    wl_finish();
}
