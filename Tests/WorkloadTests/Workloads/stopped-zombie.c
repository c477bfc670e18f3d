/* stopped-zombie: child S stops itself with SIGSTOP; child Z exits with 42 and is left
 * unreaped. After go: S is still stopped ('T'), continues on SIGCONT (and says so in
 * shared memory); Z is still a zombie and waitpid returns its exit code 42. */
#include "workload.h"

struct shm { volatile int s_continued; volatile pid_t s_pid_seen; } *sh;

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    sh = wl_shared(sizeof *sh);
    pid_t s = fork();
    if (s == 0) {
        raise(SIGSTOP);
        sh->s_pid_seen = getpid();
        __sync_synchronize();
        sh->s_continued = 1;
        _exit(7);
    }
    pid_t z = fork();
    if (z == 0) _exit(42);
    if (s < 0 || z < 0) { perror("fork"); return 2; }
    double deadline = wl_now() + 15;
    while (wl_proc_state(s) != 'T' || wl_proc_state(z) != 'Z') {
        if (wl_now() > deadline) { wl_fail("children never reached T/Z"); kill(s, SIGKILL); wl_finish(); }
        wl_sleep_ms(5);
    }
    pid_t pids[3] = { getpid(), s, z };
    wl_ready_pids(pids, 3);
    while (!wl_go()) {
        if (sh->s_continued) break;
        wl_sleep_ms(10);
    }
    wl_wait_go();

    char ss = wl_proc_state(s), zs = wl_proc_state(z);
    if (sh->s_continued) wl_fail("S ran before SIGCONT");
    if (ss != 'T') wl_fail("S (pid %d) state '%c', want 'T'", s, ss);
    if (zs != 'Z') wl_fail("Z (pid %d) state '%c', want 'Z'", z, zs);
    kill(s, SIGCONT);
    deadline = wl_now() + 5;
    while (!sh->s_continued && wl_now() < deadline) wl_sleep_ms(2);
    if (!sh->s_continued) wl_fail("S did not continue after SIGCONT (state '%c')", wl_proc_state(s));
    else if (sh->s_pid_seen != s) wl_fail("S sees pid %d, want %d", sh->s_pid_seen, s);
    int st;
    if (!sh->s_continued) kill(s, SIGKILL);
    if (waitpid(s, &st, 0) != s) wl_fail("waitpid(S): %s", strerror(errno));
    else if (sh->s_continued && (!WIFEXITED(st) || WEXITSTATUS(st) != 7)) wl_fail("S ended with status 0x%x", st);
    if (waitpid(z, &st, WNOHANG) != z) wl_fail("waitpid(Z) did not return the zombie at once: %s", strerror(errno));
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 42) wl_fail("Z status 0x%x, want exit 42", st);
    wl_finish();
}
