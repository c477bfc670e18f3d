/* inet-kinds: inet sockets beyond TCP and UDP, and IP-level options: raw ICMP sockets
 * (IPv4, IPv6) with ICMP type filters and hop limits, a raw IPPROTO_RAW socket
 * (IP_HDRINCL) connected to 127.0.0.1, a UDP-lite socket, UDP sockets with IP_TOS/TTL/
 * PKTINFO and their IPv6 twins, one bound with IP_FREEBIND to 192.0.2.77 (no such local
 * address), one with a classic BPF filter that drops datagrams under 4 bytes of payload. After go:
 * every option reads back as set, addresses are kept, and each socket behaves: echo
 * replies reach the raw socket, datagrams arrive (with IP_PKTINFO), the filter filters. */
#include "workload.h"
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef ICMP_FILTER
#define ICMP_FILTER 1   /* linux/icmp.h, which clashes with netinet/ip_icmp.h */
#endif
struct icmp_filter { uint32_t data; };

static int opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -errno;
}

static void setint(int fd, int level, int name, int v)
{
    if (setsockopt(fd, level, name, &v, sizeof v) != 0) { perror("setsockopt"); exit(2); }
}

static struct sockaddr_in v4(const char *a, int port)
{
    struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

static int sock4(int type, int proto, const char *addr)
{
    int fd = socket(AF_INET, type, proto);
    struct sockaddr_in a = v4(addr, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("socket4"); exit(2); }
    return fd;
}

static ssize_t recv_wait(int fd, void *buf, size_t n)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 2000) != 1) return -1;
    return recv(fd, buf, n, MSG_DONTWAIT);
}

static void send_self(int fd, const void *data, size_t n)
{
    struct sockaddr_storage a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    sendto(fd, data, n, 0, (struct sockaddr *)&a, l);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int r4 = sock4(SOCK_RAW, IPPROTO_ICMP, "127.0.0.1");
    struct icmp_filter f4 = { ~(1u << ICMP_ECHOREPLY) };
    if (setsockopt(r4, SOL_RAW, ICMP_FILTER, &f4, sizeof f4) != 0) { perror("ICMP_FILTER"); return 2; }
    setint(r4, IPPROTO_IP, IP_TTL, 33);
    int r6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    struct icmp6_filter f6;
    ICMP6_FILTER_SETBLOCKALL(&f6);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
    if (r6 < 0 || setsockopt(r6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof f6) != 0) { perror("ICMP6_FILTER"); return 2; }
    setint(r6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17);
    int rr = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    if (rr < 0 || connect(rr, (struct sockaddr *)&lo, sizeof lo) != 0) { perror("raw connect"); return 2; }
    int ul = sock4(SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1");
    int u4 = sock4(SOCK_DGRAM, 0, "127.0.0.1");
    setint(u4, IPPROTO_IP, IP_TOS, 0x10);
    setint(u4, IPPROTO_IP, IP_TTL, 7);
    setint(u4, IPPROTO_IP, IP_PKTINFO, 1);
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    if (u6 < 0 || bind(u6, (struct sockaddr *)&a6, sizeof a6) != 0) { perror("u6"); return 2; }
    setint(u6, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
    setint(u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
    setint(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    int fb = socket(AF_INET, SOCK_DGRAM, 0);
    setint(fb, IPPROTO_IP, IP_FREEBIND, 1);
    struct sockaddr_in away = v4("192.0.2.77", 0);
    if (bind(fb, (struct sockaddr *)&away, sizeof away) != 0) { perror("freebind"); return 2; }
    int flt = sock4(SOCK_DGRAM, 0, "127.0.0.1");
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 8 + 4, 0, 1), /* the UDP header counts */
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = { 4, code };
    if (setsockopt(flt, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) { perror("SO_ATTACH_FILTER"); return 2; }
    struct sockaddr_in before_fb;
    socklen_t bl = sizeof before_fb;
    getsockname(fb, (struct sockaddr *)&before_fb, &bl);
    wl_ready();
    wl_wait_go();

    if (opt(r4, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_ICMP || opt(r4, IPPROTO_IP, IP_TTL) != 33) wl_fail("r4: protocol or IP_TTL lost");
    struct icmp_filter g4 = { 0 };
    socklen_t gl = sizeof g4;
    getsockopt(r4, SOL_RAW, ICMP_FILTER, &g4, &gl);
    if (g4.data != f4.data) wl_fail("r4: ICMP_FILTER %x, want %x", g4.data, f4.data);
    struct icmp6_filter g6;
    gl = sizeof g6;
    memset(&g6, 0, sizeof g6);
    getsockopt(r6, IPPROTO_ICMPV6, ICMP6_FILTER, &g6, &gl);
    if (memcmp(&g6, &f6, sizeof f6) != 0) wl_fail("r6: ICMP6_FILTER lost");
    if (opt(r6, IPPROTO_IPV6, IPV6_UNICAST_HOPS) != 17) wl_fail("r6: IPV6_UNICAST_HOPS %d", opt(r6, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
    struct icmphdr echo = { .type = ICMP_ECHO, .un.echo.id = htons(77), .un.echo.sequence = htons(1) };
    echo.checksum = htons(~((ICMP_ECHO << 8) + 77 + 1) & 0xffff);
    struct sockaddr_in dst = v4("127.0.0.1", 0);
    char buf[256];
    if (sendto(r4, &echo, sizeof echo, 0, (struct sockaddr *)&dst, sizeof dst) != sizeof echo) wl_fail("r4: send: %s", strerror(errno));
    else if (recv_wait(r4, buf, sizeof buf) < 28 || buf[20] != ICMP_ECHOREPLY) wl_fail("r4: no echo reply (the filter lets only replies through)");
    if (opt(rr, IPPROTO_IP, IP_HDRINCL) != 1 || opt(rr, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_RAW) wl_fail("rr: IP_HDRINCL or protocol lost");
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    /* getpeername says ENOTCONN for raw sockets: a connected one sends without an address. */
    struct { struct iphdr ip; char data[4]; } pkt = { { .ihl = 5, .version = 4, .ttl = 64, .protocol = 253, .daddr = htonl(INADDR_LOOPBACK) }, "raw" };
    (void)peer; (void)pl;
    if (send(rr, &pkt, sizeof pkt, 0) != sizeof pkt) wl_fail("rr: no longer connected: %s", strerror(errno));
    if (opt(ul, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_UDPLITE) wl_fail("ul: protocol %d", opt(ul, SOL_SOCKET, SO_PROTOCOL));
    send_self(ul, "lite", 4);
    if (recv_wait(ul, buf, sizeof buf) != 4) wl_fail("ul: no datagram");
    if (opt(u4, IPPROTO_IP, IP_TOS) != 0x10 || opt(u4, IPPROTO_IP, IP_TTL) != 7 || opt(u4, IPPROTO_IP, IP_PKTINFO) != 1)
        wl_fail("u4: IP_TOS %d IP_TTL %d IP_PKTINFO %d", opt(u4, IPPROTO_IP, IP_TOS), opt(u4, IPPROTO_IP, IP_TTL), opt(u4, IPPROTO_IP, IP_PKTINFO));
    send_self(u4, "v4", 2);
    char cbuf[256];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct pollfd p = { u4, POLLIN, 0 };
    poll(&p, 1, 2000);
    if (recvmsg(u4, &mh, MSG_DONTWAIT) != 2 || !CMSG_FIRSTHDR(&mh) || CMSG_FIRSTHDR(&mh)->cmsg_type != IP_PKTINFO) wl_fail("u4: no IP_PKTINFO with the datagram");
    if (opt(u6, IPPROTO_IPV6, IPV6_TCLASS) != 0x20 || opt(u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS) != 9 || opt(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO) != 1)
        wl_fail("u6: IPV6_TCLASS %d HOPS %d RECVPKTINFO %d", opt(u6, IPPROTO_IPV6, IPV6_TCLASS), opt(u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS), opt(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO));
    struct sockaddr_in now_fb;
    bl = sizeof now_fb;
    getsockname(fb, (struct sockaddr *)&now_fb, &bl);
    if (opt(fb, IPPROTO_IP, IP_FREEBIND) != 1 || memcmp(&now_fb, &before_fb, sizeof now_fb) != 0) wl_fail("fb: IP_FREEBIND or its address 192.0.2.77 lost");
    struct sock_filter got[8];
    socklen_t n = 8;
    if (getsockopt(flt, SOL_SOCKET, SO_GET_FILTER, got, &n) != 0 || n != 4 || memcmp(got, code, sizeof code) != 0) wl_fail("flt: filter not as attached (%u instructions)", n);
    send_self(flt, "ab", 2);
    send_self(flt, "abcd", 4);
    if (recv_wait(flt, buf, sizeof buf) != 4) wl_fail("flt: the filter let a short datagram through, or dropped a long one");
    wl_finish();
}
