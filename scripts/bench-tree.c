/* Benchmark workload: a session leader with N sleeping children, to measure per-task
 * cost. Usage: bench-tree N READY_FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s N READY_FILE\n", argv[0]);
        return 2;
    }
    int children = atoi(argv[1]);
    if (setsid() < 0) {
        perror("setsid");
        return 1;
    }
    int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    closefrom(3);

    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            for (;;)
                sleep(1);
    }

    int ready = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ready < 0)
        return 1;
    dprintf(ready, "%d\n", getpid());
    close(ready);

    for (;;)
        sleep(1);
}
