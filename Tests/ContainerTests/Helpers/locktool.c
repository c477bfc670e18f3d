/* locktool FLOCKFILE POSIXFILE PROG ARGS...: takes a flock write lock on FLOCKFILE (fd 3)
 * and a POSIX write lock on bytes 0-9 of POSIXFILE (fd 4), then execs PROG with both fds
 * (and their locks) kept. Built static for busybox containers, which have no flock. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: locktool FLOCKFILE POSIXFILE PROG ARGS...\n"); return 2; }
    int a = open(argv[1], O_RDWR | O_CREAT, 0644), b = open(argv[2], O_RDWR | O_CREAT, 0644);
    if (a < 0 || b < 0 || dup2(a, 3) != 3 || dup2(b, 4) != 4) { perror("locktool: open"); return 2; }
    if (a != 3) close(a);
    if (b != 4) close(b);
    struct flock f = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
    if (flock(3, LOCK_EX | LOCK_NB) != 0 || fcntl(4, F_SETLK, &f) != 0) { perror("locktool: lock"); return 2; }
    execvp(argv[3], argv + 3);
    perror("locktool: exec");
    return 2;
}
