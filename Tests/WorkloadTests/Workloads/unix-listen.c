/* unix-listen: named UNIX sockets.
 * - a stream listener bound to DIR/l.sock (absolute path, mode 0640) with one pending,
 *   not yet accepted connection, and one accepted connection whose client lives in a
 *   child process; 5 bytes are queued client->server and 300 server->client;
 * - a seqpacket listener with an abstract name with one pending connection;
 * - a datagram server bound to DIR/d.sock holding 3 datagrams from a connected client and
 *   1 from an unconnected one.
 * After go: names and modes are kept, each listener accepts its pending connection and a
 * new one and both talk, the datagram server reads its queue with its boundaries and
 * takes new datagrams, and the parent and child keep talking over their connection. */
#include "workload.h"
#include <poll.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>

static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)(i * 5 + seed * 17 + (i >> 4)); }

static void put(int fd, size_t n, unsigned seed)
{
    unsigned char buf[2048];
    for (size_t i = 0; i < n; i++) buf[i] = pat(i, seed);
    if (send(fd, buf, n, MSG_DONTWAIT) != (ssize_t)n) { perror("send"); exit(2); }
}

static void expect(int fd, size_t n, unsigned seed, int stream, const char *what)
{
    unsigned char buf[4096];
    size_t got = 0;
    do {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 5000) != 1) { wl_fail("%s: nothing to read after %zu of %zu bytes", what, got, n); return; }
        ssize_t r = recv(fd, buf + got, stream ? n - got : sizeof buf, MSG_DONTWAIT);  /* a stream holds later data too */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { wl_fail("%s: recv %zd (%s) after %zu of %zu bytes", what, r, strerror(errno), got, n); return; }
        got += (size_t)r;
        if (!stream) break;
    } while (got < n);
    if (got != n) { wl_fail("%s: %zu bytes, want %zu", what, got, n); return; }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(i, seed)) { wl_fail("%s: byte %zu is %u, want %u", what, i, buf[i], pat(i, seed)); return; }
}

static socklen_t addr(struct sockaddr_un *sa, const char *name, int abstract)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(sa->sun_path + (abstract ? 1 : 0), name, len);
    /* a path counts its terminator, an abstract name its leading 0 */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

static int sock_at(int type, const char *name, int abstract, int do_listen)
{
    struct sockaddr_un sa;
    socklen_t l = addr(&sa, name, abstract);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, l) != 0) { perror("bind"); exit(2); }
    if (do_listen && listen(s, 8) != 0) { perror("listen"); exit(2); }
    return s;
}

static int connect_to(int type, const char *name, int abstract)
{
    struct sockaddr_un sa;
    socklen_t l = addr(&sa, name, abstract);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, l) != 0) { wl_fail("connect to %s%s: %s", abstract ? "@" : "", name, strerror(errno)); return -1; }
    return s;
}

static int accept_one(int l, const char *what)
{
    struct pollfd p = { l, POLLIN, 0 };
    if (poll(&p, 1, 5000) != 1) { wl_fail("%s: no connection to accept", what); return -1; }
    int s = accept(l, NULL, NULL);
    if (s < 0) wl_fail("%s: accept: %s", what, strerror(errno));
    return s;
}

/* Both directions of a connection carry a fresh message. */
static void talk(int a, int b, int stream, unsigned seed, const char *what)
{
    if (a < 0 || b < 0) return;
    char w[128];
    put(a, 100, seed); snprintf(w, sizeof w, "%s a->b", what); expect(b, 100, seed, stream, w);
    put(b, 31, seed + 1); snprintf(w, sizeof w, "%s b->a", what); expect(a, 31, seed + 1, stream, w);
}

static void check_name(int s, const char *want, int abstract, const char *what)
{
    struct sockaddr_un sa, exp;
    socklen_t l = sizeof sa, el = addr(&exp, want, abstract);
    if (getsockname(s, (struct sockaddr *)&sa, &l) != 0) { wl_fail("%s: getsockname: %s", what, strerror(errno)); return; }
    if (l < el || memcmp(sa.sun_path, exp.sun_path, el - offsetof(struct sockaddr_un, sun_path)) != 0)
        wl_fail("%s: bound to '%s%s' (len %u), want '%s%s'", what, sa.sun_path[0] ? "" : "@",
                sa.sun_path[0] ? sa.sun_path : sa.sun_path + 1, (unsigned)l, abstract ? "@" : "", want);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    char cwd[80], lpath[100], dpath[100], abs_name[64];
    if (!getcwd(cwd, sizeof cwd)) { perror("getcwd"); return 2; }
    snprintf(lpath, sizeof lpath, "%s/l.sock", cwd);
    snprintf(dpath, sizeof dpath, "%s/d.sock", cwd);
    snprintf(abs_name, sizeof abs_name, "ocw-unix-listen-%d", (int)getpid());
    unlink(lpath); unlink(dpath);

    int l = sock_at(SOCK_STREAM, lpath, 0, 1);
    chmod(lpath, 0640);
    int client = connect_to(SOCK_STREAM, lpath, 0);
    int server = accept(l, NULL, NULL);
    int pending = connect_to(SOCK_STREAM, lpath, 0);
    int al = sock_at(SOCK_SEQPACKET, abs_name, 1, 1);
    int apending = connect_to(SOCK_SEQPACKET, abs_name, 1);
    int d = sock_at(SOCK_DGRAM, dpath, 0, 0);
    int dc = connect_to(SOCK_DGRAM, dpath, 0);
    int du = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (pending < 0 || client < 0 || server < 0 || apending < 0 || dc < 0 || du < 0) { fprintf(stderr, "%s\n", wl_fail_msg); return 2; }
    put(client, 5, 1);
    put(server, 300, 2);
    put(dc, 4, 3); put(dc, 500, 4); put(dc, 60, 5);
    { struct sockaddr_un sa; socklen_t sl = addr(&sa, dpath, 0);
      unsigned char b[9]; for (int i = 0; i < 9; i++) b[i] = pat(i, 6);
      if (sendto(du, b, 9, 0, (struct sockaddr *)&sa, sl) != 9) { perror("sendto"); return 2; } }

    int report[2];
    if (pipe(report) != 0) return 2;
    pid_t child = fork();
    if (child == 0) {
        close(report[0]); close(server); close(l); close(al); close(d);
        wl_wait_go();
        expect(client, 300, 2, 1, "child: queued server->client");
        for (unsigned i = 0; i < 3; i++) { expect(client, 64, 40 + i, 1, "child: ping"); put(client, 64, 50 + i); }
        if (write(report[1], wl_fail_msg, strlen(wl_fail_msg)) < 0) _exit(3);
        _exit(0);
    }
    close(report[1]); close(client);
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    struct stat st;
    if (stat(lpath, &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0640)
        wl_fail("%s: not a socket of mode 0640 (mode 0%o)", lpath, st.st_mode);
    check_name(l, lpath, 0, "stream listener");
    check_name(al, abs_name, 1, "abstract listener");
    check_name(d, dpath, 0, "dgram server");
    expect(server, 5, 1, 1, "queued client->server");
    for (unsigned i = 0; i < 3; i++) { put(server, 64, 40 + i); expect(server, 64, 50 + i, 1, "parent: pong"); }

    int acc = accept_one(l, "stream listener, pending connection");
    talk(pending, acc, 1, 10, "pending stream connection");
    int fresh = connect_to(SOCK_STREAM, lpath, 0);
    int acc2 = accept_one(l, "stream listener, new connection");
    talk(fresh, acc2, 1, 12, "new stream connection");

    int aacc = accept_one(al, "abstract listener, pending connection");
    talk(apending, aacc, 0, 14, "pending seqpacket connection");
    int afresh = connect_to(SOCK_SEQPACKET, abs_name, 1);
    int aacc2 = accept_one(al, "abstract listener, new connection");
    talk(afresh, aacc2, 0, 16, "new seqpacket connection");

    expect(d, 4, 3, 0, "dgram #1");
    expect(d, 500, 4, 0, "dgram #2");
    expect(d, 60, 5, 0, "dgram #3");
    expect(d, 9, 6, 0, "dgram from the unconnected sender");
    put(dc, 222, 7);
    expect(d, 222, 7, 0, "dgram from the connected client after go");
    int dn = connect_to(SOCK_DGRAM, dpath, 0);
    if (dn >= 0) { put(dn, 11, 8); expect(d, 11, 8, 0, "dgram from a new client"); }

    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        wl_fail("child ended with status 0x%x", status);
    char msg[1024] = { 0 }, both[1200];
    unlink(lpath); unlink(dpath);
    if (read(report[0], msg, sizeof msg - 1) > 0) {
        /* the child's first failure explains the parent's */
        snprintf(both, sizeof both, "child: %s; parent: %s", msg, wl_fail_msg[0] ? wl_fail_msg : "-");
        wl_result(both);
        exit(0);
    }
    wl_finish();
}
