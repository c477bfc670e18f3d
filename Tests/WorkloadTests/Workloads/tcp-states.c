/* tcp-states: TCP connections in every state a process can hold, both ends in this
 * process on loopback (argv[2]: 4 = 127.0.0.1, 6 = ::1, m = ::ffff:127.0.0.1 on IPv6
 * sockets). Zero windows keep FINs queued behind data, so the states hold still:
 *   p1 client FIN_WAIT2 / server CLOSE_WAIT, a few bytes unread on both sides
 *   p2 client FIN_WAIT1 (send queue full, FIN behind it) / server ESTABLISHED (full)
 *   p3 client CLOSING (its FIN behind data, the peer's FIN received) / server FIN_WAIT2
 *   p4 client FIN_WAIT2 (receive queue full) / server LAST_ACK (FIN behind data)
 *   p5 client reset by its peer (error already read): writes fail with EPIPE
 *   p6 ESTABLISHED with both queues full both ways
 *   an unconnected socket and one only bound.
 * Every socket lingers 0, so killing the original (leave-running mode) resets its
 * connections at once instead of leaving orphans on the same ports.
 * After go: states as before, every queued byte arrives in order, EOF where a FIN was,
 * EPIPE where the sending side is shut, and the connections close as the kernel would. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static int family;
static struct sockaddr_storage lo;
static socklen_t lolen;

static int sock(void)
{
    int fd = socket(family, SOCK_STREAM, 0);
    struct linger l = { 1, 0 };
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) { perror("socket"); exit(2); }
    return fd;
}

static int state(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 ? ti.tcpi_state : -errno;
}

/* Waits up to 3 s for `want`; returns the state seen last. */
static int wait_state(int fd, int want)
{
    for (int i = 0; i < 300 && state(fd) != want; i++) wl_sleep_ms(10);
    return state(fd);
}

static int port(int fd, int peer)
{
    struct sockaddr_in6 a;
    socklen_t l = sizeof a;
    memset(&a, 0, sizeof a);
    if ((peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l)) != 0) return -errno;
    return ntohs(a.sin6_port); /* same offset in sockaddr_in */
}

static void setint(int fd, int level, int name, int v)
{
    if (setsockopt(fd, level, name, &v, sizeof v) != 0) { perror("setsockopt"); exit(2); }
}

static void pair(int l, int *c, int *s)
{
    *c = sock();
    struct sockaddr_storage a = lo;
    ((struct sockaddr_in6 *)&a)->sin6_port = htons(port(l, 0));
    if (connect(*c, (struct sockaddr *)&a, lolen) != 0) { perror("connect"); exit(2); }
    *s = accept(l, NULL, NULL);
    if (*s < 0) { perror("accept"); exit(2); }
}

static unsigned char pat(long i, int k) { return (unsigned char)(i % 251 + k); }

/* Writes the pattern of stream k until neither the peer's window nor our send buffer
 * take more; returns the byte count. */
static long fill(int fd, int k)
{
    long n = 0;
    unsigned char buf[4096];
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int idle = 0; idle < 5;) {
        for (int i = 0; i < (int)sizeof buf; i++) buf[i] = pat(n + i, k);
        ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
        if (w > 0) { n += w; idle = 0; continue; }
        if (errno != EAGAIN) { perror("fill"); exit(2); }
        idle++;
        wl_sleep_ms(20);
    }
    fcntl(fd, F_SETFL, 0);
    return n;
}

/* Reads `want` bytes of stream k and then expects EOF (eof) or nothing more yet. */
static void drain(int fd, int k, long want, int eof, const char *name)
{
    unsigned char buf[65536];
    long got = 0;
    double end = wl_now() + 10;
    while (wl_now() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN) continue;
        if (r < 0) { wl_fail("%s: read after %ld of %ld bytes: %s", name, got, want, strerror(errno)); return; }
        if (r == 0) break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pat(got + i, k)) { wl_fail("%s: byte %ld damaged", name, got + i); return; }
        got += r;
        if (got == want && !eof) break;
    }
    if (got != want) wl_fail("%s: %ld bytes arrived, %ld were queued", name, got, want);
    else if (eof && recv(fd, buf, 1, MSG_DONTWAIT) != 0) wl_fail("%s: no EOF after the data", name);
}

static void expect_text(int fd, const char *want, const char *name)
{
    char buf[64] = "";
    struct pollfd p = { fd, POLLIN, 0 };
    poll(&p, 1, 5000);
    ssize_t r = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (r != (ssize_t)strlen(want) || memcmp(buf, want, r) != 0) wl_fail("%s: read %zd bytes '%s', want '%s'", name, r, r > 0 ? buf : "", want);
}

static void expect_epipe(int fd, const char *name)
{
    if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE) wl_fail("%s: write did not fail with EPIPE (%s)", name, strerror(errno));
}

static void expect_eof(int fd, const char *name)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    if (r != 0) wl_fail("%s: read gave %zd (%s), want EOF", name, r, r < 0 ? strerror(errno) : "data");
}

static void expect_state(int fd, int want, const char *name)
{
    int s = wait_state(fd, want);
    if (s != want) wl_fail("%s: state %d, want %d", name, s, want);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    const char *mode = argc > 2 ? argv[2] : "4";
    memset(&lo, 0, sizeof lo);
    if (mode[0] == '4') {
        struct sockaddr_in *a = (struct sockaddr_in *)&lo;
        family = a->sin_family = AF_INET;
        inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
        lolen = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&lo;
        family = a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, mode[0] == 'm' ? "::ffff:127.0.0.1" : "::1", &a->sin6_addr);
        lolen = sizeof *a;
    }
    int l = sock();
    if (bind(l, (struct sockaddr *)&lo, lolen) != 0 || listen(l, 8) != 0) { perror("listen"); return 2; }

    int c1, s1, c2, s2, c3, s3, c4, s4, c5, s5, c6, s6;
    pair(l, &c1, &s1);
    send(s1, "pre-1", 5, 0);
    send(c1, "hello-1", 7, 0);
    shutdown(c1, SHUT_WR);

    pair(l, &c2, &s2);
    setint(s2, SOL_SOCKET, SO_RCVBUF, 131072);
    setint(c2, SOL_SOCKET, SO_SNDBUF, 131072);
    long n2 = fill(c2, 2);
    shutdown(c2, SHUT_WR);

    pair(l, &c3, &s3);
    setint(s3, SOL_SOCKET, SO_RCVBUF, 131072);
    setint(c3, SOL_SOCKET, SO_SNDBUF, 131072);
    long n3 = fill(c3, 3);
    shutdown(c3, SHUT_WR);
    shutdown(s3, SHUT_WR);

    pair(l, &c4, &s4);
    setint(c4, SOL_SOCKET, SO_RCVBUF, 131072);
    shutdown(c4, SHUT_WR);
    wait_state(s4, TCP_CLOSE_WAIT);
    setint(s4, SOL_SOCKET, SO_SNDBUF, 131072);
    long n4 = fill(s4, 4);
    shutdown(s4, SHUT_WR);

    pair(l, &c5, &s5);
    close(s5);
    wait_state(c5, TCP_CLOSE);
    char c;
    if (recv(c5, &c, 1, 0) != -1 || errno != ECONNRESET) { fprintf(stderr, "p5 was not reset\n"); return 2; }

    pair(l, &c6, &s6);
    setint(c6, SOL_SOCKET, SO_RCVBUF, 131072);
    setint(s6, SOL_SOCKET, SO_RCVBUF, 131072);
    setint(c6, SOL_SOCKET, SO_SNDBUF, 131072);
    setint(s6, SOL_SOCKET, SO_SNDBUF, 131072);
    long n6c = fill(c6, 6), n6s = fill(s6, 7);

    int u = sock(), b = sock();
    if (bind(b, (struct sockaddr *)&lo, lolen) != 0) { perror("bind"); return 2; }

    struct { int fd, st; const char *name; } want[] = {
        { c1, TCP_FIN_WAIT2, "p1 client" }, { s1, TCP_CLOSE_WAIT, "p1 server" },
        { c2, TCP_FIN_WAIT1, "p2 client" }, { s2, TCP_ESTABLISHED, "p2 server" },
        { c3, TCP_CLOSING, "p3 client" }, { s3, TCP_FIN_WAIT2, "p3 server" },
        { c4, TCP_FIN_WAIT2, "p4 client" }, { s4, TCP_LAST_ACK, "p4 server" },
        { c5, TCP_CLOSE, "p5 client" }, { c6, TCP_ESTABLISHED, "p6 client" }, { s6, TCP_ESTABLISHED, "p6 server" },
        { u, TCP_CLOSE, "unconnected" }, { b, TCP_CLOSE, "bound" }, { l, TCP_LISTEN, "listener" },
    };
    int n = sizeof want / sizeof want[0], ports[32][2];
    for (int i = 0; i < n; i++) {
        if (wait_state(want[i].fd, want[i].st) != want[i].st) {
            fprintf(stderr, "%s: state %d before the dump, want %d\n", want[i].name, state(want[i].fd), want[i].st);
            return 2;
        }
        ports[i][0] = port(want[i].fd, 0);
        ports[i][1] = port(want[i].fd, 1);
    }
    printf("queued: p2 %ld p3 %ld p4 %ld p6 %ld/%ld\n", n2, n3, n4, n6c, n6s);
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d\n", port(l, 0));
    wl_write_file("port", pbuf);
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < n; i++) {
        int s = state(want[i].fd);
        if (s != want[i].st) wl_fail("%s: state %d after restore, want %d", want[i].name, s, want[i].st);
        if (port(want[i].fd, 0) != ports[i][0] || port(want[i].fd, 1) != ports[i][1])
            wl_fail("%s: ports %d/%d, want %d/%d", want[i].name, port(want[i].fd, 0), port(want[i].fd, 1), ports[i][0], ports[i][1]);
    }
    expect_text(s1, "hello-1", "p1 server");
    expect_eof(s1, "p1 server");
    expect_text(c1, "pre-1", "p1 client");
    send(s1, "post-1", 6, MSG_NOSIGNAL);
    expect_text(c1, "post-1", "p1 client");
    expect_epipe(c1, "p1 client");
    drain(s2, 2, n2, 1, "p2 server");
    expect_state(c2, TCP_FIN_WAIT2, "p2 client after the server read all");
    expect_eof(c3, "p3 client");
    expect_epipe(c3, "p3 client");
    drain(s3, 3, n3, 1, "p3 server");
    expect_state(c3, TCP_CLOSE, "p3 client after its FIN was acknowledged");
    expect_eof(s4, "p4 server");
    expect_epipe(s4, "p4 server");
    drain(c4, 4, n4, 1, "p4 client");
    expect_state(s4, TCP_CLOSE, "p4 server after its FIN was acknowledged");
    expect_epipe(c5, "p5 client");
    expect_eof(c5, "p5 client");
    drain(s6, 6, n6c, 0, "p6 server");
    drain(c6, 7, n6s, 0, "p6 client");
    send(c6, "ping", 4, MSG_NOSIGNAL);
    expect_text(s6, "ping", "p6 server");
    if (listen(b, 1) != 0) wl_fail("bound socket: listen: %s", strerror(errno));
    int x, y;
    pair(b, &x, &y);
    pair(l, &x, &y);
    struct sockaddr_storage a = lo;
    ((struct sockaddr_in6 *)&a)->sin6_port = htons(port(l, 0));
    if (connect(u, (struct sockaddr *)&a, lolen) != 0) wl_fail("unconnected socket: connect: %s", strerror(errno));
    wl_finish();
}
