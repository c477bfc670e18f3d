/* devices: the console and two virtual terminals opened O_NOCTTY with different flags
 * (one O_NONBLOCK|O_APPEND, one close-on-exec), and /dev/tty63 moved to a high fd.
 * After go: each fd is the same device (rdev), with the same status flags, fd flags,
 * offset (lseek result and errno) and termios, and is still writable; the process
 * did not gain or lose a controlling terminal. The test keeps the terminals open too, as a
 * getty or a login shell would. With "kmsg" only /dev/kmsg is open (its read position in
 * the kernel log is the fd's state), with "alone" only /dev/tty62, which no other process
 * holds (its last close resets it): the dump must refuse either (no checks after go). */
#include "workload.h"
#include <termios.h>

struct dev { const char *path; int flags, fd; struct stat st; int fl, fdfl; off_t off; int offErr; struct termios tio; };

static void probe(struct dev *d)
{
    d->fl = fcntl(d->fd, F_GETFL);
    d->fdfl = fcntl(d->fd, F_GETFD);
    errno = 0;
    d->off = lseek(d->fd, 0, SEEK_CUR);
    d->offErr = errno;
    fstat(d->fd, &d->st);
    tcgetattr(d->fd, &d->tio);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (argc > 2) {
        if (open(strcmp(argv[2], "kmsg") == 0 ? "/dev/kmsg" : "/dev/tty62", O_RDONLY | O_NOCTTY) < 0) { perror(argv[2]); return 2; }
        wl_ready();
        wl_wait_go();
        wl_finish();
    }
    struct dev devs[] = {
        { "/dev/console", O_WRONLY | O_NOCTTY },
        { "/dev/tty1", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_APPEND },
        { "/dev/tty0", O_RDWR | O_NOCTTY | O_CLOEXEC },
        { "/dev/tty63", O_WRONLY | O_NOCTTY },
    };
    int n = sizeof devs / sizeof devs[0];
    for (int i = 0; i < n; i++) {
        devs[i].fd = open(devs[i].path, devs[i].flags);
        if (devs[i].fd < 0) { perror(devs[i].path); return 2; }
    }
    if (dup2(devs[3].fd, 70) != 70 || close(devs[3].fd)) { perror("dup2"); return 2; }
    devs[3].fd = 70;
    struct dev before[4];
    for (int i = 0; i < n; i++) { probe(&devs[i]); before[i] = devs[i]; }
    int sidBefore = getsid(0), t = open("/dev/tty", O_RDONLY | O_NOCTTY), cttyBefore = t >= 0;
    if (t >= 0) close(t);
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < n; i++) {
        struct dev *b = &before[i], *a = &devs[i];
        probe(a);
        if (a->st.st_rdev != b->st.st_rdev || !S_ISCHR(a->st.st_mode))
            wl_fail("%s fd %d: rdev %#lx, before %#lx", b->path, a->fd, (long)a->st.st_rdev, (long)b->st.st_rdev);
        if (a->fl != b->fl) wl_fail("%s fd %d: status flags %#x, before %#x", b->path, a->fd, a->fl, b->fl);
        if (a->fdfl != b->fdfl) wl_fail("%s fd %d: fd flags %#x, before %#x", b->path, a->fd, a->fdfl, b->fdfl);
        if (a->off != b->off || a->offErr != b->offErr)
            wl_fail("%s fd %d: lseek %ld (%s), before %ld (%s)", b->path, a->fd, (long)a->off, strerror(a->offErr), (long)b->off, strerror(b->offErr));
        if (memcmp(&a->tio, &b->tio, sizeof a->tio) != 0) wl_fail("%s fd %d: termios differ", b->path, a->fd);
        if (write(a->fd, "", 0) != 0) wl_fail("%s fd %d: write: %s", b->path, a->fd, strerror(errno));
    }
    if (getsid(0) != sidBefore) wl_fail("session %d, before %d", getsid(0), sidBefore);
    t = open("/dev/tty", O_RDONLY | O_NOCTTY);
    if ((t >= 0) != cttyBefore) wl_fail("controlling terminal %s after restore, %s before", t >= 0 ? "present" : "absent", cttyBefore ? "present" : "absent");
    if (t >= 0) close(t);
    wl_finish();
}
