/* Benchmark workload: N MiB of anonymous memory full of random bytes (nothing for a dump
 * to skip as zero or untouched). Usage: bench-mem MIB READY_FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MIB READY_FILE\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)strtoull(argv[1], NULL, 10) << 20;
    uint64_t *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    for (size_t i = 0; i < bytes / sizeof *memory; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memory[i] = x;
    }

    if (setsid() < 0) {
        perror("setsid");
        return 1;
    }
    int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    closefrom(3);

    int ready = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ready < 0)
        return 1;
    dprintf(ready, "%d\n", getpid());
    close(ready);

    for (;;)
        sleep(1);
}
