/* aio: an io_setup context with completed events not yet read. Five writes are submitted
 * (buffered: they complete at once) and two events read, so the ring holds three. After
 * go the context id (the ring's address) is the same, the three events come back in order
 * with their data and results, and the context takes and completes new requests. */
#include "workload.h"
#include <linux/aio_abi.h>

static long io_setup(unsigned n, aio_context_t *ctx) { return syscall(SYS_io_setup, n, ctx); }
static long io_submit(aio_context_t ctx, long n, struct iocb **p) { return syscall(SYS_io_submit, ctx, n, p); }
static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev)
{
    struct timespec ts = { 1, 0 };
    return syscall(SYS_io_getevents, ctx, min, max, ev, &ts);
}

static char buf[5][64];
static struct iocb cbs[5];

static int submit(aio_context_t ctx, int fd, int first, int n)
{
    struct iocb *p[5];
    for (int i = 0; i < n; i++) {
        struct iocb *cb = &cbs[first + i];
        memset(cb, 0, sizeof *cb);
        snprintf(buf[first + i], sizeof buf[first + i], "write %d\n", first + i);
        cb->aio_data = 100 + first + i;
        cb->aio_lio_opcode = IOCB_CMD_PWRITE;
        cb->aio_fildes = fd;
        cb->aio_buf = (unsigned long)buf[first + i];
        cb->aio_nbytes = strlen(buf[first + i]);
        cb->aio_offset = 64 * (first + i);
        p[i] = cb;
    }
    return io_submit(ctx, n, p) == n;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    aio_context_t ctx = 0;
    if (io_setup(16, &ctx) != 0) { perror("io_setup"); return 2; }
    int fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || !submit(ctx, fd, 0, 5)) { perror("io_submit"); return 2; }
    struct io_event ev[5];
    if (io_getevents(ctx, 2, 2, ev) != 2 || ev[0].data != 100 || ev[1].data != 101) { fprintf(stderr, "first events\n"); return 2; }
    aio_context_t id = ctx;
    unsigned *ring = (unsigned *)ctx;
    unsigned head = ring[2], tail = ring[3];
    wl_ready();
    wl_wait_go();

    if (ring[2] != head || ring[3] != tail) wl_fail("ring head/tail %u/%u, were %u/%u", ring[2], ring[3], head, tail);
    long n = io_getevents(ctx, 3, 5, ev);
    if (n != 3) wl_fail("%ld events left, want 3", n);
    for (int i = 0; i < n && i < 3; i++)
        if (ev[i].data != (uint64_t)(102 + i) || ev[i].obj != (uint64_t)(unsigned long)&cbs[2 + i] || ev[i].res != (long)strlen(buf[2 + i]))
            wl_fail("event %d: data %llu res %lld", i, (unsigned long long)ev[i].data, (long long)ev[i].res);
    if (!submit(ctx, fd, 0, 2)) wl_fail("io_submit after restore: %s", strerror(errno));
    else if ((n = io_getevents(ctx, 2, 2, ev)) != 2 || ev[0].data != 100 || ev[1].data != 101) wl_fail("new events: %ld", n);
    if (ctx != id) wl_fail("context id changed");
    if (syscall(SYS_io_destroy, ctx) != 0) wl_fail("io_destroy: %s", strerror(errno));
    wl_finish();
}
