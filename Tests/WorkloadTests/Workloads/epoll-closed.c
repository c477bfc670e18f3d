/* epoll-closed: an epoll watches a pipe's read end by an fd number that was closed since;
 * the file lives on as a dup (a lower fd than the write end, which was moved to 50).
 * After go: the epoll still reports the pipe with the same data, fdinfo still lists the
 * old number, the old number is closed, epoll_ctl by either number fails as before
 * (EBADF on the closed one, ENOENT on the dup), and draining and refilling the pipe
 * changes readiness. With "orphan", no fd of this process holds the read end any more,
 * only a child does (an epoll does not keep its files open): the dump must refuse (no
 * checks after go). */
#include "workload.h"
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <signal.h>

static int waitOne(int ep, struct epoll_event *out)
{
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, 0);
    if (n > 0) *out = ev[0];
    return n;
}

static int ctlErrno(int ep, int op, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
    return epoll_ctl(ep, op, fd, &ev) == 0 ? 0 : errno;
}

static int listsTfd(int ep, int tfd)
{
    char path[64], buf[4096], want[32];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    int f = open(path, O_RDONLY);
    ssize_t n = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0) close(f);
    if (n <= 0) return 0;
    buf[n] = 0;
    snprintf(want, sizeof want, "tfd: %8d ", tfd);
    return strstr(buf, want) != NULL;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int orphan = argc > 2 && strcmp(argv[2], "orphan") == 0;
    int p[2];
    if (pipe(p) || dup2(p[1], 50) != 50 || close(p[1])) { perror("pipe"); return 2; }
    if (orphan) {
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 2; }
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;) pause();
        }
    }
    int w = 50, old = p[0], ep = epoll_create1(0);
    struct epoll_event add = { .events = EPOLLIN, .data.u64 = 0xabcdef0123ull };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, old, &add)) { perror("epoll"); return 2; }
    if (write(w, "x", 1) != 1) { perror("write"); return 2; }
    int dupd = orphan ? -1 : dup(old);
    if ((!orphan && dupd < 0) || close(old)) { perror("dup"); return 2; }
    struct epoll_event before;
    if (waitOne(ep, &before) != 1 || before.data.u64 != add.data.u64 || before.events != EPOLLIN) { fprintf(stderr, "not ready before\n"); return 2; }
    int badBefore = ctlErrno(ep, EPOLL_CTL_MOD, old), dupBefore = ctlErrno(ep, EPOLL_CTL_DEL, dupd);
    if (!listsTfd(ep, old)) { fprintf(stderr, "fdinfo lacks tfd %d before\n", old); return 2; }
    wl_ready();
    wl_wait_go();
    if (orphan) wl_finish();

    struct epoll_event after = { 0 };
    int n = waitOne(ep, &after);
    if (n != 1 || after.data.u64 != before.data.u64 || after.events != before.events)
        wl_fail("epoll_wait: %d events, data %#llx events %#x; before data %#llx events %#x", n,
                (unsigned long long)after.data.u64, after.events, (unsigned long long)before.data.u64, before.events);
    if (!listsTfd(ep, old)) wl_fail("fdinfo of the epoll no longer lists tfd %d", old);
    if (fcntl(old, F_GETFD) != -1 || errno != EBADF) wl_fail("fd %d (closed before the dump) is open", old);
    int bad = ctlErrno(ep, EPOLL_CTL_MOD, old), dup_ = ctlErrno(ep, EPOLL_CTL_DEL, dupd);
    if (bad != badBefore || badBefore != EBADF) wl_fail("MOD of closed fd %d: %s, before %s", old, strerror(bad), strerror(badBefore));
    if (dup_ != dupBefore || dupBefore != ENOENT) wl_fail("DEL of dup fd %d: %s, before %s", dupd, strerror(dup_), strerror(dupBefore));
    char c;
    if (read(dupd, &c, 1) != 1 || c != 'x') wl_fail("pipe lost its byte");
    if (waitOne(ep, &after) != 0) wl_fail("drained pipe still reported");
    if (write(w, "y", 1) != 1 || waitOne(ep, &after) != 1 || after.data.u64 != add.data.u64) wl_fail("refilled pipe not reported");
    /* Another file at the old number is another registration key, as the kernel has it. */
    if (dup2(w, old) != old || ctlErrno(ep, EPOLL_CTL_DEL, old) != ENOENT) wl_fail("DEL of a new file at fd %d did not fail with ENOENT", old);
    wl_finish();
}
