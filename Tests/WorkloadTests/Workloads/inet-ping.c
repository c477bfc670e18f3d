/* inet-ping: ICMP echo ("ping") sockets, IPv4 and IPv6, bound to loopback with an echo
 * identifier of their own (the port). After go: the identifiers are kept and an echo
 * request sent on each gets its reply. With argv[2] "ssm": a UDP socket that joined
 * 239.1.2.3 on lo for the source 127.0.0.1 only, which a dump must refuse. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>

static int ident(int fd)
{
    struct sockaddr_in6 a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin6_port);
}

static void echo(int fd, int family, const char *name)
{
    struct icmphdr h = { .type = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST, .un.echo.sequence = htons(5) };
    struct sockaddr_storage dst;
    memset(&dst, 0, sizeof dst);
    socklen_t dl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&dst;
        a->sin_family = AF_INET; a->sin_addr.s_addr = htonl(INADDR_LOOPBACK); dl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&dst;
        a->sin6_family = AF_INET6; a->sin6_addr = in6addr_loopback; dl = sizeof *a;
    }
    char buf[128];
    struct pollfd p = { fd, POLLIN, 0 };
    if (sendto(fd, &h, sizeof h, 0, (struct sockaddr *)&dst, dl) != sizeof h) wl_fail("%s: send: %s", name, strerror(errno));
    else if (poll(&p, 1, 2000) != 1 || recv(fd, buf, sizeof buf, 0) < (ssize_t)sizeof h) wl_fail("%s: no echo reply", name);
    else if (((struct icmphdr *)buf)->un.echo.sequence != htons(5)) wl_fail("%s: reply to another request", name);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int p4 = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), p6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(4242), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(4343), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    if (p4 < 0 || p6 < 0 || bind(p4, (struct sockaddr *)&a4, sizeof a4) != 0 || bind(p6, (struct sockaddr *)&a6, sizeof a6) != 0) {
        perror("ping socket"); return 2;
    }
    if (argc > 2 && strcmp(argv[2], "ssm") == 0) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct ip_mreq_source m = { .imr_interface.s_addr = htonl(INADDR_LOOPBACK), .imr_sourceaddr.s_addr = htonl(INADDR_LOOPBACK) };
        inet_pton(AF_INET, "239.1.2.3", &m.imr_multiaddr);
        if (setsockopt(u, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof m) != 0) { perror("IP_ADD_SOURCE_MEMBERSHIP"); return 2; }
    }
    wl_ready();
    wl_wait_go();
    if (ident(p4) != 4242 || ident(p6) != 4343) wl_fail("identifiers %d/%d, want 4242/4343", ident(p4), ident(p6));
    echo(p4, AF_INET, "ping4");
    echo(p6, AF_INET6, "ping6");
    wl_finish();
}
