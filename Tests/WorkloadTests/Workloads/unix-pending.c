/* unix-pending TYPE (stream | seqpacket): a listener with six connections no one has
 * accepted yet, connected in an order that is not their sockets' inode order:
 *   c3  sent nothing;
 *   c0  sent three messages of 1, 700 and 5 bytes (records on seqpacket);
 *   c4  sent "tail", then shut its write side;
 *   c1  sent "gone", then closed its socket (the connection lives only in the queue);
 *   c5  closed its socket without sending;
 *   c2  sent "last" carrying, by SCM_RIGHTS, the read end of a pipe holding "piped"
 *       (the process closed both ends of the pipe: only the queue holds it).
 * After go: accept returns them in that order, each with exactly its bytes (and records),
 * EOF behind those whose client shut down or closed, the pipe with its bytes; the live
 * clients talk to the connection accepted for them; nothing more is pending.
 * With "quiet", no client sends or closes: only the order is at stake. With "passcred",
 * the listener has SO_PASSCRED (the dump must refuse). With "unlinked", the listener is
 * bound at DIR/p.sock, whose file is removed once the clients connected (and stays so). */
#include "workload.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int type, stream;

static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)(i * 7 + seed * 13 + (i >> 3)); }

static void put(int fd, size_t n, unsigned seed)
{
    unsigned char buf[1024];
    for (size_t i = 0; i < n; i++) buf[i] = pat(i, seed);
    if (send(fd, buf, n, MSG_DONTWAIT) != (ssize_t)n) { perror("send"); exit(2); }
}

/* One read of at most `max` bytes, after waiting for something to read. */
static ssize_t get(int fd, void *buf, size_t max, const char *what)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 3000) != 1) { wl_fail("%s: nothing to read", what); return -1; }
    ssize_t r = recv(fd, buf, max, MSG_DONTWAIT);
    if (r < 0) wl_fail("%s: recv: %s", what, strerror(errno));
    return r;
}

/* `n` bytes of pattern `seed`: one record on seqpacket, any split on a stream. */
static void expect(int fd, size_t n, unsigned seed, const char *what)
{
    unsigned char buf[4096];
    size_t got = 0;
    while (got < n && !wl_fail_msg[0]) {
        ssize_t r = get(fd, buf + got, stream ? n - got : sizeof buf, what);
        if (r <= 0) { if (r == 0) wl_fail("%s: EOF after %zu of %zu bytes", what, got, n); return; }
        got += (size_t)r;
        if (!stream && got != n) { wl_fail("%s: a record of %zu bytes, want %zu", what, got, n); return; }
    }
    for (size_t i = 0; i < n && !wl_fail_msg[0]; i++)
        if (buf[i] != pat(i, seed)) wl_fail("%s: byte %zu is %u, want %u", what, i, buf[i], pat(i, seed));
}

static void expect_text(int fd, const char *text, const char *what)
{
    char buf[64] = { 0 };
    ssize_t r = get(fd, buf, sizeof buf - 1, what);
    if (r >= 0 && ((size_t)r != strlen(text) || memcmp(buf, text, r) != 0)) wl_fail("%s: read '%s' (%zd bytes), want '%s'", what, buf, r, text);
}

static void expect_eof(int fd, const char *what)
{
    char c;
    ssize_t r = get(fd, &c, 1, what);
    if (r > 0) wl_fail("%s: more data where EOF was due", what);
}

static void expect_empty(int fd, const char *what)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    if (r >= 0 || errno != EAGAIN) wl_fail("%s: recv %zd (%s) where nothing was due", what, r, strerror(errno));
}

/* Both ends of a live connection reach each other. */
static void talk(int client, int acc, const char *what)
{
    char w[96];
    snprintf(w, sizeof w, "%s client->accepted", what);
    put(client, 40, 7); expect(acc, 40, 7, w);
    snprintf(w, sizeof w, "%s accepted->client", what);
    put(acc, 33, 8); expect(client, 33, 8, w);
}

static int accept_next(int l, int n)
{
    struct pollfd p = { l, POLLIN, 0 };
    if (poll(&p, 1, 3000) != 1) { wl_fail("connection %d: nothing to accept", n); return -1; }
    int a = accept(l, NULL, NULL);
    if (a < 0) wl_fail("connection %d: accept: %s", n, strerror(errno));
    return a;
}

static void no_more(int l)
{
    if (fcntl(l, F_SETFL, O_NONBLOCK) != 0 || accept(l, NULL, NULL) >= 0 || errno != EAGAIN)
        wl_fail("a seventh connection was pending (%s)", strerror(errno));
}

static void send_fd(int sk, const char *text, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { (void *)text, strlen(text) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(sk, &m, 0) != (ssize_t)strlen(text)) { perror("sendmsg"); exit(2); }
}

static int recv_fd(int sk, const char *text, const char *what)
{
    char buf[64] = { 0 }, cbuf[256];
    struct iovec iov = { buf, sizeof buf - 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct pollfd p = { sk, POLLIN, 0 };
    if (poll(&p, 1, 3000) != 1) { wl_fail("%s: nothing to read", what); return -1; }
    ssize_t r = recvmsg(sk, &m, MSG_DONTWAIT);
    struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    while (c && c->cmsg_type != SCM_RIGHTS) c = CMSG_NXTHDR(&m, c);  /* credentials come first with SO_PASSCRED */
    if (r != (ssize_t)strlen(text) || memcmp(buf, text, r) != 0) { wl_fail("%s: read '%s' (%zd), want '%s'", what, buf, r, text); return -1; }
    if (!c || c->cmsg_type != SCM_RIGHTS) { wl_fail("%s: no fd came with '%s'", what, text); return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    stream = argc < 3 || strcmp(argv[2], "seqpacket") != 0;
    type = stream ? SOCK_STREAM : SOCK_SEQPACKET;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int unlinked = argc > 3 && strcmp(argv[3], "unlinked") == 0;
    if (unlinked) snprintf(sa.sun_path, sizeof sa.sun_path, "p.sock");
    else snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "ocw-unix-pending-%d", (int)getpid());
    socklen_t salen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + !unlinked);
    int quiet = argc > 3 && strcmp(argv[3], "quiet") == 0, one = 1;
    int l = socket(AF_UNIX, type, 0);
    if (argc > 3 && strcmp(argv[3], "passcred") == 0 && setsockopt(l, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) { perror("SO_PASSCRED"); return 2; }
    if (l < 0 || bind(l, (struct sockaddr *)&sa, salen) != 0 || listen(l, 16) != 0) { perror("listener"); return 2; }

    /* made first, connected in another order: the queue's order is not the inodes' */
    int c[6];
    for (int i = 0; i < 6; i++) if ((c[i] = socket(AF_UNIX, type, 0)) < 0) { perror("socket"); return 2; }
    const int order[6] = { 3, 0, 4, 1, 5, 2 };
    for (int i = 0; i < 6; i++)
        if (connect(c[order[i]], (struct sockaddr *)&sa, salen) != 0) { perror("connect"); return 2; }
    if (unlinked) unlink("p.sock");
    if (quiet) {
        wl_ready();
        wl_wait_go();
        for (int i = 0; i < 6; i++) {
            char w[32];
            snprintf(w, sizeof w, "c%d", order[i]);
            int a = accept_next(l, i + 1);
            if (a >= 0) { expect_empty(a, w); talk(c[order[i]], a, w); }
        }
        no_more(l);
        wl_finish();
    }
    put(c[0], 1, 1); put(c[0], 700, 2); put(c[0], 5, 3);
    if (send(c[4], "tail", 4, 0) != 4 || shutdown(c[4], SHUT_WR) != 0) { perror("c4"); return 2; }
    if (send(c[1], "gone", 4, 0) != 4) { perror("c1"); return 2; }
    close(c[1]); close(c[5]);
    int pp[2];
    if (pipe(pp) != 0 || write(pp[1], "piped", 5) != 5) { perror("pipe"); return 2; }
    send_fd(c[2], "last", pp[0]);
    close(pp[0]); close(pp[1]);
    wl_ready();
    wl_wait_go();

    int a = accept_next(l, 1);          /* c3 */
    if (a >= 0) { expect_empty(a, "c3's connection"); talk(c[3], a, "c3"); }
    a = accept_next(l, 2);              /* c0 */
    if (a >= 0) {
        expect(a, 1, 1, "c0's message 1"); expect(a, 700, 2, "c0's message 2"); expect(a, 5, 3, "c0's message 3");
        expect_empty(a, "c0's connection after its messages");
        talk(c[0], a, "c0");
    }
    a = accept_next(l, 3);              /* c4 */
    if (a >= 0) {
        expect_text(a, "tail", "c4's connection");
        expect_eof(a, "c4's connection after its client shut down");
        put(a, 12, 9); expect(c[4], 12, 9, "c4 reading after its shutdown");
    }
    a = accept_next(l, 4);              /* c1, closed */
    if (a >= 0) {
        expect_text(a, "gone", "the closed c1's connection");
        expect_eof(a, "the closed c1's connection");
        if (send(a, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) wl_fail("send on the closed c1's connection: want EPIPE (%s)", strerror(errno));
    }
    a = accept_next(l, 5);              /* c5, closed */
    if (a >= 0) expect_eof(a, "the closed c5's connection");
    a = accept_next(l, 6);              /* c2 */
    if (a >= 0) {
        int p = recv_fd(a, "last", "c2's connection");
        if (p >= 0) {
            char buf[16] = { 0 };
            if (read(p, buf, sizeof buf) != 5 || memcmp(buf, "piped", 5) != 0 || read(p, buf, 1) != 0)
                wl_fail("the pipe in flight reads '%s', want 'piped' then EOF", buf);
        }
        talk(c[2], a, "c2");
    }
    no_more(l);
    if (unlinked && access("p.sock", F_OK) == 0) wl_fail("p.sock, removed before the dump, is back");
    wl_finish();
}
