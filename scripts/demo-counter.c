/* The demo's workload: a session leader with no terminal that appends an incrementing
 * counter to a file every 200 ms. Usage: demo-counter COUNT_FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s COUNT_FILE\n", argv[0]);
        return 2;
    }
    /* Its own session and no inherited descriptors: nothing outside the process to
     * checkpoint, so a plain `dump -t PID` needs no --shell-job. */
    if (setsid() < 0) {
        perror("setsid");
        return 1;
    }
    int out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDWR);
    if (out < 0 || null < 0) {
        perror("open");
        return 1;
    }
    dup2(null, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    closefrom(3);

    const struct timespec period = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
    for (unsigned long n = 1;; n++) {
        printf("%lu\n", n);
        fflush(stdout);
        nanosleep(&period, NULL);
    }
}
