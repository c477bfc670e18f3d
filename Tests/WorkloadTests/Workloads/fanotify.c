/* fanotify: a notification group (FAN_CLASS_NOTIF, non-blocking) with an inode mark on
 * DIR/watched for FAN_CLOSE_WRITE of its children. After go: closing a file written in
 * the directory is reported, with an event fd on that very file. */
#include "workload.h"
#include <sys/fanotify.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    mkdir("watched", 0755);
    int fa = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
    if (fa < 0) { perror("fanotify_init"); return 2; }
    if (fanotify_mark(fa, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, "watched") != 0) { perror("fanotify_mark"); return 2; }
    wl_ready();
    wl_wait_go();

    if (!(fcntl(fa, F_GETFL) & O_NONBLOCK)) wl_fail("fanotify group lost O_NONBLOCK");
    char buf[4096] __attribute__((aligned(8)));
    if (read(fa, buf, sizeof buf) != -1 || errno != EAGAIN) wl_fail("fanotify has events before any write");
    int f = open("watched/new", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (write(f, "x", 1) != 1) wl_fail("write");
    close(f);
    ssize_t n = -1;
    for (int i = 0; i < 200 && n <= 0; i++) { n = read(fa, buf, sizeof buf); if (n <= 0) wl_sleep_ms(10); }
    struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
    if (n <= 0) wl_fail("no fanotify event for a file closed after writing");
    else if (!(m->mask & FAN_CLOSE_WRITE)) wl_fail("event mask %#llx, want FAN_CLOSE_WRITE", (unsigned long long)m->mask);
    else {
        char link[64], path[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
        ssize_t l = readlink(link, path, sizeof path - 1);
        path[l > 0 ? l : 0] = 0;
        if (l <= 0 || strstr(path, "/watched/new") == NULL) wl_fail("event is about '%s', want .../watched/new", path);
        close(m->fd);
    }
    unlink("watched/new");
    wl_finish();
}
