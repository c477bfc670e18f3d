/* inet-mcast: UDP sockets with options CRIU's image has no field for. r4 joined 239.1.2.3
 * on lo, has IP_RECVERR, path-MTU DO, SO_BROADCAST, multicast loop off and a locked
 * filter; s4 sends from 127.0.0.1 with multicast TTL 7 and path-MTU PROBE. r6 joined
 * ff05::1:3 on lo with IPV6_RECVERR and path-MTU DO; s6 sends on interface 1 with hops 9;
 * q6 has multicast loop off. After go: every option reads back the same, r4 and r6 are
 * members (MCAST_MSFILTER, /proc/self/net/igmp, igmp6) and the senders are not, a datagram
 * sent to 239.1.2.3 arrives (lo routes no IPv6 multicast), the filter cannot be detached,
 * and r4 can leave its group. */
#include "workload.h"
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define PORT4 47601
#define PORT6 47602

static int r4, s4, r6, s6, q6;
static struct in_addr group4;
static struct in6_addr group6;

static int geti(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -100 - errno;
}

static void seti(int fd, int level, int name, int v, const char *what)
{
    if (setsockopt(fd, level, name, &v, sizeof v) != 0) { perror(what); exit(2); }
}

static void expect(int fd, int level, int name, int want, const char *what)
{
    int v = geti(fd, level, name);
    if (v != want) wl_fail("%s is %d, want %d", what, v, want);
}

/* 1 when fd joined the group for every source on ifindex, 0 when not a member. */
static int member(int fd, int family, const void *group)
{
    char buf[GROUP_FILTER_SIZE(1)];
    struct group_filter *gf = (struct group_filter *)buf;
    memset(buf, 0, sizeof buf);
    gf->gf_interface = 1;
    gf->gf_group.ss_family = family;
    if (family == AF_INET) ((struct sockaddr_in *)&gf->gf_group)->sin_addr = *(const struct in_addr *)group;
    else ((struct sockaddr_in6 *)&gf->gf_group)->sin6_addr = *(const struct in6_addr *)group;
    socklen_t l = sizeof buf;
    if (getsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, MCAST_MSFILTER, gf, &l) != 0) return 0;
    return gf->gf_fmode == MCAST_EXCLUDE && gf->gf_numsrc == 0 ? 1 : -1;
}

static int listed(const char *path, const char *text)
{
    char buf[16384] = { 0 };
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    return n > 0 && strstr(buf, text) != NULL;
}

static const char *deliver(int from, int to, const char *text)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT4), .sin_addr = group4 };
    char buf[64] = { 0 };
    struct pollfd p = { to, POLLIN, 0 };
    if (sendto(from, text, strlen(text), 0, (struct sockaddr *)&a, sizeof a) != (ssize_t)strlen(text)) return "send to the group failed";
    if (poll(&p, 1, 2000) != 1) return "nothing arrived from the group";
    if (recv(to, buf, sizeof buf - 1, 0) != (ssize_t)strlen(text) || strcmp(buf, text) != 0) return "another datagram arrived";
    return NULL;
}

static int udp(int family, int port)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    if (!port) return fd;
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    if (family == AF_INET6) seti(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
    if (bind(fd, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6, family == AF_INET ? sizeof a4 : sizeof a6) != 0) {
        perror("bind"); exit(2);
    }
    return fd;
}

static void setup(void)
{
    inet_pton(AF_INET, "239.1.2.3", &group4);
    inet_pton(AF_INET6, "ff05::1:3", &group6);
    r4 = udp(AF_INET, PORT4); s4 = udp(AF_INET, 0);
    r6 = udp(AF_INET6, PORT6); s6 = udp(AF_INET6, 0); q6 = udp(AF_INET6, 0);
    struct ip_mreqn m = { .imr_multiaddr = group4, .imr_ifindex = 1 };
    if (setsockopt(r4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0) { perror("IP_ADD_MEMBERSHIP"); exit(2); }
    seti(r4, IPPROTO_IP, IP_RECVERR, 1, "IP_RECVERR");
    seti(r4, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
    seti(r4, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
    seti(r4, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
    struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };
    struct sock_fprog prog = { 1, code };
    if (setsockopt(r4, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) { perror("SO_ATTACH_FILTER"); exit(2); }
    seti(r4, SOL_SOCKET, SO_LOCK_FILTER, 1, "SO_LOCK_FILTER");
    struct in_addr lo = { htonl(INADDR_LOOPBACK) };
    if (setsockopt(s4, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo) != 0) { perror("IP_MULTICAST_IF"); exit(2); }
    seti(s4, IPPROTO_IP, IP_MULTICAST_TTL, 7, "IP_MULTICAST_TTL");
    seti(s4, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE, "IP_MTU_DISCOVER");
    struct ipv6_mreq m6 = { .ipv6mr_multiaddr = group6, .ipv6mr_interface = 1 };
    if (setsockopt(r6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m6, sizeof m6) != 0) { perror("IPV6_JOIN_GROUP"); exit(2); }
    seti(r6, IPPROTO_IPV6, IPV6_RECVERR, 1, "IPV6_RECVERR");
    seti(r6, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, "IPV6_MTU_DISCOVER");
    seti(s6, IPPROTO_IPV6, IPV6_MULTICAST_IF, 1, "IPV6_MULTICAST_IF");
    seti(s6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 9, "IPV6_MULTICAST_HOPS");
    seti(q6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
}

static void check_options(void)
{
    expect(r4, IPPROTO_IP, IP_RECVERR, 1, "r4 IP_RECVERR");
    expect(r4, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "r4 IP_MTU_DISCOVER");
    expect(r4, SOL_SOCKET, SO_BROADCAST, 1, "r4 SO_BROADCAST");
    expect(r4, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "r4 IP_MULTICAST_LOOP");
    expect(r4, SOL_SOCKET, SO_LOCK_FILTER, 1, "r4 SO_LOCK_FILTER");
    expect(s4, IPPROTO_IP, IP_MULTICAST_TTL, 7, "s4 IP_MULTICAST_TTL");
    expect(s4, IPPROTO_IP, IP_MULTICAST_LOOP, 1, "s4 IP_MULTICAST_LOOP");
    expect(s4, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE, "s4 IP_MTU_DISCOVER");
    expect(s4, IPPROTO_IP, IP_RECVERR, 0, "s4 IP_RECVERR");
    struct in_addr ifa = { 0 };
    socklen_t l = sizeof ifa;
    if (getsockopt(s4, IPPROTO_IP, IP_MULTICAST_IF, &ifa, &l) != 0 || ifa.s_addr != htonl(INADDR_LOOPBACK)) wl_fail("s4 IP_MULTICAST_IF is %08x", ntohl(ifa.s_addr));
    expect(r6, IPPROTO_IPV6, IPV6_RECVERR, 1, "r6 IPV6_RECVERR");
    expect(r6, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, "r6 IPV6_MTU_DISCOVER");
    expect(s6, IPPROTO_IPV6, IPV6_MULTICAST_IF, 1, "s6 IPV6_MULTICAST_IF");
    expect(s6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 9, "s6 IPV6_MULTICAST_HOPS");
    expect(s6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1, "s6 IPV6_MULTICAST_LOOP");
    expect(q6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "q6 IPV6_MULTICAST_LOOP");
    expect(q6, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_WANT, "q6 IPV6_MTU_DISCOVER");
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    setup();
    const char *e = deliver(s4, r4, "before4");
    if (e) { fprintf(stderr, "inet-mcast before dump: %s\n", e); return 2; }
    wl_ready();
    wl_wait_go();
    check_options();
    if (member(r4, AF_INET, &group4) != 1) wl_fail("r4 is not a member of 239.1.2.3 on lo");
    if (member(r6, AF_INET6, &group6) != 1) wl_fail("r6 is not a member of ff05::1:3 on lo");
    if (member(s4, AF_INET, &group4) != 0 || member(s6, AF_INET6, &group6) != 0) wl_fail("a sender joined a group");
    if (!listed("/proc/self/net/igmp", "030201EF")) wl_fail("239.1.2.3 is not in /proc/self/net/igmp");
    if (!listed("/proc/self/net/igmp6", "1    lo              ff050000000000000000000000010003")) wl_fail("ff05::1:3 is not on lo in /proc/self/net/igmp6");
    if ((e = deliver(s4, r4, "after4"))) wl_fail("239.1.2.3: %s", e);
    int zero = 0;
    if (setsockopt(r4, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero) == 0 || errno != EPERM) wl_fail("the locked filter could be detached");
    struct ip_mreqn m = { .imr_multiaddr = group4, .imr_ifindex = 1 };
    if (setsockopt(r4, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) != 0) wl_fail("IP_DROP_MEMBERSHIP: %s", strerror(errno));
    wl_finish();
}
