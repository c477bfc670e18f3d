/* unix-inflight: file descriptors in flight. On a seqpacket socketpair, one record "two"
 * carries (SCM_RIGHTS) a file of DIR opened at offset 3 and the read end of a pipe holding
 * "pipe-data"; a plain record "plain" follows. The process keeps its own fds on both, so
 * the descriptions are the tree's. With the argument "closed" it closes its copy of the
 * file after sending: the queue alone holds it.
 * After go: the record arrives with two fds; the file is at offset 3 and (unless closed)
 * is the same open file description as the process's own (a seek on one moves the
 * other); the pipe still holds its data; "plain" follows; nothing more is queued. */
#include "workload.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int closed = argc > 2 && strcmp(argv[2], "closed") == 0;
    int sp[2], p[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) != 0 || pipe(p) != 0) return 2;
    int f = open("inflight.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 3, SEEK_SET) != 3) return 2;
    if (write(p[1], "pipe-data", 9) != 9) return 2;

    char ctl[CMSG_SPACE(2 * sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { "two", 3 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = { f, p[0] };
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(sp[0], &m, 0) != 3 || send(sp[0], "plain", 5, 0) != 5) { perror("sendmsg"); return 2; }
    if (closed) close(f);
    wl_ready();
    wl_wait_go();

    char buf[16];
    memset(ctl, 0, sizeof ctl);
    struct iovec riov = { buf, sizeof buf };
    struct msghdr r = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(sp[1], &r, MSG_DONTWAIT);
    c = CMSG_FIRSTHDR(&r);
    if (n != 3 || memcmp(buf, "two", 3) != 0) wl_fail("first record: %zd bytes (%s)", n, strerror(errno));
    else if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int))) wl_fail("first record carries no two fds");
    else {
        int got[2];
        memcpy(got, CMSG_DATA(c), sizeof got);
        off_t off = lseek(got[0], 0, SEEK_CUR);
        if (off != 3) wl_fail("file in flight at offset %ld, want 3", (long)off);
        char d[4] = { 0 };
        if (pread(got[0], d, 3, 3) != 3 || memcmp(d, "345", 3) != 0) wl_fail("file in flight reads '%s' at 3", d);
        if (!closed) {
            lseek(got[0], 7, SEEK_SET);
            if (lseek(f, 0, SEEK_CUR) != 7) wl_fail("file in flight is not the process's own open file");
        }
        char q[16] = { 0 };
        if (read(got[1], q, sizeof q) != 9 || memcmp(q, "pipe-data", 9) != 0) wl_fail("pipe in flight holds '%s'", q);
    }
    n = recv(sp[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n != 5 || memcmp(buf, "plain", 5) != 0) wl_fail("second record: %zd bytes", n);
    if (recv(sp[1], buf, sizeof buf, MSG_DONTWAIT) >= 0) wl_fail("more records queued");
    wl_finish();
}
