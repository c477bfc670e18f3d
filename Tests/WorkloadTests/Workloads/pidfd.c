/* pidfd: a pidfd of our child (inside the tree). With "outside", also a pidfd of our
 * parent (outside the tree: the dump must refuse). After go: the child is alive (the pidfd
 * is not readable), pidfd_send_signal kills it, poll reports it and waitid(P_PIDFD)
 * collects SIGTERM. With "zombie", the child exits (status 7) before the dump and is left
 * unreaped: after go the pidfd is readable and waitid(P_PIDFD) collects exit status 7. */
#include "workload.h"
#include <poll.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    int zombie = argc > 2 && strcmp(argv[2], "zombie") == 0;
    if (child == 0) { if (zombie) _exit(7); for (;;) pause(); }
    int pfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (pfd < 0) { perror("pidfd_open"); return 2; }
    int outside = -1;
    if (argc > 2 && strcmp(argv[2], "outside") == 0) outside = (int)syscall(SYS_pidfd_open, getppid(), 0);
    pid_t pids[2] = { getpid(), child };
    while (zombie && wl_proc_state(child) != 'Z') wl_sleep_ms(5);
    wl_ready_pids(pids, 2);
    wl_wait_go();

    if (zombie) {
        struct pollfd z = { pfd, POLLIN, 0 };
        siginfo_t zi = { 0 };
        if (poll(&z, 1, 0) != 1) wl_fail("pidfd of the zombie not readable");
        if (waitid((idtype_t)P_PIDFD, (id_t)pfd, &zi, WEXITED) != 0) wl_fail("waitid(P_PIDFD) of the zombie: %s", strerror(errno));
        else if (zi.si_pid != child || zi.si_code != CLD_EXITED || zi.si_status != 7)
            wl_fail("waitid: pid %d code %d status %d, want %d exited 7", zi.si_pid, zi.si_code, zi.si_status, child);
        wl_finish();
    }

    struct pollfd p = { pfd, POLLIN, 0 };
    if (poll(&p, 1, 0) != 0) wl_fail("pidfd readable while the child lives");
    if (syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) != 0) wl_fail("pidfd_send_signal: %s", strerror(errno));
    if (poll(&p, 1, 5000) != 1 || !(p.revents & POLLIN)) wl_fail("pidfd not readable after the child died");
    siginfo_t info = { 0 };
    if (waitid((idtype_t)P_PIDFD, (id_t)pfd, &info, WEXITED) != 0) wl_fail("waitid(P_PIDFD): %s", strerror(errno));
    else if (info.si_pid != child || info.si_code != CLD_KILLED || info.si_status != SIGTERM)
        wl_fail("waitid: pid %d code %d status %d, want %d killed by SIGTERM", info.si_pid, info.si_code, info.si_status, child);
    if (outside >= 0) close(outside);
    wl_finish();
}
