/* unix-ext: UNIX sockets whose peer lives outside the dumped tree. A helper process that is
 * not a descendant of the root (its parent exits at once) binds a datagram socket at
 * DIR/ext.sock; the root holds a datagram socket connected to it. With the argument
 * "stream" the root also holds one end of a stream socketpair whose other end only the
 * helper has. The ready file lists the root only: the helper is no part of the tree.
 * After go: the root sends "after go" over its connected datagram socket; the helper
 * answers by writing DIR/ext-got, which the root waits for. */
#include "workload.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "%s", path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static void helper(const char *path, int up, int stream_end)
{
    alarm(120);  /* never outlive a test that forgot us */
    setsid();    /* nor keep the root's session (and so its pid) alive */
    struct sockaddr_un sa;
    socklen_t l = addr(&sa, path);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, l) != 0) _exit(3);
    if (write(up, "u", 1) != 1) _exit(3);
    close(up);
    char buf[64];
    for (;;) {
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) _exit(3);
        buf[n] = 0;
        if (strcmp(buf, "after go") == 0) {
            wl_write_file("ext-got", buf);
            unlink(path);
            (void)stream_end;
            _exit(0);
        }
    }
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int stream = argc > 2 && strcmp(argv[2], "stream") == 0;
    char cwd[80], path[100];
    if (!getcwd(cwd, sizeof cwd)) return 2;
    snprintf(path, sizeof path, "%s/ext.sock", cwd);
    unlink(path);
    unlink("ext-got");
    int sp[2] = { -1, -1 }, up[2];
    if (stream && socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) return 2;
    if (pipe(up) != 0) return 2;
    pid_t mid = fork();
    if (mid == 0) {
        if (fork() == 0) { close(up[0]); if (sp[0] >= 0) close(sp[0]); helper(path, up[1], sp[1]); }
        _exit(0);
    }
    waitpid(mid, NULL, 0);
    close(up[1]);
    if (sp[1] >= 0) close(sp[1]);
    char c;
    if (read(up[0], &c, 1) != 1) { fprintf(stderr, "helper failed\n"); return 2; }
    close(up[0]);

    struct sockaddr_un sa;
    socklen_t l = addr(&sa, path);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, l) != 0) { perror("connect"); return 2; }
    if (send(s, "before", 6, 0) != 6) { perror("send"); return 2; }
    wl_ready();
    wl_wait_go();

    if (stream && send(sp[0], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) wl_fail("stream to the external peer: %s", strerror(errno));
    if (send(s, "after go", 8, 0) != 8) wl_fail("send to the external peer: %s", strerror(errno));
    double until = wl_now() + 5;
    struct stat st;
    while (stat("ext-got", &st) != 0 && wl_now() < until) wl_sleep_ms(10);
    if (stat("ext-got", &st) != 0) wl_fail("the external peer did not get the datagram sent after go");
    wl_finish();
}
