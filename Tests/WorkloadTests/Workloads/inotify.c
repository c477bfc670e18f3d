/* inotify: watches on DIR/watched (IN_CREATE|IN_DELETE) and on DIR/watched/file
 * (IN_MODIFY), with a gap in the watch descriptors (a removed watch between them). After
 * go: the descriptors are the same, a file created in the directory and a write to the
 * file are reported with them, and removing a watch by its descriptor works.
 * With "pending", an event is left unread at the dump, which must refuse it (no checks
 * after go). */
#include "workload.h"
#include <sys/inotify.h>

static char buf[4096] __attribute__((aligned(8)));

/* Reads one event (waits up to 2 s). */
static struct inotify_event *next_event(int in)
{
    for (int i = 0; i < 200; i++) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n > 0) return (struct inotify_event *)buf;
        wl_sleep_ms(10);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    mkdir("watched", 0755);
    mkdir("other", 0755);
    int f = open("watched/file", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f < 0) { perror("create"); return 2; }
    close(f);
    int in = inotify_init1(IN_NONBLOCK);
    int wdir = inotify_add_watch(in, "watched", IN_CREATE | IN_DELETE);
    int gap = inotify_add_watch(in, "other", IN_CREATE);
    inotify_rm_watch(in, gap);
    int wfile = inotify_add_watch(in, "watched/file", IN_MODIFY);
    if (wdir < 0 || wfile < 0) { perror("inotify_add_watch"); return 2; }
    while (read(in, buf, sizeof buf) > 0) {}  /* the IN_IGNORED of the removed watch */
    int pending = argc > 2 && strcmp(argv[2], "pending") == 0;
    if (pending) close(open("watched/unread", O_WRONLY | O_CREAT, 0644));
    wl_ready();
    wl_wait_go();
    if (pending) wl_finish();

    if (wfile != 3) wl_fail("file watch has descriptor %d before the dump, want 3", wfile);
    f = open("watched/new", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(f);
    struct inotify_event *ev = next_event(in);
    if (!ev) wl_fail("no event for a file created in the watched directory");
    else if (ev->wd != wdir || !(ev->mask & IN_CREATE) || strcmp(ev->name, "new") != 0)
        wl_fail("event wd %d mask %#x name '%s', want wd %d IN_CREATE 'new'", ev->wd, ev->mask, ev->len ? ev->name : "", wdir);
    f = open("watched/file", O_WRONLY | O_APPEND);
    if (write(f, "x", 1) != 1) wl_fail("write watched/file");
    close(f);
    ev = next_event(in);
    if (!ev) wl_fail("no event for a write to the watched file");
    else if (ev->wd != wfile || !(ev->mask & IN_MODIFY)) wl_fail("event wd %d mask %#x, want wd %d IN_MODIFY", ev->wd, ev->mask, wfile);
    if (inotify_rm_watch(in, wfile) != 0) wl_fail("inotify_rm_watch(%d): %s", wfile, strerror(errno));
    if (inotify_rm_watch(in, gap) == 0) wl_fail("removed descriptor %d is a watch again", gap);
    unlink("watched/new");
    wl_finish();
}
