/* inet: TCP listeners on 127.0.0.1 and [::1] (v6only), a UDP socket bound on 127.0.0.1 and
 * one on [::1] connected to the test's UDP port (argv[2]), each with socket options set.
 * Every accepted connection gets a greeting of GREET bytes (i % 251) at once; what a
 * client sends is read and echoed back only after go, so it waits in the receive queue
 * until then. UDP datagrams are echoed at any time. DIR/ports holds
 * "L4 L6 U4 U6". After go the server keeps serving until DIR/done appears, then checks
 * that every option and file flag is as it was set and writes the result. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define GREET (256 * 1024)
#define MAXC 16

struct conn { int fd; char *out; size_t len, off; };
static struct conn conns[MAXC];
static int nconns;
static char fail[512];

#define CHECK(cond, ...) do { if (!(cond) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) != 0) return -errno;
    return v;
}

static void setopt(int fd, int level, int name, int v)
{
    if (setsockopt(fd, level, name, &v, sizeof v) != 0) { perror("setsockopt"); exit(2); }
}

static int port_of(int fd)
{
    struct sockaddr_in6 a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin6_port); /* same offset in sockaddr_in */
}

static int make(int family, int type, const char *addr, int port)
{
    int fd = socket(family, type, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    if (family == AF_INET6) setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET; a->sin_port = htons(port); inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6; a->sin6_port = htons(port); inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) { perror("bind"); exit(2); }
    return fd;
}

static void queue_out(struct conn *c, const char *data, size_t n)
{
    c->out = realloc(c->out, c->len + n);
    memcpy(c->out + c->len, data, n);
    c->len += n;
}

static void flush_out(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = write(c->fd, c->out + c->off, c->len - c->off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
}

static void accept_one(int l)
{
    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0 || nconns == MAXC) { if (fd >= 0) close(fd); return; }
    setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, 99);
    struct conn *c = &conns[nconns++];
    c->fd = fd;
    char *g = malloc(GREET);
    for (int i = 0; i < GREET; i++) g[i] = (char)(i % 251);
    queue_out(c, g, GREET);
    free(g);
    flush_out(c);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (argc < 3) { fprintf(stderr, "usage: inet DIR UDP6PEERPORT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int l4 = make(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
    setopt(l4, SOL_SOCKET, SO_REUSEADDR, 1);
    setopt(l4, SOL_SOCKET, SO_KEEPALIVE, 1);
    setopt(l4, IPPROTO_TCP, TCP_KEEPIDLE, 77);
    setopt(l4, IPPROTO_TCP, TCP_KEEPINTVL, 11);
    setopt(l4, IPPROTO_TCP, TCP_KEEPCNT, 5);
    setopt(l4, IPPROTO_TCP, TCP_NODELAY, 1);
    setopt(l4, SOL_SOCKET, SO_RCVBUF, 65536);
    struct timeval snd = { 3, 250000 }, rcv = { 1, 500000 }, tv;
    setsockopt(l4, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    if (listen(l4, 16) != 0) { perror("listen"); return 2; }
    int l6 = make(AF_INET6, SOCK_STREAM, "::1", 0);
    setopt(l6, SOL_SOCKET, SO_REUSEPORT, 1);
    if (listen(l6, 7) != 0) { perror("listen6"); return 2; }
    int u4 = make(AF_INET, SOCK_DGRAM, "127.0.0.1", 0);
    if (setsockopt(u4, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) != 0) { perror("SO_BINDTODEVICE"); return 2; }
    setsockopt(u4, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    setopt(u4, SOL_SOCKET, SO_BROADCAST, 1);
    setopt(u4, SOL_SOCKET, SO_PRIORITY, 3);
    fcntl(u4, F_SETFL, O_NONBLOCK);
    int u6 = make(AF_INET6, SOCK_DGRAM, "::1", 0);
    struct sockaddr_in6 peer = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET6, "::1", &peer.sin6_addr);
    if (connect(u6, (struct sockaddr *)&peer, sizeof peer) != 0) { perror("connect u6"); return 2; }
    int rcvbuf = opt(l4, SOL_SOCKET, SO_RCVBUF);
    /* The kernel keeps timeouts in jiffies: compare with what it reported at first. */
    struct timeval snd0, rcv0;
    socklen_t tl = sizeof tv;
    getsockopt(l4, SOL_SOCKET, SO_SNDTIMEO, &snd0, &tl);
    tl = sizeof tv;
    getsockopt(u4, SOL_SOCKET, SO_RCVTIMEO, &rcv0, &tl);

    char ports[128];
    snprintf(ports, sizeof ports, "%d %d %d %d\n", port_of(l4), port_of(l6), port_of(u4), port_of(u6));
    wl_write_file("ports", ports);
    wl_ready();

    struct stat st;
    while (stat("done", &st) != 0) {
        int go = wl_go();
        struct pollfd p[4 + MAXC];
        int fds[4] = { l4, l6, u4, u6 };
        for (int i = 0; i < 4; i++) p[i] = (struct pollfd){ fds[i], POLLIN, 0 };
        for (int i = 0; i < nconns; i++)
            p[4 + i] = (struct pollfd){ conns[i].fd, (short)((go ? POLLIN : 0) | (conns[i].len ? POLLOUT : 0)), 0 };
        if (poll(p, 4 + nconns, 50) <= 0) continue;
        if (p[0].revents & POLLIN) accept_one(l4);
        if (p[1].revents & POLLIN) accept_one(l6);
        for (int i = 2; i < 4; i++) {
            if (!(p[i].revents & POLLIN)) continue;
            char buf[2048];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(fds[i], buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
            if (n > 0) sendto(fds[i], buf, (size_t)n, 0, i == 3 ? NULL : (struct sockaddr *)&from, i == 3 ? 0 : fl);
        }
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (c->fd < 0) continue;
            if (p[4 + i].revents & POLLIN) {
                char buf[65536];
                ssize_t n = read(c->fd, buf, sizeof buf);
                if (n > 0) queue_out(c, buf, (size_t)n);
                else if (n == 0 || (errno != EAGAIN && errno != EINTR)) { close(c->fd); c->fd = -1; continue; }
            }
            if (c->len) flush_out(c);
        }
    }

    CHECK(opt(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1, "l4 is not listening");
    CHECK(opt(l4, SOL_SOCKET, SO_REUSEADDR) == 1, "l4 SO_REUSEADDR %d", opt(l4, SOL_SOCKET, SO_REUSEADDR));
    CHECK(opt(l4, SOL_SOCKET, SO_REUSEPORT) == 0, "l4 SO_REUSEPORT %d", opt(l4, SOL_SOCKET, SO_REUSEPORT));
    CHECK(opt(l4, SOL_SOCKET, SO_KEEPALIVE) == 1, "l4 SO_KEEPALIVE lost");
    CHECK(opt(l4, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "l4 TCP_KEEPIDLE %d", opt(l4, IPPROTO_TCP, TCP_KEEPIDLE));
    CHECK(opt(l4, IPPROTO_TCP, TCP_KEEPINTVL) == 11, "l4 TCP_KEEPINTVL %d", opt(l4, IPPROTO_TCP, TCP_KEEPINTVL));
    CHECK(opt(l4, IPPROTO_TCP, TCP_KEEPCNT) == 5, "l4 TCP_KEEPCNT %d", opt(l4, IPPROTO_TCP, TCP_KEEPCNT));
    CHECK(opt(l4, IPPROTO_TCP, TCP_NODELAY) == 1, "l4 TCP_NODELAY lost");
    CHECK(opt(l4, SOL_SOCKET, SO_RCVBUF) == rcvbuf, "l4 SO_RCVBUF %d, want %d", opt(l4, SOL_SOCKET, SO_RCVBUF), rcvbuf);
    tl = sizeof tv;
    getsockopt(l4, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl);
    CHECK(tv.tv_sec == snd0.tv_sec && tv.tv_usec == snd0.tv_usec && tv.tv_sec == 3, "l4 SO_SNDTIMEO %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    CHECK(!(fcntl(l4, F_GETFL) & O_NONBLOCK), "l4 became non-blocking");
    CHECK(opt(l6, SOL_SOCKET, SO_ACCEPTCONN) == 1, "l6 is not listening");
    CHECK(opt(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "l6 IPV6_V6ONLY lost");
    CHECK(opt(l6, SOL_SOCKET, SO_REUSEPORT) == 1, "l6 SO_REUSEPORT lost");
    CHECK(opt(l6, SOL_SOCKET, SO_REUSEADDR) == 0, "l6 SO_REUSEADDR %d", opt(l6, SOL_SOCKET, SO_REUSEADDR));
    char dev[16] = "";
    socklen_t dl = sizeof dev;
    getsockopt(u4, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl);
    CHECK(strcmp(dev, "lo") == 0, "u4 SO_BINDTODEVICE '%s'", dev);
    tl = sizeof tv;
    getsockopt(u4, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl);
    CHECK(tv.tv_sec == rcv0.tv_sec && tv.tv_usec == rcv0.tv_usec && tv.tv_sec == 1, "u4 SO_RCVTIMEO %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    CHECK(opt(u4, SOL_SOCKET, SO_BROADCAST) == 1, "u4 SO_BROADCAST lost");
    CHECK(opt(u4, SOL_SOCKET, SO_PRIORITY) == 3, "u4 SO_PRIORITY %d", opt(u4, SOL_SOCKET, SO_PRIORITY));
    CHECK(fcntl(u4, F_GETFL) & O_NONBLOCK, "u4 lost O_NONBLOCK");
    CHECK(opt(u6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "u6 IPV6_V6ONLY lost");
    struct sockaddr_in6 got;
    socklen_t gl = sizeof got;
    CHECK(getpeername(u6, (struct sockaddr *)&got, &gl) == 0 && got.sin6_port == peer.sin6_port, "u6 is no longer connected");
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd < 0) continue;
        CHECK(opt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY) == 1, "connection %d lost TCP_NODELAY", i);
        CHECK(opt(conns[i].fd, IPPROTO_TCP, TCP_KEEPIDLE) == 99, "connection %d TCP_KEEPIDLE %d", i, opt(conns[i].fd, IPPROTO_TCP, TCP_KEEPIDLE));
        CHECK(fcntl(conns[i].fd, F_GETFL) & O_NONBLOCK, "connection %d lost O_NONBLOCK", i);
    }
    if (fail[0]) strcat(fail, "\n");
    char res[600];
    snprintf(res, sizeof res, fail[0] ? "FAIL: %s" : "PASS\n", fail);
    wl_write_file("result", res);
    return 0;
}
