/* unix-queue-only: what only a queue holds.
 * On a seqpacket socketpair sp (the process keeps both ends), three records carry, by
 * SCM_RIGHTS, descriptions the process closed after sending:
 *   "file"  a file of DIR opened at offset 3;
 *   "efd"   an eventfd counting 5;
 *   "sock"  one end of a stream socketpair with "hello" queued on it (the other end kept);
 *   "chain" one end of a datagram socketpair whose queue holds "inner" carrying the read
 *           end of a pipe holding "pipe-data" (writer closed); its peer was closed.
 * Besides: an unnamed datagram socket, disconnected, holding "u1" and "u22" from a peer
 * since closed; and one still connected to its closed peer, holding "dead-peer".
 * Stream and seqpacket connections whose peer wrote and closed: an accepted connection
 * holding "bye" and a seqpacket pair holding the records "r1" and "r22".
 * With the argument "epoll", one more record carries an epoll fd only the queue holds;
 * with "pending-data", a connection not yet accepted has sent "early" (the dump must
 * refuse either).
 * After go: each record arrives with its fd; the file is at offset 3; the eventfd reads 5; the socket reads
 * "hello" and talks to its partner; the chain's datagram brings the pipe, which reads
 * "pipe-data" then EOF, and a send on the chain socket is refused (ECONNREFUSED); the
 * disconnected socket reads its datagrams and has no peer (ENOTCONN); the other reads
 * "dead-peer" and a send fails with ECONNREFUSED; the connections closed by their peer
 * read their data (records kept) then EOF; nothing more is queued. */
#include "workload.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>

static void send_fd(int sk, const char *text, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { (void *)text, strlen(text) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(sk, &m, 0) != (ssize_t)strlen(text)) { perror("sendmsg"); exit(2); }
    close(fd);
}

/* The next record on `sk`: must be `text` carrying one fd, which is returned (-1: failed). */
static int recv_fd(int sk, const char *text)
{
    char buf[64] = { 0 }, ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { buf, sizeof buf - 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(sk, &m, MSG_DONTWAIT);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (n != (ssize_t)strlen(text) || memcmp(buf, text, n) != 0) { wl_fail("record '%s': got %zd bytes '%s' (%s)", text, n, buf, strerror(errno)); return -1; }
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) { wl_fail("record '%s' carries no fd", text); return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static void expect_recv(int sk, const char *text, const char *what)
{
    char buf[64] = { 0 };
    ssize_t n = recv(sk, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n != (ssize_t)strlen(text) || memcmp(buf, text, n) != 0) wl_fail("%s: got %zd bytes '%s' (%s), want '%s'", what, n, buf, strerror(errno), text);
}

static void expect_empty(int sk, const char *what)
{
    char c;
    if (recv(sk, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0) wl_fail("%s: more queued", what);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int with_epoll = argc > 2 && strcmp(argv[2], "epoll") == 0;
    int sp[2], x[2], y[2], p[2], u[2], d[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) || socketpair(AF_UNIX, SOCK_STREAM, 0, x) ||
        socketpair(AF_UNIX, SOCK_DGRAM, 0, y) || pipe(p) || socketpair(AF_UNIX, SOCK_DGRAM, 0, u) ||
        socketpair(AF_UNIX, SOCK_DGRAM, 0, d)) return 2;

    int f = open("queued.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 3, SEEK_SET) != 3) return 2;
    send_fd(sp[0], "file", f);
    int efd = eventfd(5, 0);
    if (efd < 0) return 2;
    send_fd(sp[0], "efd", efd);

    if (send(x[0], "hello", 5, 0) != 5) return 2;
    send_fd(sp[0], "sock", x[1]);

    if (write(p[1], "pipe-data", 9) != 9) return 2;
    close(p[1]);
    send_fd(y[1], "inner", p[0]);
    close(y[1]);
    send_fd(sp[0], "chain", y[0]);

    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    if (connect(u[0], &unspec, sizeof unspec.sa_family) != 0) return 2;
    if (send(u[1], "u1", 2, 0) != 2 || send(u[1], "u22", 3, 0) != 3) return 2;
    close(u[1]);
    if (send(d[1], "dead-peer", 9, 0) != 9) return 2;
    close(d[1]);
    struct sockaddr_un la = { .sun_family = AF_UNIX };
    snprintf(la.sun_path + 1, sizeof la.sun_path - 1, "queue-only-%d", getpid());
    socklen_t lalen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(la.sun_path + 1);
    int lst = socket(AF_UNIX, SOCK_STREAM, 0), cl = socket(AF_UNIX, SOCK_STREAM, 0), acc, sq[2];
    if (bind(lst, (struct sockaddr *)&la, lalen) || listen(lst, 1) || connect(cl, (struct sockaddr *)&la, lalen)) return 2;
    if ((acc = accept(lst, NULL, NULL)) < 0 || send(cl, "bye", 3, 0) != 3) return 2;
    close(cl);
    close(lst);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) || send(sq[1], "r1", 2, 0) != 2 || send(sq[1], "r22", 3, 0) != 3) return 2;
    close(sq[1]);
    if (argc > 2 && strcmp(argv[2], "pending-data") == 0) {
        int pl = socket(AF_UNIX, SOCK_STREAM, 0), pc = socket(AF_UNIX, SOCK_STREAM, 0);
        la.sun_path[1] = 'P';
        if (bind(pl, (struct sockaddr *)&la, lalen) || listen(pl, 1) || connect(pc, (struct sockaddr *)&la, lalen) || send(pc, "early", 5, 0) != 5) return 2;
    }
    if (with_epoll) send_fd(sp[0], "epoll", epoll_create1(0));
    wl_ready();
    wl_wait_go();

    int g = recv_fd(sp[1], "file");
    if (g >= 0) {
        char t[4] = { 0 };
        if (lseek(g, 0, SEEK_CUR) != 3) wl_fail("file in flight at offset %ld, want 3", (long)lseek(g, 0, SEEK_CUR));
        if (pread(g, t, 3, 3) != 3 || memcmp(t, "345", 3) != 0) wl_fail("file in flight reads '%s' at 3", t);
    }
    int ev = recv_fd(sp[1], "efd");
    uint64_t count = 0;
    if (ev >= 0 && (read(ev, &count, sizeof count) != sizeof count || count != 5)) wl_fail("eventfd in flight counts %llu, want 5", (unsigned long long)count);
    int s = recv_fd(sp[1], "sock");
    if (s >= 0) {
        expect_recv(s, "hello", "socket in flight");
        if (send(s, "ping", 4, 0) != 4) wl_fail("socket in flight: send: %s", strerror(errno));
        expect_recv(x[0], "ping", "partner of the socket in flight");
    }
    int c = recv_fd(sp[1], "chain");
    if (c >= 0) {
        int q = recv_fd(c, "inner");
        if (q >= 0) {
            char t[16] = { 0 };
            if (read(q, t, sizeof t) != 9 || memcmp(t, "pipe-data", 9) != 0) wl_fail("pipe in the chain reads '%s'", t);
            if (read(q, t, sizeof t) != 0) wl_fail("pipe in the chain: no EOF after its data");
        }
        expect_empty(c, "socket in the chain");
        if (send(c, "z", 1, MSG_DONTWAIT) != -1 || errno != ECONNREFUSED) wl_fail("socket in the chain: send to its closed peer did not fail with ECONNREFUSED (%s)", strerror(errno));
    }
    if (with_epoll && recv_fd(sp[1], "epoll") < 0) wl_fail("no epoll in flight");
    expect_empty(sp[1], "seqpacket");
    expect_recv(u[0], "u1", "disconnected dgram #1");
    expect_recv(u[0], "u22", "disconnected dgram #2");
    expect_empty(u[0], "disconnected dgram");
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    if (getpeername(u[0], (struct sockaddr *)&sa, &len) != -1 || errno != ENOTCONN) wl_fail("disconnected dgram has a peer");
    expect_recv(d[0], "dead-peer", "dgram of a closed peer");
    expect_empty(d[0], "dgram of a closed peer");
    if (send(d[0], "z", 1, MSG_DONTWAIT) != -1 || errno != ECONNREFUSED) wl_fail("dgram of a closed peer: send did not fail with ECONNREFUSED (%s)", strerror(errno));
    expect_recv(acc, "bye", "accepted connection closed by its client");
    char e;
    if (recv(acc, &e, 1, MSG_DONTWAIT) != 0) wl_fail("accepted connection closed by its client: no EOF after the data");
    expect_recv(sq[0], "r1", "seqpacket closed by its peer #1");
    expect_recv(sq[0], "r22", "seqpacket closed by its peer #2");
    if (recv(sq[0], &e, 1, MSG_DONTWAIT) != 0) wl_fail("seqpacket closed by its peer: no EOF after the records");
    wl_finish();
}
