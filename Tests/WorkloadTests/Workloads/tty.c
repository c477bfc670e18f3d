/* Terminals: pty A with a child session on its slave (setsid + TIOCSCTTY), the child's
 * child in its own group as the terminal's foreground group, raw-ish termios with a
 * custom VINTR, a window size, and bytes in flight both ways when it is dumped; pty B
 * with packet mode, lock and exclusive mode set and a few bytes in flight to its master.
 * After go: the bytes in flight arrive, termios/winsize/session/foreground group are as
 * set, the slave's name is the same, and a ping through the master comes back.
 * With the argument "criu-modes", pty B has neither exclusive mode nor bytes in flight:
 * the two things CRIU 4.2 cannot carry even through its own dump and restore. */
#include "workload.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

#define TO_CHILD "to-child-in-flight"
#define TO_PARENT "to-parent-in-flight"

struct shared {
    volatile int gc_ready, gc_done;
    pid_t child, gc;
    char fail[512];
};

static struct winsize want_ws = { 37, 111, 555, 777 };

static void set_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) { perror("tcgetattr"); exit(2); }
    t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~OPOST;
    t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    t.c_cflag |= CS8;
    t.c_cc[VINTR] = 0x18;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) != 0) { perror("tcsetattr"); exit(2); }
}

static const char *check_termios(int fd)
{
    static char why[200];
    struct termios t;
    struct winsize ws;
    if (tcgetattr(fd, &t) != 0) return "tcgetattr failed";
    if ((t.c_lflag & (ICANON | ECHO)) || (t.c_oflag & OPOST) || (t.c_iflag & ICRNL) || !(t.c_lflag & ISIG)) {
        snprintf(why, sizeof why, "termios flags changed: iflag %o oflag %o lflag %o", t.c_iflag, t.c_oflag, t.c_lflag);
        return why;
    }
    if (t.c_cc[VINTR] != 0x18 || t.c_cc[VMIN] != 1) {
        snprintf(why, sizeof why, "VINTR %#x VMIN %d", t.c_cc[VINTR], t.c_cc[VMIN]);
        return why;
    }
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return "TIOCGWINSZ failed";
    if (memcmp(&ws, &want_ws, sizeof ws) != 0) {
        snprintf(why, sizeof why, "winsize %dx%d %dx%d", ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel);
        return why;
    }
    return NULL;
}

/* Reads exactly n bytes (10 s at most). */
static int read_exact(int fd, char *buf, size_t n)
{
    size_t off = 0;
    double end = wl_now() + 10;
    while (off < n) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0) { if (wl_now() > end) return -1; continue; }
        ssize_t r = read(fd, buf + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        off += (size_t)r;
    }
    return 0;
}

static void grandchild(struct shared *sh, int slave, const char *name)
{
    char buf[64];
    setpgid(0, 0);
    while (tcgetpgrp(slave) != getpgrp()) wl_sleep_ms(1);
    if (write(slave, TO_PARENT, strlen(TO_PARENT)) != (ssize_t)strlen(TO_PARENT)) { perror("write"); _exit(2); }
    sh->gc_ready = 1;
    wl_wait_go();
    const char *bad;
    if (read_exact(slave, buf, strlen(TO_CHILD)) != 0 || memcmp(buf, TO_CHILD, strlen(TO_CHILD)) != 0)
        snprintf(sh->fail, sizeof sh->fail, "grandchild: the bytes in flight to it did not arrive");
    else if ((bad = check_termios(slave)))
        snprintf(sh->fail, sizeof sh->fail, "grandchild: %s", bad);
    else if (getsid(0) != sh->child)
        snprintf(sh->fail, sizeof sh->fail, "grandchild: session %d, want %d", getsid(0), sh->child);
    else if (tcgetpgrp(slave) != getpgrp())
        snprintf(sh->fail, sizeof sh->fail, "grandchild: foreground group %d, want its own %d", tcgetpgrp(slave), getpgrp());
    else if (tcgetsid(slave) != sh->child)
        snprintf(sh->fail, sizeof sh->fail, "grandchild: the terminal's session is %d, want %d", tcgetsid(slave), sh->child);
    else if (!ttyname(slave) || strcmp(ttyname(slave), name) != 0)
        snprintf(sh->fail, sizeof sh->fail, "grandchild: slave is %s, was %s", ttyname(slave) ? ttyname(slave) : "?", name);
    else {
        int ctty = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (ctty < 0) snprintf(sh->fail, sizeof sh->fail, "grandchild: no controlling terminal (/dev/tty: %s)", strerror(errno));
        else close(ctty);
    }
    /* Echo service: "ping" comes in, "pong" goes out. */
    if (read_exact(slave, buf, 4) == 0 && memcmp(buf, "ping", 4) == 0)
        if (write(slave, "pong", 4) != 4) perror("write pong");
    sh->gc_done = 1;
    _exit(0);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int criu_modes = argc > 2 && strcmp(argv[2], "criu-modes") == 0;
    struct shared *sh = wl_shared(sizeof *sh);
    int ma = posix_openpt(O_RDWR | O_NOCTTY);
    if (ma < 0 || grantpt(ma) || unlockpt(ma)) { perror("pty A"); return 2; }
    char name[64];
    snprintf(name, sizeof name, "%s", ptsname(ma));
    int sa = open(name, O_RDWR | O_NOCTTY);
    if (sa < 0) { perror(name); return 2; }
    set_raw(sa);
    if (ioctl(ma, TIOCSWINSZ, &want_ws) != 0) { perror("TIOCSWINSZ"); return 2; }

    int mb = posix_openpt(O_RDWR | O_NOCTTY), one = 1;
    if (mb < 0 || grantpt(mb) || unlockpt(mb)) { perror("pty B"); return 2; }
    int sb = open(ptsname(mb), O_RDWR | O_NOCTTY);
    if (sb < 0 || ioctl(mb, TIOCPKT, &one) || (!criu_modes && ioctl(sb, TIOCEXCL)) || ioctl(mb, TIOCSPTLCK, &one)) { perror("pty B modes"); return 2; }
    if (!criu_modes && write(sb, "pkt", 3) != 3) { perror("write pty B"); return 2; }  /* in flight to a packet-mode master */

    pid_t child = fork();
    if (child == 0) {
        close(ma); close(mb); close(sb);
        setsid();
        if (ioctl(sa, TIOCSCTTY, 0) != 0) { perror("TIOCSCTTY"); _exit(2); }
        sh->child = getpid();
        pid_t gc = fork();
        if (gc == 0) grandchild(sh, sa, name);
        setpgid(gc, gc);
        if (tcsetpgrp(sa, gc) != 0) { perror("tcsetpgrp"); _exit(2); }
        sh->gc = gc;
        /* In the background now: it only waits for its child. */
        int st;
        while (waitpid(gc, &st, 0) < 0 && errno == EINTR) {}
        _exit(0);
    }
    while (!sh->gc_ready) wl_sleep_ms(1);
    if (write(ma, TO_CHILD, strlen(TO_CHILD)) != (ssize_t)strlen(TO_CHILD)) { perror("write"); return 2; }
    pid_t pids[3] = { getpid(), child, sh->gc };
    wl_ready_pids(pids, 3);
    wl_wait_go();

    char buf[64];
    const char *bad;
    int v = 0;
    if (read_exact(ma, buf, strlen(TO_PARENT)) != 0 || memcmp(buf, TO_PARENT, strlen(TO_PARENT)) != 0)
        wl_fail("the bytes in flight to the master did not arrive");
    if (write(ma, "ping", 4) != 4 || read_exact(ma, buf, 4) != 0 || memcmp(buf, "pong", 4) != 0)
        wl_fail("no pong through the pty");
    if ((bad = check_termios(sa))) wl_fail("slave A: %s", bad);
    if (ioctl(mb, TIOCGPKT, &v) != 0 || v != 1) wl_fail("pty B: packet mode %d", v);
    if (!criu_modes && (read_exact(mb, buf, 4) != 0 || memcmp(buf, "\0pkt", 4) != 0)) wl_fail("pty B: the packet in flight did not arrive");
    if (ioctl(mb, TIOCGPTLCK, &v) != 0 || v != 1) wl_fail("pty B: lock %d", v);
    if (ioctl(sb, TIOCGEXCL, &v) != 0 || v != !criu_modes) wl_fail("pty B: exclusive %d", v);
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
    if (!sh->gc_done) wl_fail("the grandchild did not finish");
    if (sh->fail[0]) wl_fail("%s", sh->fail);
    wl_finish();
}
