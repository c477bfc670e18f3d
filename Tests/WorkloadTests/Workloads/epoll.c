/* epoll: an epoll watching an eventfd holding 1 (EPOLLIN, data 0x1111), a pipe's read end
 * holding data (0x2222), an empty eventfd (0x3333) and the pipe's write end (EPOLLOUT,
 * 0x4444); an outer epoll watching the first (0x5555). After go: the same files are ready
 * with the same data, the outer epoll sees the inner one ready, the empty eventfd becomes
 * ready when written, and EPOLL_CTL_MOD/DEL work on the registered fd numbers.
 * With "replaced", the eventfd's fd is moved to another number first: the registration
 * then names a closed fd held by an eventfd, which the image cannot name: the dump
 * must refuse (no checks after go). */
#include "workload.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Ready data values, sorted, as a bit set of 0x1111 * k. */
static unsigned ready(int ep)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, 0);
    unsigned set = 0;
    for (int i = 0; i < n; i++) set |= 1u << (ev[i].data.u64 / 0x1111);
    return set;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int e1 = eventfd(1, 0), e2 = eventfd(0, 0), p[2];
    if (e1 < 0 || e2 < 0 || pipe(p) != 0) { perror("setup"); return 2; }
    if (write(p[1], "x", 1) != 1) return 2;
    int inner = epoll_create1(0), outer = epoll_create1(EPOLL_CLOEXEC);
    if (add(inner, e1, EPOLLIN, 0x1111) || add(inner, p[0], EPOLLIN, 0x2222) || add(inner, e2, EPOLLIN, 0x3333)
        || add(inner, p[1], EPOLLOUT, 0x4444) || add(outer, inner, EPOLLIN, 0x5555)) { perror("epoll_ctl"); return 2; }
    unsigned before = ready(inner), outerBefore = ready(outer);
    int replaced = argc > 2 && strcmp(argv[2], "replaced") == 0;
    if (replaced && (dup2(e1, 40) != 40 || close(e1) != 0)) { perror("dup2"); return 2; }
    wl_ready();
    wl_wait_go();
    if (replaced) wl_finish();

    unsigned after = ready(inner);
    if (after != before) wl_fail("inner epoll ready set %#x, before the dump %#x", after, before);
    if (before != ((1u << 1) | (1u << 2) | (1u << 4))) wl_fail("inner epoll ready set before the dump was %#x", before);
    if (ready(outer) != outerBefore || outerBefore != (1u << 5)) wl_fail("outer epoll ready set %#x, before %#x", ready(outer), outerBefore);
    uint64_t one = 1;
    if (write(e2, &one, 8) != 8) wl_fail("write e2");
    if (!(ready(inner) & (1u << 3))) wl_fail("empty eventfd not reported after a write");
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x6666 };
    if (epoll_ctl(inner, EPOLL_CTL_MOD, p[0], &ev) != 0) wl_fail("EPOLL_CTL_MOD of pipe fd %d: %s", p[0], strerror(errno));
    if (!(ready(inner) & (1u << 6))) wl_fail("modified registration not reported with its new data");
    if (epoll_ctl(inner, EPOLL_CTL_DEL, e1, NULL) != 0) wl_fail("EPOLL_CTL_DEL of eventfd fd %d: %s", e1, strerror(errno));
    if (ready(inner) & (1u << 1)) wl_fail("deleted registration still reported");
    if (!(fcntl(outer, F_GETFD) & FD_CLOEXEC)) wl_fail("outer epoll lost FD_CLOEXEC");
    wl_finish();
}
