/* tcp-syn-sent: a listener on 127.0.0.1 with a backlog of 0 and one connection waiting in
 * it, so the SYN of a second, non-blocking connect is dropped and that client stays in
 * SYN_SENT. After go: still SYN_SENT, with its port; once the first connection is
 * accepted, the retransmitted SYN gets through and the second connects and carries data. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static int state(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 ? ti.tcpi_state : -errno;
}

static int port(int fd, int peer)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l)) != 0) return -errno;
    return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 0) != 0) { perror("listen"); return 2; }
    getsockname(l, (struct sockaddr *)&a, &al);
    int c1 = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c1, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    write(c1, "first", 5);
    int c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(c2, (struct sockaddr *)&a, sizeof a) == 0 || errno != EINPROGRESS) { perror("connect 2"); return 2; }
    wl_sleep_ms(50);
    if (state(c2) != TCP_SYN_SENT) { fprintf(stderr, "state %d, want SYN_SENT\n", state(c2)); return 2; }
    int p2 = port(c2, 0);
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d\n", ntohs(a.sin_port));
    wl_write_file("port", pbuf);
    wl_ready();
    wl_wait_go();

    if (state(c2) != TCP_SYN_SENT) wl_fail("state %d after restore, want SYN_SENT", state(c2));
    if (port(c2, 0) != p2) wl_fail("local port %d, want %d", port(c2, 0), p2);
    char buf[8] = "";
    int s1 = accept(l, NULL, NULL);
    if (s1 < 0 || read(s1, buf, 5) != 5 || memcmp(buf, "first", 5) != 0) wl_fail("first connection: '%s'", buf);
    struct pollfd p = { c2, POLLOUT, 0 };
    int err = -1;
    socklen_t el = sizeof err;
    if (poll(&p, 1, 8000) != 1 || getsockopt(c2, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
        wl_fail("the SYN_SENT connection did not connect: poll %d, error %d, state %d", p.revents, err, state(c2));
    else {
        int s2 = accept(l, NULL, NULL);
        if (s2 < 0 || port(s2, 1) != p2) wl_fail("accepted from port %d, want %d", s2 < 0 ? -1 : port(s2, 1), p2);
        else if (write(c2, "hi", 2) != 2 || read(s2, buf, 2) != 2 || memcmp(buf, "hi", 2) != 0) wl_fail("no data on the second connection");
    }
    wl_finish();
}
