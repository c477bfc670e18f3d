/* unix-pair: socketpairs of every type with data queued in both directions.
 * stream: 3000 bytes (in 3 writes) queued a->b, 500 b->a; a has SO_SNDBUF set.
 * dgram: datagrams of 10, 200 and 1 bytes a->b, 2 of 7 and 70 b->a; b has SO_PASSCRED,
 *   a is O_NONBLOCK.
 * seqpacket: records of 5, 1000, 33 bytes a->b, one of 9 b->a; b has SO_RCVTIMEO 2.5 s
 *   and SO_SNDTIMEO 1.5 s.
 * half-closed stream pair: a wrote 100 bytes then shutdown(SHUT_WR); b still writes 40 to a.
 * a stream socket whose peer wrote 20 bytes and closed.
 * A child process holds the b ends of the stream and seqpacket pairs (the pair spans two
 * processes of the tree); the parent keeps the a ends and both dgram ends.
 * After go: every queue reads back exactly, with its boundaries, nothing more is queued,
 * options and flags are as set, the half-closed pair reads EOF and refuses writes, and
 * every pair carries new data both ways. The child holds the b ends of the stream and
 * seqpacket pairs and reports through pipes. */
#include "workload.h"
#include <poll.h>
#include <sys/socket.h>

static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)(i * 7 + seed * 13 + (i >> 5)); }

static void put(int fd, size_t n, unsigned seed)
{
    unsigned char buf[4096];
    for (size_t i = 0; i < n; i++) buf[i] = pat(i, seed);
    if (send(fd, buf, n, MSG_DONTWAIT) != (ssize_t)n) { perror("send"); exit(2); }
}

/* One record/datagram (or, for a stream, exactly n bytes) with the pattern of `seed`. */
static void expect(int fd, size_t n, unsigned seed, int stream, const char *what)
{
    unsigned char buf[8192];
    size_t got = 0;
    do {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 5000) != 1) { wl_fail("%s: nothing to read after %zu of %zu bytes", what, got, n); return; }
        ssize_t r = recv(fd, buf + got, stream ? n - got : sizeof buf, MSG_DONTWAIT);  /* a stream holds later data too */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { wl_fail("%s: recv %zd (%s) after %zu of %zu bytes", what, r, strerror(errno), got, n); return; }
        got += (size_t)r;
        if (!stream) break;
    } while (got < n);
    if (got != n) { wl_fail("%s: %zu bytes, want %zu", what, got, n); return; }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(i, seed)) { wl_fail("%s: byte %zu is %u, want %u", what, i, buf[i], pat(i, seed)); return; }
}

static void expect_empty(int fd, const char *what)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    if (r >= 0) wl_fail("%s: %zd more bytes queued", what, r);
}

static int intopt(int fd, int opt)
{
    int v = 0;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_SOCKET, opt, &v, &l);
    return v;
}

static long timeo(int fd, int opt)
{
    struct timeval tv = { 0, 0 };
    socklen_t l = sizeof tv;
    getsockopt(fd, SOL_SOCKET, opt, &tv, &l);
    return tv.tv_sec * 1000000L + tv.tv_usec;
}

static void pair(int type, int sv[2])
{
    if (socketpair(AF_UNIX, type, 0, sv) != 0) { perror("socketpair"); exit(2); }
}

/* The child's half: check what was queued for b, then echo new data. */
static void child_checks(int st_b, int sq_b, int fail_fd, int checked_fd)
{
    wl_wait_go();
    expect(st_b, 3000, 1, 1, "stream a->b");
    expect_empty(st_b, "stream b");
    expect(sq_b, 5, 3, 0, "seqpacket a->b #1");
    expect(sq_b, 1000, 4, 0, "seqpacket a->b #2");
    expect(sq_b, 33, 5, 0, "seqpacket a->b #3");
    expect_empty(sq_b, "seqpacket b");
    if (timeo(sq_b, SO_RCVTIMEO) != 2500000) wl_fail("seqpacket b: SO_RCVTIMEO %ld us", timeo(sq_b, SO_RCVTIMEO));
    if (timeo(sq_b, SO_SNDTIMEO) != 1500000) wl_fail("seqpacket b: SO_SNDTIMEO %ld us", timeo(sq_b, SO_SNDTIMEO));
    if (write(checked_fd, "k", 1) != 1) _exit(3);
    /* new data both ways: the parent sends 1234 stream bytes and a 77-byte record */
    expect(st_b, 1234, 20, 1, "stream a->b after go");
    expect(sq_b, 77, 21, 0, "seqpacket a->b after go");
    put(st_b, 999, 22);
    put(sq_b, 55, 23);
    if (write(fail_fd, wl_fail_msg, strlen(wl_fail_msg)) < 0) _exit(3);
    _exit(0);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int st[2], dg[2], sq[2], hc[2], report[2], checked[2];
    pair(SOCK_STREAM, st);
    pair(SOCK_DGRAM, dg);
    pair(SOCK_SEQPACKET, sq);
    pair(SOCK_STREAM, hc);
    if (pipe(report) != 0 || pipe(checked) != 0) return 2;

    int sndbuf = 65536, one = 1;
    setsockopt(st[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    struct timeval rcv = { 2, 500000 }, snd = { 1, 500000 };
    setsockopt(sq[1], SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    setsockopt(sq[1], SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    fcntl(dg[0], F_SETFL, fcntl(dg[0], F_GETFL) | O_NONBLOCK);
    int st_sndbuf = intopt(st[0], SO_SNDBUF);

    /* one 3000-byte pattern in three writes */
    {
        unsigned char buf[3000];
        for (size_t i = 0; i < 3000; i++) buf[i] = pat(i, 1);
        if (send(st[0], buf, 1000, 0) != 1000 || send(st[0], buf + 1000, 1500, 0) != 1500 ||
            send(st[0], buf + 2500, 500, 0) != 500) { perror("send"); return 2; }
    }
    put(st[1], 500, 2);
    put(dg[0], 10, 6); put(dg[0], 200, 7); put(dg[0], 1, 8);
    put(dg[1], 7, 9); put(dg[1], 70, 10);
    put(sq[0], 5, 3); put(sq[0], 1000, 4); put(sq[0], 33, 5);
    put(sq[1], 9, 11);
    put(hc[0], 100, 12);
    shutdown(hc[0], SHUT_WR);
    put(hc[1], 40, 13);
    int pc[2];   /* peer closed: 20 bytes queued, then EOF */
    pair(SOCK_STREAM, pc);
    put(pc[1], 20, 17);
    close(pc[1]);

    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
        close(st[0]); close(sq[0]); close(report[0]); close(checked[0]);
        close(dg[0]); close(dg[1]); close(hc[0]); close(hc[1]);
        child_checks(st[1], sq[1], report[1], checked[1]);
    }
    close(st[1]); close(sq[1]); close(report[1]); close(checked[1]);
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    expect(st[0], 500, 2, 1, "stream b->a");
    expect_empty(st[0], "stream a");
    if (intopt(st[0], SO_SNDBUF) != st_sndbuf) wl_fail("stream a: SO_SNDBUF %d, want %d", intopt(st[0], SO_SNDBUF), st_sndbuf);
    expect(dg[1], 10, 6, 0, "dgram a->b #1");
    expect(dg[1], 200, 7, 0, "dgram a->b #2");
    expect(dg[1], 1, 8, 0, "dgram a->b #3");
    expect_empty(dg[1], "dgram b");
    expect(dg[0], 7, 9, 0, "dgram b->a #1");
    expect(dg[0], 70, 10, 0, "dgram b->a #2");
    expect_empty(dg[0], "dgram a");
    if (!intopt(dg[1], SO_PASSCRED)) wl_fail("dgram b: SO_PASSCRED lost");
    if (!(fcntl(dg[0], F_GETFL) & O_NONBLOCK)) wl_fail("dgram a: O_NONBLOCK lost");
    if (fcntl(dg[1], F_GETFL) & O_NONBLOCK) wl_fail("dgram b: O_NONBLOCK appeared");
    expect(sq[0], 9, 11, 0, "seqpacket b->a");
    expect_empty(sq[0], "seqpacket a");
    expect(hc[1], 100, 12, 1, "half-closed a->b");
    char c;
    if (recv(hc[1], &c, 1, MSG_DONTWAIT) != 0) wl_fail("half-closed b: no EOF after the data (%s)", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    if (send(hc[0], "x", 1, MSG_DONTWAIT) != -1 || errno != EPIPE) wl_fail("half-closed a: send after SHUT_WR did not fail with EPIPE");
    expect(hc[0], 40, 13, 1, "half-closed b->a");
    put(hc[1], 50, 14);
    expect(hc[0], 50, 14, 1, "half-closed b->a after go");

    expect(pc[0], 20, 17, 1, "stream from a closed peer");
    if (recv(pc[0], &c, 1, MSG_DONTWAIT) != 0) wl_fail("stream from a closed peer: no EOF after the data (%s)", strerror(errno));

    /* new data both ways */
    put(dg[0], 300, 15); put(dg[1], 3, 16);
    expect(dg[1], 300, 15, 0, "dgram a->b after go");
    expect(dg[0], 3, 16, 0, "dgram b->a after go");
    /* the child has read its queues before new data arrives */
    if (read(checked[0], &c, 1) != 1) wl_fail("child ended before checking its queues");
    put(st[0], 1234, 20);
    put(sq[0], 77, 21);
    expect(st[0], 999, 22, 1, "stream b->a after go");
    expect(sq[0], 55, 23, 0, "seqpacket b->a after go");

    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        wl_fail("child ended with status 0x%x", status);
    char msg[1024] = { 0 };
    ssize_t n = read(report[0], msg, sizeof msg - 1);
    if (n > 0) {
        /* the child's first failure explains the parent's */
        char both[1200];
        snprintf(both, sizeof both, "child: %s; parent: %s", msg, wl_fail_msg[0] ? wl_fail_msg : "-");
        wl_result(both);
        exit(0);
    }
    wl_finish();
}
