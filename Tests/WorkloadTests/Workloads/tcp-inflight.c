/* tcp-inflight: a listener on 127.0.0.1 with two connections no one has accepted yet,
 * whose clients (in this process) already sent bytes: 100000 bytes of a pattern on the
 * first, a short text and then a FIN on the second. After go: accept returns them in the
 * order they came, each from its client's port, with every byte and the FIN, and the
 * connections carry data both ways. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define BIG 100000

static int port(int fd, int peer)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l)) != 0) return -errno;
    return ntohs(a.sin_port);
}

static long readall(int fd, unsigned char *buf, long max)
{
    long got = 0;
    while (got < max) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t r = read(fd, buf + got, max - got);
        if (r <= 0) break;
        got += r;
    }
    return got;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) { perror("listen"); return 2; }
    a.sin_port = htons(port(l, 0));
    int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c1, (struct sockaddr *)&a, sizeof a) != 0 || connect(c2, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    static unsigned char big[BIG], got[BIG + 1];
    for (int i = 0; i < BIG; i++) big[i] = (unsigned char)(i % 253);
    if (write(c1, big, BIG) != BIG || write(c2, "second", 6) != 6) { perror("write"); return 2; }
    shutdown(c2, SHUT_WR);
    wl_sleep_ms(50);
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d\n", port(l, 0));
    wl_write_file("port", pbuf);
    wl_ready();
    wl_wait_go();

    int s1 = accept(l, NULL, NULL), s2 = accept(l, NULL, NULL);
    if (s1 < 0 || s2 < 0) wl_fail("accept: %s", strerror(errno));
    else {
        if (port(s1, 1) != port(c1, 0) || port(s2, 1) != port(c2, 0))
            wl_fail("accepted from ports %d, %d; the clients are %d, %d", port(s1, 1), port(s2, 1), port(c1, 0), port(c2, 0));
        long n = readall(s1, got, BIG);
        if (n != BIG || memcmp(got, big, BIG) != 0) wl_fail("first connection: %ld bytes, want %d", n, BIG);
        if (recv(s1, got, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) wl_fail("first connection: more than %d bytes", BIG);
        n = readall(s2, got, BIG);
        if (n != 6 || memcmp(got, "second", 6) != 0) wl_fail("second connection: %ld bytes '%.*s'", n, (int)(n > 0 ? n : 0), got);
        write(s1, "back", 4);
        if (readall(c1, got, 4) != 4 || memcmp(got, "back", 4) != 0) wl_fail("first client got no reply");
        write(c1, "more", 4);
        if (readall(s1, got, 4) != 4 || memcmp(got, "more", 4) != 0) wl_fail("first connection: no more data after restore");
        if (write(s2, "bye", 3) != 3 || readall(c2, got, 3) != 3) wl_fail("second client got no reply");
    }
    fcntl(l, F_SETFL, O_NONBLOCK);
    if (accept(l, NULL, NULL) >= 0 || errno != EAGAIN) wl_fail("a third connection was pending");
    wl_finish();
}
