/* pipes: a pipe holding 10 KiB of unread data (written in pieces before ready) and a
 * FIFO in DIR opened read+write holding 100 unread bytes. After go: read everything
 * back, compare exactly, nothing more is queued, both still work as pipes. */
#include "workload.h"

#define PIPE_BYTES 10240
#define FIFO_BYTES 100

static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)(i * 31 + seed + (i >> 7)); }

static void drain_check(int fd, size_t want, unsigned seed, const char *what)
{
    unsigned char buf[PIPE_BYTES + 1];
    size_t got = 0;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || got + (size_t)n == sizeof buf) { if (n > 0) got += (size_t)n; break; }
        got += (size_t)n;
    }
    fcntl(fd, F_SETFL, fl);
    if (got != want) { wl_fail("%s: %zu bytes queued, want %zu", what, got, want); return; }
    for (size_t i = 0; i < want; i++)
        if (buf[i] != pat(i, seed)) { wl_fail("%s: byte %zu is %u, want %u", what, i, buf[i], pat(i, seed)); return; }
}

static void put(int fd, size_t from, size_t n, unsigned seed)
{
    unsigned char buf[PIPE_BYTES];
    for (size_t i = 0; i < n; i++) buf[i] = pat(from + i, seed);
    if (write(fd, buf, n) != (ssize_t)n) { perror("write"); exit(2); }
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 2; }
    put(p[1], 0, 1000, 1); put(p[1], 1000, 3000, 1); put(p[1], 4000, 6240, 1);
    unlink("fifo");
    if (mkfifo("fifo", 0600) != 0) { perror("mkfifo"); return 2; }
    int ff = open("fifo", O_RDWR);
    if (ff < 0) { perror("open fifo"); return 2; }
    put(ff, 0, 60, 2); put(ff, 60, 40, 2);
    struct stat fst, pst;
    fstat(ff, &fst);
    fstat(p[0], &pst);
    int fl[3] = { fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL), fcntl(ff, F_GETFL) };
    wl_ready();
    wl_wait_go();

    int now[3] = { fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL), fcntl(ff, F_GETFL) };
    for (int i = 0; i < 3; i++)
        if (now[i] != fl[i]) wl_fail("fd %d: F_GETFL 0%o, want 0%o", i == 2 ? ff : p[i], now[i], fl[i]);
    struct stat st, path;
    if (fstat(p[0], &st) || !S_ISFIFO(st.st_mode)) wl_fail("pipe read end is no longer a pipe");
    fstat(p[1], &pst);
    if (st.st_ino != pst.st_ino) wl_fail("pipe ends are two different pipes");
    if (fstat(ff, &st) || stat("fifo", &path) || st.st_ino != path.st_ino || st.st_ino != fst.st_ino)
        wl_fail("fifo fd is not the FIFO at DIR/fifo");
    drain_check(p[0], PIPE_BYTES, 1, "pipe");
    drain_check(ff, FIFO_BYTES, 2, "fifo");
    /* both still carry data */
    put(p[1], 0, 5000, 3);
    drain_check(p[0], 5000, 3, "pipe after go");
    put(ff, 0, 77, 4);
    drain_check(ff, 77, 4, "fifo after go");
    wl_finish();
}
