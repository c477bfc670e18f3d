/* signalfd: SIGUSR1 and SIGRTMIN+1 blocked and read through a non-blocking signalfd; a
 * queued SIGRTMIN+1 (value 42) waits in it at the dump. After go: the queued one comes
 * first with its value, then a SIGUSR1 sent after the restore, then nothing. */
#include "workload.h"
#include <sys/signalfd.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
    if (sfd < 0) { perror("signalfd"); return 2; }
    union sigval val = { .sival_int = 42 };
    if (sigqueue(getpid(), SIGRTMIN + 1, val) != 0) { perror("sigqueue"); return 2; }
    wl_ready();
    wl_wait_go();

    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != sizeof si) wl_fail("queued SIGRTMIN+1 not readable: %s", strerror(errno));
    else if ((int)si.ssi_signo != SIGRTMIN + 1 || si.ssi_int != 42) wl_fail("read signal %u value %d, want %d value 42", si.ssi_signo, si.ssi_int, SIGRTMIN + 1);
    kill(getpid(), SIGUSR1);
    if (read(sfd, &si, sizeof si) != sizeof si) wl_fail("SIGUSR1 sent after restore not readable: %s", strerror(errno));
    else if (si.ssi_signo != SIGUSR1) wl_fail("read signal %u, want SIGUSR1", si.ssi_signo);
    if (read(sfd, &si, sizeof si) != -1 || errno != EAGAIN) wl_fail("signalfd not empty (or lost O_NONBLOCK)");
    /* a signal outside the mask does not come through the signalfd */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    kill(getpid(), SIGUSR2);
    if (read(sfd, &si, sizeof si) != -1) wl_fail("signalfd delivered signal %u outside its mask", si.ssi_signo);
    wl_finish();
}
