/* blocked: child A blocks in read() on a pipe whose writer is the parent; child B blocks
 * in nanosleep(3600 s) with a SIGUSR1 handler (no SA_RESTART) that sets a flag.
 * ready only once both sit in those syscalls (/proc/PID/syscall). After go the parent
 * writes a message and closes the pipe (A must read exactly those bytes, then EOF) and
 * sends SIGUSR1 to B (nanosleep must return EINTR only then, the handler having run). */
#include "workload.h"

static const char MSG[] = "after-go:0123456789abcdefghijklmnopqrstuvwxyz";

struct report { volatile int a_set, b_set, a_done, b_done; char a_msg[200], b_msg[200]; };
static struct report *rep;
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void child_a(int rfd)
{
    char buf[256];
    size_t got = 0;
    rep->a_set = 1;
    for (;;) {
        ssize_t n = read(rfd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { snprintf(rep->a_msg, sizeof rep->a_msg, "A: read: %s", strerror(errno)); break; }
        if (n == 0) break;
        got += (size_t)n;
        if (!wl_go()) { snprintf(rep->a_msg, sizeof rep->a_msg, "A: read returned %zd bytes before go", n); break; }
        if (got == sizeof buf) break;
    }
    if (!rep->a_msg[0] && (got != sizeof MSG - 1 || memcmp(buf, MSG, got) != 0))
        snprintf(rep->a_msg, sizeof rep->a_msg, "A: read %zu bytes '%.*s', want '%s'", got, (int)got, buf, MSG);
    rep->a_done = rep->a_msg[0] ? 2 : 1;
    _exit(0);
}

static void child_b(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);
    struct timespec req = { 3600, 0 }, rem = { 0, 0 };
    rep->b_set = 1;
    int r = nanosleep(&req, &rem);
    int e = errno;
    if (!wl_go()) snprintf(rep->b_msg, sizeof rep->b_msg, "B: nanosleep returned %d (%s, handler %s) before go",
                           r, r ? strerror(e) : "ok", got_usr1 ? "ran" : "did not run");
    else if (r == 0) snprintf(rep->b_msg, sizeof rep->b_msg, "B: nanosleep(3600 s) completed");
    else if (e != EINTR) snprintf(rep->b_msg, sizeof rep->b_msg, "B: nanosleep: %s", strerror(e));
    else if (!got_usr1)
        snprintf(rep->b_msg, sizeof rep->b_msg, "B: nanosleep returned EINTR but no SIGUSR1 handler ran (go %s)",
                 wl_go() ? "exists" : "missing");
    else if (rem.tv_sec < 3000) snprintf(rep->b_msg, sizeof rep->b_msg, "B: remaining time %ld s", (long)rem.tv_sec);
    rep->b_done = rep->b_msg[0] ? 2 : 1;
    _exit(0);
}

/* true when /proc/PID/syscall starts with one of the given syscall numbers */
static int in_syscall(pid_t pid, int nr1, int nr2)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/syscall", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    int nr = atoi(buf);
    return (buf[0] >= '0' && buf[0] <= '9') && (nr == nr1 || nr == nr2);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    rep = wl_shared(sizeof *rep);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 2; }
    pid_t a = fork();
    if (a == 0) { close(p[1]); child_a(p[0]); }
    pid_t b = fork();
    if (b == 0) { close(p[0]); close(p[1]); child_b(); }
    if (a < 0 || b < 0) { perror("fork"); return 2; }
    close(p[0]);
    double deadline = wl_now() + 15;
    while (!(rep->a_set && rep->b_set && in_syscall(a, SYS_read, SYS_read) &&
             in_syscall(b, SYS_nanosleep, SYS_clock_nanosleep))) {
        if (wl_now() > deadline) { wl_fail("children never blocked"); kill(a, SIGKILL); kill(b, SIGKILL); wl_finish(); }
        wl_sleep_ms(5);
    }
    pid_t pids[3] = { getpid(), a, b };
    wl_ready_pids(pids, 3);
    while (!wl_go()) {
        if (rep->a_done || rep->b_done) break; /* woke up early: report it below */
        wl_sleep_ms(10);
    }
    wl_wait_go();
    if (rep->a_done) wl_fail("A stopped blocking before go: %s", rep->a_msg);
    if (rep->b_done) wl_fail("B stopped blocking before go: %s", rep->b_msg);
    if (write(p[1], MSG, sizeof MSG - 1) != (ssize_t)sizeof MSG - 1) wl_fail("write: %s", strerror(errno));
    close(p[1]);
    if (kill(b, SIGUSR1) != 0) wl_fail("kill B: %s", strerror(errno));
    deadline = wl_now() + 10;
    while (!(rep->a_done && rep->b_done) && wl_now() < deadline) wl_sleep_ms(5);
    if (!rep->a_done) wl_fail("A did not finish its read");
    else if (rep->a_done != 1) wl_fail("%s", rep->a_msg);
    if (!rep->b_done) wl_fail("B did not wake up from nanosleep");
    else if (rep->b_done != 1) wl_fail("%s", rep->b_msg);
    kill(a, SIGKILL); kill(b, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0) {}
    wl_finish();
}
