/* fown: owners of open file descriptions and the signals they send.
 *  pipe read end: F_SETOWN_EX pid (this process), F_SETSIG SIGRTMIN+2, O_ASYNC, set while
 *    the euid was 1000 (F_GETOWNER_UIDS 0/1000);
 *  socketpair end: owner the process group, default signal (SIGIO), O_ASYNC;
 *  regular file: owner the child, F_SETSIG SIGUSR2, no O_ASYNC.
 * After go: the same owners, signals, uids and flags; no signal arrived on its own; new
 * data in the pipe brings SIGRTMIN+2 with si_fd, in the socket brings SIGIO. */
#include "workload.h"
#include <sys/socket.h>

struct owner { int type, pid; };

static void own(int fd, int type, pid_t pid, int sig, int async)
{
    struct f_owner_ex o = { type, pid };
    if (fcntl(fd, F_SETOWN_EX, &o) != 0 || fcntl(fd, F_SETSIG, sig) != 0) { perror("owner"); exit(2); }
    if (async && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) { perror("O_ASYNC"); exit(2); }
}

struct state { struct f_owner_ex o; int sig, fl; unsigned uids[2]; };

static struct state read_state(int fd)
{
    struct state s;
    memset(&s, 0, sizeof s);
    fcntl(fd, F_GETOWN_EX, &s.o);
    s.sig = fcntl(fd, F_GETSIG);
    s.fl = fcntl(fd, F_GETFL);
    fcntl(fd, 17 /* F_GETOWNER_UIDS */, s.uids);
    return s;
}

static void expect_state(int fd, struct state want, const char *what)
{
    struct state now = read_state(fd);
    if (now.o.type != want.o.type || now.o.pid != want.o.pid)
        wl_fail("%s: owner %d:%d, want %d:%d", what, now.o.type, now.o.pid, want.o.type, want.o.pid);
    else if (now.sig != want.sig) wl_fail("%s: F_GETSIG %d, want %d", what, now.sig, want.sig);
    else if (now.fl != want.fl) wl_fail("%s: F_GETFL 0%o, want 0%o", what, now.fl, want.fl);
    else if (now.uids[0] != want.uids[0] || now.uids[1] != want.uids[1])
        wl_fail("%s: owner uids %u/%u, want %u/%u", what, now.uids[0], now.uids[1], want.uids[0], want.uids[1]);
}

static void expect_signal(sigset_t *set, int sig, int fd, const char *what)
{
    siginfo_t si;
    struct timespec ts = { 2, 0 };
    int got = sigtimedwait(set, &si, &ts);
    if (got != sig) wl_fail("%s: signal %d, want %d", what, got, sig);
    else if (sig != SIGIO && si.si_fd != fd) wl_fail("%s: si_fd %d, want %d", what, si.si_fd, fd);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2); sigaddset(&set, SIGIO); sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int p[2], s[2];
    if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s)) { perror("pipe"); return 2; }
    int f = open("owned", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0) { perror("open"); return 2; }
    pid_t child = fork();
    if (child == 0) { wl_wait_go(); _exit(0); }

    if (syscall(SYS_setresuid, -1, 1000, -1) != 0) { perror("setresuid"); return 2; }
    own(p[0], F_OWNER_PID, getpid(), SIGRTMIN + 2, 1);
    if (syscall(SYS_setresuid, -1, 0, -1) != 0) { perror("setresuid back"); return 2; }
    own(s[0], F_OWNER_PGRP, getpgrp(), 0, 1);
    own(f, F_OWNER_PID, child, SIGUSR2, 0);
    struct state sp = read_state(p[0]), ss = read_state(s[0]), sf = read_state(f);
    if (sp.uids[1] != 1000) { fprintf(stderr, "F_GETOWNER_UIDS did not report euid 1000\n"); return 2; }
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    expect_state(p[0], sp, "pipe read end");
    expect_state(s[0], ss, "socket");
    expect_state(f, sf, "regular file");
    sigset_t pending;
    sigpending(&pending);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&set, sig) && sigismember(&pending, sig)) wl_fail("signal %d arrived by itself", sig);
    if (write(p[1], "x", 1) != 1) wl_fail("write pipe");
    expect_signal(&set, SIGRTMIN + 2, p[0], "pipe");
    if (write(s[1], "y", 1) != 1) wl_fail("write socket");
    expect_signal(&set, SIGIO, s[0], "socket");
    waitpid(child, NULL, 0);
    wl_finish();
}
