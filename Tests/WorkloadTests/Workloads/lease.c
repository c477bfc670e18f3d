/* lease: a write lease on one file, a read lease on another, lease breaks signalled with
 * SIGRTMIN+3 (F_SETSIG); `lease breaking`: a child's open has started breaking the write
 * lease (the dump must refuse it; the workload still answers the break).
 * After go: the same leases (F_GETLEASE), no signal arrived on its own (a restored lease
 * must not look broken), and an open by a child breaks the write lease with the signal
 * naming the fd. */
#include "workload.h"

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int breaking = argc > 2 && strcmp(argv[2], "breaking") == 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3); sigaddset(&set, SIGIO);
    sigprocmask(SIG_BLOCK, &set, NULL);
    close(open("wfile", O_CREAT | O_WRONLY | O_TRUNC, 0600));
    close(open("rfile", O_CREAT | O_WRONLY | O_TRUNC, 0600));
    int w = open("wfile", O_RDWR), r = open("rfile", O_RDONLY);
    if (w < 0 || r < 0) { perror("open"); return 2; }
    if (fcntl(w, F_SETSIG, SIGRTMIN + 3) || fcntl(r, F_SETSIG, SIGRTMIN + 3)) { perror("F_SETSIG"); return 2; }
    if (fcntl(w, F_SETLEASE, F_WRLCK) || fcntl(r, F_SETLEASE, F_RDLCK)) { perror("F_SETLEASE"); return 2; }
    if (breaking) {
        pid_t c = fork();
        if (c == 0) { int fd = open("wfile", O_RDONLY | O_NONBLOCK); _exit(fd < 0 && errno == EWOULDBLOCK ? 0 : 1); }
        waitpid(c, NULL, 0);
    }
    wl_ready();
    wl_wait_go();

    if (breaking) {
        siginfo_t si;
        struct timespec ts = { 2, 0 };
        if (sigtimedwait(&set, &si, &ts) != SIGRTMIN + 3) wl_fail("no lease break signal");
        fcntl(w, F_SETLEASE, F_UNLCK);
        wl_finish();
    }
    if (fcntl(w, F_GETLEASE) != F_WRLCK) wl_fail("write lease: F_GETLEASE %d", fcntl(w, F_GETLEASE));
    if (fcntl(r, F_GETLEASE) != F_RDLCK) wl_fail("read lease: F_GETLEASE %d", fcntl(r, F_GETLEASE));
    if (fcntl(w, F_GETSIG) != SIGRTMIN + 3) wl_fail("write lease: F_GETSIG %d", fcntl(w, F_GETSIG));
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGRTMIN + 3) || sigismember(&pending, SIGIO)) wl_fail("a lease break signal arrived by itself");
    pid_t c = fork();
    if (c == 0) { int fd = open("wfile", O_RDONLY | O_NONBLOCK); _exit(fd < 0 && errno == EWOULDBLOCK ? 0 : 1); }
    int st = 0;
    waitpid(c, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("the child's open did not start a lease break");
    siginfo_t si;
    struct timespec ts = { 2, 0 };
    if (sigtimedwait(&set, &si, &ts) != SIGRTMIN + 3) wl_fail("no lease break signal after go");
    else if (si.si_fd != w) wl_fail("lease break signal names fd %d, want %d", si.si_fd, w);
    fcntl(w, F_SETLEASE, F_UNLCK);
    wl_finish();
}
