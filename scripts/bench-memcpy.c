/* The machine's memcpy bandwidth for a byte count: the floor a dump or restore of that many
 * page bytes could reach. Both buffers are written first (warm, no page faults in the
 * timed copy); the best of three copies is printed as "GB/s seconds".
 * Usage: bench-memcpy MIB */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MIB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)strtoull(argv[1], NULL, 10) << 20;
    char *from = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *to = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (from == MAP_FAILED || to == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(from, 0x5a, bytes);
    memset(to, 0xa5, bytes);
    double best = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        memcpy(to, from, bytes);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    /* a use of the copy, so the compiler keeps it */
    if (to[bytes - 1] != from[bytes - 1])
        return 1;
    printf("%.2f %.4f\n", bytes / best / 1e9, best);
    return 0;
}
