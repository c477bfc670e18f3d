/* Live-migration workload: N MiB of anonymous memory full of random bytes, then rewrites
 * whole pages picked at random, RATE MiB/s (0: as fast as it can). After each round of
 * writes it stores "ROUNDS PAGES NOW_NS" (CLOCK_REALTIME) at the start of READY_FILE.report,
 * so a watcher measures its write rate, and the first moment it runs after a restore.
 * Usage: bench-live MIB,RATE READY_FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
/* Rounds of writes a second at the paced rate; a report after each. */
#define ROUNDS_PER_S 100

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int main(int argc, char **argv)
{
    char *rest;
    if (argc != 3 || !(rest = strchr(argv[1], ','))) {
        fprintf(stderr, "usage: %s MIB,RATE READY_FILE\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)strtoull(argv[1], NULL, 10) << 20;
    uint64_t rate = strtoull(rest + 1, NULL, 10);
    char report_path[4096];
    snprintf(report_path, sizeof report_path, "%s.report", argv[2]);
    size_t pages = bytes / PAGE;
    uint64_t *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    for (size_t i = 0; i < bytes / sizeof *memory; i++)
        memory[i] = next(&x);

    if (setsid() < 0) {
        perror("setsid");
        return 1;
    }
    int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    closefrom(3);

    int report = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ready = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (report < 0 || ready < 0)
        return 1;
    dprintf(ready, "%d\n", getpid());
    close(ready);

    /* Paced: RATE MiB/s in ROUNDS_PER_S rounds a second, on the monotonic clock (a round
     * missed while frozen is not made up). Unpaced: rounds of 256 pages back to back. */
    uint64_t per_round = rate ? (rate << 20) / PAGE / ROUNDS_PER_S : 256;
    uint64_t period = 1000000000ull / ROUNDS_PER_S, due = now_ns(CLOCK_MONOTONIC);
    uint64_t rounds = 0, written = 0;
    for (;;) {
        for (uint64_t i = 0; i < per_round; i++) {
            uint64_t *page = memory + (next(&x) % pages) * (PAGE / sizeof *memory);
            for (size_t w = 0; w < PAGE / sizeof *memory; w++)
                page[w] = x + w;
        }
        written += per_round;
        rounds++;
        char line[64];
        int n = snprintf(line, sizeof line, "%llu %llu %llu\n", (unsigned long long)rounds,
                         (unsigned long long)written, (unsigned long long)now_ns(CLOCK_REALTIME));
        memset(line + n, ' ', sizeof line - n - 1);
        line[sizeof line - 1] = '\n';
        if (pwrite(report, line, sizeof line, 0) != sizeof line)
            return 1;
        if (!rate)
            continue;
        due += period;
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (due > t) {
            struct timespec ts = { (time_t)((due - t) / 1000000000ull), (long)((due - t) % 1000000000ull) };
            nanosleep(&ts, NULL);
        } else {
            due = t;
        }
    }
}
