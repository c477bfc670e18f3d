/* tcp-close: a listener on 127.0.0.1 and one connection (client with TCP_NODELAY, bytes
 * queued both ways), for dump and restore with --tcp-close. argv[2] "closed": after go
 * both ends must be closed (state CLOSE, EOF to read, EPIPE to write) with their options;
 * "open": they must still carry data (the dump was refused or never restored). The
 * listener accepts a new connection either way. */
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

static void closed(int fd, const char *name)
{
    char c;
    if (state(fd) != TCP_CLOSE) wl_fail("%s: state %d, want CLOSE", name, state(fd));
    if (recv(fd, &c, 1, MSG_DONTWAIT) != 0) wl_fail("%s: no EOF (%s)", name, strerror(errno));
    if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE) wl_fail("%s: write did not fail with EPIPE", name);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int want_closed = argc > 2 && strcmp(argv[2], "closed") == 0;
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) { perror("listen"); return 2; }
    getsockname(l, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    int s = accept(l, NULL, NULL);
    write(c, "to-server", 9);
    write(s, "to-client", 9);
    wl_sleep_ms(20);
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d\n", ntohs(a.sin_port));
    wl_write_file("port", pbuf);
    wl_ready();
    wl_wait_go();

    if (want_closed) {
        closed(c, "client");
        closed(s, "server");
        int v = 0;
        socklen_t vl = sizeof v;
        getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
        if (v != 1) wl_fail("client lost TCP_NODELAY");
    } else {
        char buf[16] = "";
        if (read(s, buf, 9) != 9 || memcmp(buf, "to-server", 9) != 0) wl_fail("server: '%s'", buf);
        if (read(c, buf, 9) != 9 || memcmp(buf, "to-client", 9) != 0) wl_fail("client: '%s'", buf);
    }
    int n = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(n, (struct sockaddr *)&a, sizeof a) != 0 || accept(l, NULL, NULL) < 0) wl_fail("the listener does not accept: %s", strerror(errno));
    wl_finish();
}
