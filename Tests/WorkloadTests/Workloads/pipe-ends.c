/* pipe-ends: pipes whose ends are shared every way, with per-description flags.
 *  a: capacity raised to 1 MiB, 200 KiB queued (written by parent, child, parent in turn),
 *     read end O_NONBLOCK, write end blocking; the child holds both ends too.
 *  b: capacity lowered to 4 KiB, empty; a second read description of it opened through
 *     /proc/self/fd (blocking) beside the first (O_NONBLOCK), and a dup of the first.
 *  c: an empty pipe of default size whose write end is O_NONBLOCK and O_ASYNC-free.
 * After go: flags, capacities, inode identity, descriptions shared only where they were
 * (F_SETFL through one fd shows through its dup, not through the other description), and
 * the queued bytes in their order; the child writes its tail and both check. */
#include "workload.h"

#define A_PIECE (64 * 1024 + 123)

static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)(i * 7 + seed * 13 + (i >> 9)); }

static void put(int fd, size_t from, size_t n, unsigned seed)
{
    static unsigned char buf[1 << 20];
    for (size_t i = 0; i < n; i++) buf[i] = pat(from + i, seed);
    if (write(fd, buf, n) != (ssize_t)n) { perror("write"); exit(2); }
}

/* Reads exactly `want` bytes (the fd may block) and checks them against the pattern. */
static void take(int fd, size_t want, size_t from, unsigned seed, const char *what)
{
    static unsigned char buf[1 << 20];
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { wl_fail("%s: read after %zu of %zu bytes: %s", what, got, want, n ? strerror(errno) : "EOF"); return; }
        got += (size_t)n;
    }
    for (size_t i = 0; i < want; i++)
        if (buf[i] != pat(from + i, seed)) { wl_fail("%s: byte %zu is %u, want %u", what, from + i, buf[i], pat(from + i, seed)); return; }
}

static void expect_flags(int fd, int want, const char *what)
{
    int now = fcntl(fd, F_GETFL);
    if (now != want) wl_fail("%s (fd %d): F_GETFL 0%o, want 0%o", what, fd, now, want);
}

static void expect_size(int fd, int want, const char *what)
{
    int now = fcntl(fd, F_GETPIPE_SZ);
    if (now != want) wl_fail("%s: F_GETPIPE_SZ %d, want %d", what, now, want);
}

static ino_t ino(int fd) { struct stat st; return fstat(fd, &st) == 0 ? st.st_ino : 0; }

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int a[2], b[2], c[2];
    if (pipe(a) || pipe(b) || pipe(c)) { perror("pipe"); return 2; }
    if (fcntl(a[0], F_SETPIPE_SZ, 1 << 20) < 0 || fcntl(b[0], F_SETPIPE_SZ, 4096) < 0) { perror("F_SETPIPE_SZ"); return 2; }
    int *turn = wl_shared(4096);
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child == 0) {
        while (__atomic_load_n(turn, __ATOMIC_SEQ_CST) != 1) wl_sleep_ms(1);
        put(a[1], A_PIECE, A_PIECE, 1);
        __atomic_store_n(turn, 2, __ATOMIC_SEQ_CST);
        int wfl = fcntl(a[1], F_GETFL);
        wl_wait_go();
        expect_flags(a[1], wfl, "child: a write end");
        if (ino(a[0]) != ino(a[1])) wl_fail("child: a's ends are two pipes");
        put(a[1], 3 * A_PIECE, 1000, 1);
        _exit(wl_fail_msg[0] ? 1 : 0);
    }
    put(a[1], 0, A_PIECE, 1);
    __atomic_store_n(turn, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(turn, __ATOMIC_SEQ_CST) != 2) wl_sleep_ms(1);
    put(a[1], 2 * A_PIECE, A_PIECE, 1);
    fcntl(a[0], F_SETFL, O_NONBLOCK);

    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", b[0]);
    int b2 = open(path, O_RDONLY);
    int bdup = dup(b[0]);
    if (b2 < 0 || bdup < 0) { perror("reopen b"); return 2; }
    fcntl(b[0], F_SETFL, O_NONBLOCK);
    fcntl(c[1], F_SETFL, O_NONBLOCK);

    int fa0 = fcntl(a[0], F_GETFL), fa1 = fcntl(a[1], F_GETFL), fb0 = fcntl(b[0], F_GETFL);
    int fb2 = fcntl(b2, F_GETFL), fc0 = fcntl(c[0], F_GETFL), fc1 = fcntl(c[1], F_GETFL);
    int defsize = fcntl(c[0], F_GETPIPE_SZ);
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    expect_flags(a[0], fa0, "a read end"); expect_flags(a[1], fa1, "a write end");
    expect_flags(b[0], fb0, "b read end"); expect_flags(bdup, fb0, "dup of b read end");
    expect_flags(b2, fb2, "second description of b"); expect_flags(c[0], fc0, "c read end");
    expect_flags(c[1], fc1, "c write end");
    expect_size(a[0], 1 << 20, "a"); expect_size(b2, 4096, "b"); expect_size(c[1], defsize, "c");
    if (ino(a[0]) != ino(a[1]) || ino(b[0]) != ino(b2) || ino(b[0]) != ino(bdup) || ino(b[0]) != ino(b[1]) || ino(c[0]) != ino(c[1]))
        wl_fail("an end belongs to another pipe than before");
    /* one description: the dup follows; the other description does not */
    fcntl(bdup, F_SETFL, 0);
    if (fcntl(b[0], F_GETFL) & O_NONBLOCK) wl_fail("b's dup does not share its description");
    if (fcntl(b2, F_GETFL) != fb2) wl_fail("b's second description follows the first");
    fcntl(b2, F_SETFL, O_NONBLOCK);
    if (fcntl(b[0], F_GETFL) & O_NONBLOCK) wl_fail("b's first description follows the second");
    char x;
    if (read(b2, &x, 1) != -1 || errno != EAGAIN) wl_fail("b: empty non-blocking read did not say EAGAIN");
    for (int i = 0; i < 4096; i++) if (write(c[1], "c", 1) != 1) { wl_fail("c: full after %d bytes", i); break; }

    take(a[0], 3 * A_PIECE, 0, 1, "a");
    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("child failed its checks (status 0x%x)", st);
    take(a[0], 1000, 3 * A_PIECE, 1, "a after go");
    if (read(a[0], &x, 1) != -1 || errno != EAGAIN) wl_fail("a: more bytes than were written");
    wl_finish();
}
