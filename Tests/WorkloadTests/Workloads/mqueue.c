/* mqueue: a named POSIX message queue (maxmsg 8, msgsize 64, mode 0640) holding five
 * messages of three priorities, opened twice (O_RDWR, and O_RDONLY|O_NONBLOCK), plus an
 * unlinked nonblocking queue (maxmsg 4, msgsize 32, mode 0600) holding two. After go:
 * attributes, modes and flags are as before, the messages come back in the same order
 * with their priorities, the queues still work, the named one is still linked and the
 * unlinked one is not. `DIR notify` also registers mq_notify (the dump must refuse it);
 * `DIR ipcns` does all this in an ipc namespace of its own; `DIR orphan` too, with one
 * more queue that no fd holds (the dump must refuse it). `DIR unlink NAME` just removes
 * queue NAME. */
#include "workload.h"
#include <mqueue.h>
#include <sched.h>

static const char *texts[] = { "dddd", "bb", "e", "a", "ccc" };
static const unsigned prios[] = { 9, 5, 5, 1, 1 };

static void expect_attr(mqd_t q, const struct mq_attr *want, const char *what)
{
    struct mq_attr a;
    if (mq_getattr(q, &a) != 0) { wl_fail("%s: mq_getattr: %s", what, strerror(errno)); return; }
    if (a.mq_flags != want->mq_flags || a.mq_maxmsg != want->mq_maxmsg || a.mq_msgsize != want->mq_msgsize || a.mq_curmsgs != want->mq_curmsgs)
        wl_fail("%s: flags %ld maxmsg %ld msgsize %ld curmsgs %ld, want %ld %ld %ld %ld", what, a.mq_flags, a.mq_maxmsg,
                a.mq_msgsize, a.mq_curmsgs, want->mq_flags, want->mq_maxmsg, want->mq_msgsize, want->mq_curmsgs);
}

static void expect_message(mqd_t q, const char *text, unsigned prio, const char *what)
{
    char buf[64];
    unsigned p = 0;
    ssize_t n = mq_receive(q, buf, sizeof buf, &p);
    if (n < 0) { wl_fail("%s: mq_receive: %s (want '%s')", what, strerror(errno), text); return; }
    if ((size_t)n != strlen(text) || memcmp(buf, text, n) != 0 || p != prio)
        wl_fail("%s: got '%.*s' prio %u, want '%s' prio %u", what, (int)n, buf, p, text, prio);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[2], "unlink") == 0) return mq_unlink(argv[3]) == 0 ? 0 : 1;
    wl_init(argc, argv);
    int notify = argc >= 3 && strcmp(argv[2], "notify") == 0;
    int orphan = argc >= 3 && strcmp(argv[2], "orphan") == 0;
    if (orphan || (argc >= 3 && strcmp(argv[2], "ipcns") == 0)) {
        if (unshare(CLONE_NEWIPC) != 0) { perror("unshare ipc"); return 2; }
        struct mq_attr a = { 0, 2, 16, 0 };
        mqd_t o = orphan ? mq_open("/misc-orphan", O_CREAT | O_RDWR, 0600, &a) : 0;
        if (o < 0) { perror("mq_open orphan"); return 2; }
        if (orphan) mq_close(o);
    }
    char name[64], gone[64];
    snprintf(name, sizeof name, "/misc-mq-%d", getpid());
    snprintf(gone, sizeof gone, "/misc-mqu-%d", getpid());
    wl_write_file("qname", name);
    mq_unlink(name);
    struct mq_attr a1 = { 0, 8, 64, 0 }, a2 = { 0, 4, 32, 0 };
    mqd_t q1 = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0640, &a1);
    mqd_t q1r = mq_open(name, O_RDONLY | O_NONBLOCK);
    mqd_t q2 = mq_open(gone, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &a2);
    if (q1 < 0 || q1r < 0 || q2 < 0) { perror("mq_open"); return 2; }
    mq_unlink(gone);
    /* sent out of order: the queue orders them by priority, then by arrival */
    int order[] = { 3, 1, 4, 0, 2 };
    for (int i = 0; i < 5; i++) mq_send(q1, texts[order[i]], strlen(texts[order[i]]), prios[order[i]]);
    mq_send(q2, "first", 5, 0);
    mq_send(q2, "second", 6, 0);
    if (notify) {
        struct sigevent ev = { .sigev_notify = SIGEV_NONE };
        if (mq_notify(q1, &ev) != 0) { perror("mq_notify"); return 2; }
    }
    struct stat s1, s2;
    fstat(q1, &s1);
    fstat(q2, &s2);
    wl_ready();
    wl_wait_go();

    struct mq_attr w1 = { 0, 8, 64, 5 }, w1r = { O_NONBLOCK, 8, 64, 5 }, w2 = { O_NONBLOCK, 4, 32, 2 };
    expect_attr(q1, &w1, "named queue");
    expect_attr(q1r, &w1r, "named queue, second open");
    expect_attr(q2, &w2, "unlinked queue");
    struct stat t1, t2;
    if (fstat(q1, &t1) != 0 || (t1.st_mode & 07777) != 0640 || t1.st_uid != s1.st_uid || t1.st_ino == 0)
        wl_fail("named queue: mode %o uid %d, want 640 %d", t1.st_mode & 07777, t1.st_uid, s1.st_uid);
    if (fstat(q2, &t2) != 0 || (t2.st_mode & 07777) != 0600 || t2.st_nlink != 0)
        wl_fail("unlinked queue: mode %o nlink %ld, want 600, 0", t2.st_mode & 07777, (long)t2.st_nlink);
    for (int i = 0; i < 5; i++) expect_message(q1r, texts[i], prios[i], "named queue");
    char buf[64];
    if (mq_receive(q1r, buf, sizeof buf, NULL) >= 0 || errno != EAGAIN) wl_fail("named queue holds more than five messages");
    if (mq_send(q1r, "x", 1, 0) == 0 || errno != EBADF) wl_fail("the O_RDONLY open can send");
    expect_message(q2, "first", 0, "unlinked queue");
    expect_message(q2, "second", 0, "unlinked queue");
    if (mq_receive(q2, buf, sizeof buf, NULL) >= 0 || errno != EAGAIN) wl_fail("unlinked queue holds more than two messages");
    mq_send(q1, "again", 5, 3);
    expect_message(q1r, "again", 3, "named queue after go");
    mqd_t again = mq_open(name, O_RDONLY);
    if (again < 0) wl_fail("named queue %s is no longer linked: %s", name, strerror(errno));
    else mq_close(again);
    if (mq_open(gone, O_RDONLY) >= 0 || errno != ENOENT) wl_fail("unlinked queue %s has a name again", gone);
    mq_unlink(name);
    wl_finish();
}
