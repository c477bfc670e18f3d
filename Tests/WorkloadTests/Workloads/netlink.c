/* netlink: netlink sockets bound, grouped and connected.
 * - rt: NETLINK_ROUTE, kernel-assigned port, groups RTMGRP_LINK | RTMGRP_IPV4_IFADDR and
 *   group 33 (RTNLGRP_BRVLAN, above the first 32, by NETLINK_ADD_MEMBERSHIP);
 *   NETLINK_EXT_ACK and NETLINK_NO_ENOBUFS on;
 * - usr: NETLINK_USERSOCK, SOCK_DGRAM, bound to a chosen port with group 3, NETLINK_PKTINFO on;
 * - peer: NETLINK_USERSOCK connected to usr's port;
 * - idle: NETLINK_ROUTE never bound (no port until it sends).
 * With the argument "queued", peer sends usr a message before the dump (to be refused).
 * After go: ports, groups (NETLINK_LIST_MEMBERSHIPS), options, type and peer read back as
 * set; rt answers an RTM_GETLINK request for lo addressed to its port; a message sent to
 * group 3 arrives on usr with its NETLINK_PKTINFO naming the group, and one sent by peer
 * arrives from peer's port. */
#include "workload.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

static int nl(int type, int proto, unsigned port, unsigned groups)
{
    int s = socket(AF_NETLINK, type, proto);
    struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("netlink"); exit(2); }
    return s;
}

static int opt(int fd, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_NETLINK, name, &v, &l);
    return v;
}

static struct sockaddr_nl name_of(int fd, int peer)
{
    struct sockaddr_nl a = { 0 };
    socklen_t l = sizeof a;
    if (peer) getpeername(fd, (struct sockaddr *)&a, &l); else getsockname(fd, (struct sockaddr *)&a, &l);
    return a;
}

static void memberships(int fd, unsigned out[4])
{
    socklen_t l = 4 * sizeof(unsigned);
    memset(out, 0, l);
    getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, out, &l);
}

static int readable(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 3000) == 1;
}

static void send_to(int fd, unsigned port, unsigned groups, const char *text)
{
    char buf[64] = { 0 };
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    h->nlmsg_len = NLMSG_LENGTH(strlen(text) + 1);
    h->nlmsg_type = 0x100;
    strcpy(NLMSG_DATA(h), text);
    struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };
    /* To a group, the kernel also unicasts to port 0, which USERSOCK refuses: the
     * group still got it. */
    if (sendto(fd, buf, h->nlmsg_len, 0, port || groups ? (struct sockaddr *)&to : NULL, port || groups ? sizeof to : 0) < 0 &&
        !(groups && errno == ECONNREFUSED)) wl_fail("send '%s': %s", text, strerror(errno));
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int queued = argc > 2 && strcmp(argv[2], "queued") == 0, one = 1, group = 33;
    int rt = nl(SOCK_RAW, NETLINK_ROUTE, 0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR);
    if (setsockopt(rt, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) || setsockopt(rt, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) ||
        setsockopt(rt, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one)) { perror("rt options"); return 2; }
    unsigned port = 0x40000000u | (unsigned)getpid();
    int usr = nl(SOCK_DGRAM, NETLINK_USERSOCK, port, 1 << 2);
    if (setsockopt(usr, SOL_NETLINK, NETLINK_PKTINFO, &one, sizeof one)) return 2;
    int peer = nl(SOCK_RAW, NETLINK_USERSOCK, 0, 0);
    struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port };
    if (connect(peer, (struct sockaddr *)&to, sizeof to) != 0) return 2;
    int idle = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (idle < 0) return 2;
    if (queued) send_to(peer, 0, 0, "queued");
    struct sockaddr_nl rt_before = name_of(rt, 0), peer_before = name_of(peer, 0);
    unsigned groups_before[4], groups_after[4];
    memberships(rt, groups_before);
    wl_ready();
    wl_wait_go();

    struct sockaddr_nl a = name_of(rt, 0);
    if (a.nl_pid != rt_before.nl_pid) wl_fail("rt: port %u, want %u", a.nl_pid, rt_before.nl_pid);
    memberships(rt, groups_after);
    if (memcmp(groups_before, groups_after, sizeof groups_after) != 0 || !(groups_after[1] & 1)) wl_fail("rt: groups %#x %#x, want %#x %#x", groups_after[0], groups_after[1], groups_before[0], groups_before[1]);
    if (opt(rt, NETLINK_EXT_ACK) != 1 || opt(rt, NETLINK_NO_ENOBUFS) != 1 || opt(rt, NETLINK_PKTINFO) != 0) wl_fail("rt: options lost");
    if (opt(usr, NETLINK_PKTINFO) != 1) wl_fail("usr: NETLINK_PKTINFO lost");
    int type = 0;
    socklen_t l = sizeof type;
    getsockopt(usr, SOL_SOCKET, SO_TYPE, &type, &l);
    if (type != SOCK_DGRAM) wl_fail("usr: type %d, want SOCK_DGRAM", type);
    a = name_of(usr, 0);
    if (a.nl_pid != port || a.nl_groups != 1 << 2) wl_fail("usr: port %#x groups %#x", a.nl_pid, a.nl_groups);
    a = name_of(peer, 1);
    if (a.nl_pid != port) wl_fail("peer: connected to %#x, want %#x", a.nl_pid, port);
    if (name_of(peer, 0).nl_pid != peer_before.nl_pid) wl_fail("peer: port changed");
    if (name_of(idle, 0).nl_pid != 0) wl_fail("idle: bound to port %u", name_of(idle, 0).nl_pid);
    l = sizeof type;
    getsockopt(idle, SOL_SOCKET, SO_PROTOCOL, &type, &l);
    if (type != NETLINK_ROUTE) wl_fail("idle: protocol %d", type);

    if (queued) {
        char q[64];
        if (recv(usr, q, sizeof q, MSG_DONTWAIT) <= 0) wl_fail("usr: the queued message is gone");
    }
    struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
        .h = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 42 },
        .i = { .ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex("lo") },
    };
    char buf[8192];
    if (send(rt, &req, sizeof req, 0) != sizeof req) wl_fail("rt: send: %s", strerror(errno));
    ssize_t n = readable(rt) ? recv(rt, buf, sizeof buf, MSG_DONTWAIT) : -1;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    while (n > 0 && h->nlmsg_seq != 42 && readable(rt)) n = recv(rt, buf, sizeof buf, MSG_DONTWAIT);  /* skip events */
    if (n <= 0 || h->nlmsg_type != RTM_NEWLINK || h->nlmsg_seq != 42 || h->nlmsg_pid != rt_before.nl_pid) wl_fail("rt: no RTM_NEWLINK answer (%zd bytes, type %d)", n, n > 0 ? h->nlmsg_type : -1);

    int sender = nl(SOCK_RAW, NETLINK_USERSOCK, 0, 0);
    send_to(sender, 0, 1 << 2, "to-group");
    char ctl[64];
    struct sockaddr_nl from;
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    n = readable(usr) ? recvmsg(usr, &m, MSG_DONTWAIT) : -1;
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (n <= 0 || strcmp(NLMSG_DATA(h), "to-group") != 0) wl_fail("usr: no message to group 3 (%zd)", n);
    else if (!c || c->cmsg_type != NETLINK_PKTINFO || ((struct nl_pktinfo *)CMSG_DATA(c))->group != 3) wl_fail("usr: no NETLINK_PKTINFO for group 3");
    send_to(peer, 0, 0, "from-peer");
    m.msg_namelen = sizeof from;
    m.msg_controllen = sizeof ctl;
    n = readable(usr) ? recvmsg(usr, &m, MSG_DONTWAIT) : -1;
    if (n <= 0 || strcmp(NLMSG_DATA(h), "from-peer") != 0 || from.nl_pid != peer_before.nl_pid) wl_fail("usr: no message from peer (%zd, port %u)", n, from.nl_pid);
    wl_finish();
}
