/* unix-ghost: sockets whose name's file is gone.
 * - a datagram server bound at "g.sock" (relative to DIR) with a client connected
 *   through that path and two datagrams "c1", "c22" queued; then g.sock is unlinked and a
 *   FIFO made in its place;
 * - a stream listener bound at "sub/l.sock" with a connection made through that path and
 *   not yet accepted; then the file is unlinked and sub/ removed;
 * - a stream listener bound at the absolute path DIR/m.sock with an accepted connection;
 *   then m.sock is replaced by a regular file holding "file";
 * - a stream listener bound at "live.sock" (its file stays) with two accepted
 *   connections, one from an unbound client, one from a client bound at "own.sock".
 * After go: the FIFO and the regular file are still there, sub/ is still gone, nothing
 * else appeared in DIR; each socket's getsockname is its old name; the server reads its
 * datagrams and one more from the client, whose peer is still g.sock; the listener
 * accepts its pending connection and both ends talk; the accepted connections talk and
 * show the names they had (the listener's, the client's own), live.sock and own.sock are
 * still socket files, and live.sock takes a new connection. */
#include "workload.h"
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>

static socklen_t addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    strncpy(sa->sun_path, path, sizeof sa->sun_path - 1);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int bound(int type, const char *path)
{
    struct sockaddr_un sa;
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, addr(&sa, path)) != 0) { perror(path); exit(2); }
    if (type == SOCK_STREAM && listen(s, 4) != 0) exit(2);
    return s;
}

static int connected(int type, const char *path)
{
    struct sockaddr_un sa;
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, addr(&sa, path)) != 0) { perror(path); exit(2); }
    return s;
}

static void expect_name(int s, const char *path, int peer, const char *what)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    int r = peer ? getpeername(s, (struct sockaddr *)&sa, &len) : getsockname(s, (struct sockaddr *)&sa, &len);
    if (r != 0 || strcmp(sa.sun_path, path) != 0) wl_fail("%s: name '%s', want '%s' (%s)", what, sa.sun_path, path, strerror(errno));
}

static void expect_recv(int s, const char *text, const char *what)
{
    char buf[64] = { 0 };
    struct pollfd p = { s, POLLIN, 0 };
    if (poll(&p, 1, 3000) != 1) { wl_fail("%s: nothing to read", what); return; }
    ssize_t n = recv(s, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n != (ssize_t)strlen(text) || memcmp(buf, text, n) != 0) wl_fail("%s: got %zd bytes '%s', want '%s'", what, n, buf, text);
}

static void talk(int a, int b, const char *what)
{
    if (send(a, "ab", 2, MSG_DONTWAIT) != 2 || send(b, "ba", 2, MSG_DONTWAIT) != 2) { wl_fail("%s: send: %s", what, strerror(errno)); return; }
    expect_recv(b, "ab", what);
    expect_recv(a, "ba", what);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    char cwd[200], mpath[256];
    if (!getcwd(cwd, sizeof cwd)) return 2;
    snprintf(mpath, sizeof mpath, "%s/m.sock", cwd);
    if (strlen(mpath) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return 2;

    int g = bound(SOCK_DGRAM, "g.sock");
    int c = connected(SOCK_DGRAM, "g.sock");
    if (send(c, "c1", 2, 0) != 2 || send(c, "c22", 3, 0) != 3) return 2;
    if (unlink("g.sock") != 0 || mkfifo("g.sock", 0600) != 0) return 2;

    if (mkdir("sub", 0755) != 0) return 2;
    int l = bound(SOCK_STREAM, "sub/l.sock");
    int k = connected(SOCK_STREAM, "sub/l.sock");
    if (unlink("sub/l.sock") != 0 || rmdir("sub") != 0) return 2;

    int m = bound(SOCK_STREAM, mpath);
    int n = connected(SOCK_STREAM, mpath);
    int acc = accept(m, NULL, NULL);
    if (acc < 0 || unlink(mpath) != 0) return 2;
    int f = open(mpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (f < 0 || write(f, "file", 4) != 4) return 2;
    close(f);
    int live = bound(SOCK_STREAM, "live.sock");
    int k2 = connected(SOCK_STREAM, "live.sock"), acc2 = accept(live, NULL, NULL);
    struct sockaddr_un own, la;
    int k3 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (k3 < 0 || bind(k3, (struct sockaddr *)&own, addr(&own, "own.sock")) != 0) return 2;
    if (connect(k3, (struct sockaddr *)&la, addr(&la, "live.sock")) != 0) return 2;
    int acc3 = accept(live, NULL, NULL);
    if (acc2 < 0 || acc3 < 0) return 2;
    wl_ready();
    wl_wait_go();

    struct stat st;
    if (lstat("g.sock", &st) != 0 || !S_ISFIFO(st.st_mode)) wl_fail("g.sock is no longer the FIFO");
    if (lstat("sub", &st) == 0) wl_fail("sub/ exists again");
    char text[8] = { 0 };
    f = open(mpath, O_RDONLY);
    if (f < 0 || read(f, text, sizeof text) != 4 || strcmp(text, "file") != 0) wl_fail("m.sock is no longer the regular file ('%s')", text);
    DIR *dir = opendir(".");
    for (struct dirent *de; dir && (de = readdir(dir)) != NULL;)
        if (strstr(de->d_name, "ghost") || strstr(de->d_name, "criu")) wl_fail("DIR holds %s", de->d_name);
    if (dir) closedir(dir);

    expect_name(g, "g.sock", 0, "datagram server");
    expect_name(c, "g.sock", 1, "datagram client's peer");
    expect_recv(g, "c1", "datagram #1");
    expect_recv(g, "c22", "datagram #2");
    if (send(c, "c333", 4, 0) != 4) wl_fail("datagram client: send: %s", strerror(errno));
    expect_recv(g, "c333", "datagram after go");

    expect_name(l, "sub/l.sock", 0, "listener in the removed directory");
    struct pollfd p = { l, POLLIN, 0 };
    int a = poll(&p, 1, 3000) == 1 ? accept(l, NULL, NULL) : -1;
    if (a < 0) wl_fail("no pending connection on the listener in the removed directory");
    else talk(a, k, "pending connection through a removed path");

    expect_name(m, mpath, 0, "listener whose file was replaced");
    expect_name(acc, mpath, 0, "connection accepted by the listener whose file was replaced");
    expect_name(n, mpath, 1, "client of the listener whose file was replaced");
    talk(acc, n, "accepted connection");
    expect_name(acc2, "live.sock", 0, "accepted connection");
    expect_name(k2, "live.sock", 1, "client's peer");
    expect_name(k3, "own.sock", 0, "client bound at its own name");
    expect_name(k3, "live.sock", 1, "bound client's peer");
    expect_name(acc3, "own.sock", 1, "accepted connection's bound peer");
    talk(acc2, k2, "connection accepted on live.sock");
    talk(acc3, k3, "connection from own.sock");
    if (lstat("live.sock", &st) != 0 || !S_ISSOCK(st.st_mode) || lstat("own.sock", &st) != 0 || !S_ISSOCK(st.st_mode)) wl_fail("live.sock or own.sock is no longer a socket file");
    int k4 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(k4, (struct sockaddr *)&la, addr(&la, "live.sock")) != 0) wl_fail("live.sock refuses a new connection: %s", strerror(errno));
    else {
        int acc4 = accept(live, NULL, NULL);
        if (acc4 < 0) wl_fail("live.sock: no new connection to accept");
        else talk(acc4, k4, "new connection on live.sock");
    }
    wl_finish();
}
