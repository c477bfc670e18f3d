/* pidfd-dead: pidfds of a child that has exited and been reaped (one blocking, one
 * PIDFD_NONBLOCK), beside O_PATH fds: of a symlink itself (O_NOFOLLOW), of its target,
 * of DIR. After go: the pidfds still name a reaped process (fdinfo Pid -1, readable,
 * pidfd_send_signal ESRCH, waitid ECHILD), the flags are the same; the O_PATH fds are
 * the same inodes, the symlink one still reads as the link. */
#include "workload.h"
#include <poll.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int fdinfo_pid(int fd)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY);
    ssize_t n = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0) close(f);
    if (n <= 0) return -100;
    buf[n] = 0;
    char *p = strstr(buf, "\nPid:");
    return p ? atoi(p + 5) : -100;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    pid_t child = fork();
    if (child == 0) _exit(7);
    int pf = (int)syscall(SYS_pidfd_open, child, 0);
    int pn = (int)syscall(SYS_pidfd_open, child, PIDFD_NONBLOCK);
    if (pf < 0 || pn < 0) { perror("pidfd_open"); return 2; }
    waitpid(child, NULL, 0);
    unlink("lnk"); unlink("target");
    close(open("target", O_CREAT | O_WRONLY, 0600));
    if (symlink("target", "lnk") != 0) { perror("symlink"); return 2; }
    int ol = open("lnk", O_PATH | O_NOFOLLOW), ot = open("lnk", O_PATH), od = open(".", O_PATH | O_DIRECTORY);
    if (ol < 0 || ot < 0 || od < 0) { perror("O_PATH"); return 2; }
    int fl[5] = { fcntl(pf, F_GETFL), fcntl(pn, F_GETFL), fcntl(ol, F_GETFL), fcntl(ot, F_GETFL), fcntl(od, F_GETFL) };
    int fds[5] = { pf, pn, ol, ot, od };
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < 5; i++)
        if (fcntl(fds[i], F_GETFL) != fl[i]) wl_fail("fd %d: F_GETFL 0%o, want 0%o", fds[i], fcntl(fds[i], F_GETFL), fl[i]);
    for (int i = 0; i < 2; i++) {
        if (fdinfo_pid(fds[i]) != -1) wl_fail("pidfd %d: fdinfo Pid %d, want -1", fds[i], fdinfo_pid(fds[i]));
        struct pollfd p = { fds[i], POLLIN, 0 };
        if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) wl_fail("pidfd %d: not readable", fds[i]);
        if (syscall(SYS_pidfd_send_signal, fds[i], SIGTERM, NULL, 0) != -1 || errno != ESRCH) wl_fail("pidfd %d: signal did not fail with ESRCH", fds[i]);
        siginfo_t si;
        if (waitid(P_PIDFD, (id_t)fds[i], &si, WEXITED | WNOHANG) != -1 || errno != ECHILD) wl_fail("pidfd %d: waitid did not fail with ECHILD", fds[i]);
    }
    struct stat a, b;
    if (fstatat(ol, "", &a, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) || lstat("lnk", &b) || !S_ISLNK(a.st_mode) || a.st_ino != b.st_ino)
        wl_fail("O_PATH|O_NOFOLLOW fd is not the symlink");
    char t[64] = "";
    if (readlinkat(ol, "", t, sizeof t - 1) != 6 || strcmp(t, "target") != 0) wl_fail("symlink fd reads '%s'", t);
    if (fstat(ot, &a) || stat("target", &b) || a.st_ino != b.st_ino) wl_fail("O_PATH fd is not the target");
    if (fstat(od, &a) || stat(".", &b) || a.st_ino != b.st_ino) wl_fail("O_PATH fd is not DIR");
    wl_finish();
}
