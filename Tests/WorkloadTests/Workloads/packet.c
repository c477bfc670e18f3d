/* packet: AF_PACKET sockets on lo, for the ethertype 0x88b5 (local experimental).
 * - dgram: SOCK_DGRAM bound to lo, PACKET_AUXDATA and PACKET_ORIGDEV on, SO_RCVBUF set,
 *   one multicast membership (PACKET_ADD_MEMBERSHIP) on lo;
 * - ring: SOCK_RAW bound to lo, TPACKET_V2 with PACKET_RESERVE 64, an rx ring of 4
 *   blocks of 4096 bytes (8 frames of 2048) and a tx ring of 2 blocks (4 frames), not
 *   mapped before the dump;
 * - ring3: SOCK_RAW bound to lo, TPACKET_V3 with an rx ring of 2 blocks of 8192 bytes
 *   retired after 10 ms;
 * - fanout: SOCK_RAW bound to lo in fanout group 77 (PACKET_FANOUT_HASH);
 * - spkt: SOCK_PACKET bound to "lo";
 * - tx: an unbound SOCK_DGRAM socket to send with.
 * After go: options and bindings read back as set, lo is in the multicast group once (one
 * drop takes it out), the rings map at their size (and not larger), and one frame
 * sent on lo arrives on every receiving socket: with its auxdata on dgram, in the first
 * ring frame, in the first V3 block, on the fanout member, and whole (Ethernet header
 * first) on spkt; a frame put in the tx ring is sent and arrives on dgram. */
#include "workload.h"
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#define PROTO 0x88b5
static const char msg[] = "packet-after-restore";
static const unsigned char group[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };

static int opt(int fd, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_PACKET, name, &v, &l) != 0) return -1;
    return v;
}

static int packet(int type, int ifindex)
{
    int s = socket(AF_PACKET, type, htons(PROTO));
    if (s < 0) { perror("socket"); exit(2); }
    struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO), .sll_ifindex = ifindex };
    if (bind(s, (struct sockaddr *)&ll, sizeof ll) != 0) { perror("bind"); exit(2); }
    return s;
}

/* Whether lo lists the group among its multicast addresses (/proc/net/dev_mcast). */
static int on_lo(void)
{
    char line[256], dev[32], addr[64];
    int found = 0;
    FILE *f = fopen("/proc/net/dev_mcast", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%*d %31s %*d %*d %63s", dev, addr) == 2 && strcmp(dev, "lo") == 0 && strcmp(addr, "01005e0000fb") == 0) found = 1;
    if (f) fclose(f);
    return found;
}

static int readable(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 3000) == 1;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int lo = (int)if_nametoindex("lo"), one = 1;
    if (lo <= 0) return 2;

    int dgram = packet(SOCK_DGRAM, lo);
    int rcvbuf = 100000;
    struct packet_mreq mr = { .mr_ifindex = lo, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
    memcpy(mr.mr_address, group, 6);
    if (setsockopt(dgram, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) || setsockopt(dgram, SOL_PACKET, PACKET_ORIGDEV, &one, sizeof one) ||
        setsockopt(dgram, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) ||
        setsockopt(dgram, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) { perror("dgram options"); return 2; }
    socklen_t l = sizeof rcvbuf;
    getsockopt(dgram, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &l);

    int ring = packet(SOCK_RAW, lo), v2 = TPACKET_V2, reserve = 64;
    struct tpacket_req req = { .tp_block_size = 4096, .tp_block_nr = 4, .tp_frame_size = 2048, .tp_frame_nr = 8 };
    if (setsockopt(ring, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) || setsockopt(ring, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof reserve) ||
        setsockopt(ring, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) { perror("ring options"); return 2; }
    struct tpacket_req txreq = { .tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 4 };
    if (setsockopt(ring, SOL_PACKET, PACKET_TX_RING, &txreq, sizeof txreq)) { perror("tx ring"); return 2; }
    int ring3 = packet(SOCK_RAW, lo), v3 = TPACKET_V3;
    struct tpacket_req3 req3 = { .tp_block_size = 8192, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 8, .tp_retire_blk_tov = 10 };
    if (setsockopt(ring3, SOL_PACKET, PACKET_VERSION, &v3, sizeof v3) || setsockopt(ring3, SOL_PACKET, PACKET_RX_RING, &req3, sizeof req3)) { perror("v3 ring"); return 2; }

    /* "mapped": the ring is mapped before the dump (refused: the kernel's ring position
     * cannot be read or set, so the process would wait on another frame than the kernel
     * fills). */
    unsigned char *early = argc > 2 && strcmp(argv[2], "mapped") == 0 ? mmap(NULL, 24576, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0) : NULL;
    if (early == MAP_FAILED) return 2;
    int fanout = packet(SOCK_RAW, lo), fan = 77 | (PACKET_FANOUT_HASH << 16);
    if (setsockopt(fanout, SOL_PACKET, PACKET_FANOUT, &fan, sizeof fan)) { perror("fanout"); return 2; }
    int fan_before = opt(fanout, PACKET_FANOUT);

    int spkt = socket(AF_PACKET, SOCK_PACKET, htons(PROTO));
    struct sockaddr sa = { .sa_family = AF_PACKET };
    strcpy(sa.sa_data, "lo");
    if (spkt < 0 || bind(spkt, &sa, sizeof sa) != 0) { perror("SOCK_PACKET"); return 2; }
    int tx = socket(AF_PACKET, SOCK_DGRAM, 0);
    if (tx < 0) return 2;
    /* "qdisc": an option CRIU's image has no field for (the dump must refuse it). */
    if (argc > 2 && strcmp(argv[2], "qdisc") == 0 && setsockopt(tx, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one)) return 2;
    wl_ready();
    wl_wait_go();

    if (opt(dgram, PACKET_AUXDATA) != 1 || opt(dgram, PACKET_ORIGDEV) != 1) wl_fail("dgram: PACKET_AUXDATA/ORIGDEV lost");
    int buf = 0;
    l = sizeof buf;
    getsockopt(dgram, SOL_SOCKET, SO_RCVBUF, &buf, &l);
    if (buf != rcvbuf) wl_fail("dgram: SO_RCVBUF %d, want %d", buf, rcvbuf);
    struct sockaddr_ll name;
    l = sizeof name;
    if (getsockname(dgram, (struct sockaddr *)&name, &l) != 0 || name.sll_ifindex != lo || name.sll_protocol != htons(PROTO))
        wl_fail("dgram: bound to ifindex %d protocol %#x", name.sll_ifindex, ntohs(name.sll_protocol));
    if (opt(ring, PACKET_VERSION) != TPACKET_V2 || opt(ring, PACKET_RESERVE) != 64) wl_fail("ring: version %d reserve %d", opt(ring, PACKET_VERSION), opt(ring, PACKET_RESERVE));
    if (opt(fanout, PACKET_FANOUT) != fan_before) wl_fail("fanout: %#x, want %#x", opt(fanout, PACKET_FANOUT), fan_before);
    struct sockaddr spname;
    l = sizeof spname;
    if (getsockname(spkt, &spname, &l) != 0 || strcmp(spname.sa_data, "lo") != 0) wl_fail("SOCK_PACKET bound to '%s'", spname.sa_data);

    if (mmap(NULL, 28672, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0) != MAP_FAILED) wl_fail("ring: maps beyond its 24576 bytes");
    unsigned char *map = early ? early : mmap(NULL, 24576, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
    if (map == MAP_FAILED) wl_fail("ring: cannot be mapped (%s)", strerror(errno));
    if (opt(ring3, PACKET_VERSION) != TPACKET_V3) wl_fail("ring3: version %d", opt(ring3, PACKET_VERSION));
    if (mmap(NULL, 20480, PROT_READ, MAP_SHARED, ring3, 0) != MAP_FAILED) wl_fail("ring3: maps beyond its 16384 bytes");
    unsigned char *map3 = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, ring3, 0);
    if (map3 == MAP_FAILED) wl_fail("ring3: cannot be mapped (%s)", strerror(errno));

    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO), .sll_ifindex = lo, .sll_halen = 6 };
    if (sendto(tx, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to) != sizeof msg) wl_fail("send on lo: %s", strerror(errno));

    char data[256], ctl[256];
    struct iovec iov = { data, sizeof data };
    struct sockaddr_ll from;
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t n = readable(dgram) ? recvmsg(dgram, &m, MSG_DONTWAIT) : -1;
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (n != sizeof msg || memcmp(data, msg, sizeof msg) != 0) wl_fail("dgram: got %zd bytes", n);
    else if (from.sll_ifindex != lo) wl_fail("dgram: frame from ifindex %d", from.sll_ifindex);
    else if (!c || c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) wl_fail("dgram: no PACKET_AUXDATA with the frame");

    n = readable(fanout) ? recv(fanout, data, sizeof data, MSG_DONTWAIT) : -1;
    if (n != 14 + (ssize_t)sizeof msg || memcmp(data + 14, msg, sizeof msg) != 0) wl_fail("fanout: got %zd bytes", n);
    n = readable(spkt) ? recv(spkt, data, sizeof data, MSG_DONTWAIT) : -1;
    if (n != 14 + (ssize_t)sizeof msg || memcmp(data + 14, msg, sizeof msg) != 0) wl_fail("SOCK_PACKET: got %zd bytes", n);
    if (map != MAP_FAILED) {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)map;
        if (!readable(ring) || !(h->tp_status & TP_STATUS_USER)) wl_fail("ring: no frame in the first slot");
        else if (h->tp_len != 14 + sizeof msg || memcmp(map + h->tp_mac + 14, msg, sizeof msg) != 0) wl_fail("ring: frame of %u bytes", h->tp_len);
        else if (h->tp_mac < 64) wl_fail("ring: frame at %u, before the 64 reserved bytes", h->tp_mac);
    }
    if (map3 != MAP_FAILED) {
        struct tpacket_block_desc *b = (struct tpacket_block_desc *)map3;
        struct tpacket3_hdr *p3 = (struct tpacket3_hdr *)(map3 + b->hdr.bh1.offset_to_first_pkt);
        if (!readable(ring3) || !(b->hdr.bh1.block_status & TP_STATUS_USER) || b->hdr.bh1.num_pkts < 1) wl_fail("ring3: no block retired");
        else if (p3->tp_len != 14 + sizeof msg || memcmp((unsigned char *)p3 + p3->tp_mac + 14, msg, sizeof msg) != 0) wl_fail("ring3: frame of %u bytes", p3->tp_len);
    }
    if (map != MAP_FAILED) {
        /* A frame in the tx ring: Ethernet header then the payload, after the header. */
        static const char txmsg[] = "from-the-tx-ring";
        struct tpacket2_hdr *t = (struct tpacket2_hdr *)(map + 16384);
        unsigned char *frame = (unsigned char *)t + TPACKET_ALIGN(sizeof(struct tpacket2_hdr));
        memset(frame, 0, 14);
        frame[12] = PROTO >> 8; frame[13] = PROTO & 0xff;
        memcpy(frame + 14, txmsg, sizeof txmsg);
        t->tp_len = 14 + sizeof txmsg;
        t->tp_status = TP_STATUS_SEND_REQUEST;
        if (send(ring, NULL, 0, 0) < 0) wl_fail("tx ring: send: %s", strerror(errno));
        n = readable(dgram) ? recv(dgram, data, sizeof data, MSG_DONTWAIT) : -1;
        if (n != sizeof txmsg || memcmp(data, txmsg, sizeof txmsg) != 0) wl_fail("tx ring: dgram got %zd bytes", n);
    }
    if (!on_lo()) wl_fail("dgram: lo has not joined the multicast group");
    setsockopt(dgram, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof mr);
    if (on_lo()) wl_fail("dgram: lo is still in the multicast group after one drop (joined more than once)");
    wl_finish();
}
