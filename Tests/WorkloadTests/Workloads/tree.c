/* tree: root + 5 children (each in its own process group) + 9 grandchildren per child.
 * Every process records pid/ppid/pgid/sid at start (in its own memory); after go each
 * verifies them unchanged (the root's parent may change: the restored tree is
 * reparented) and reports in a MAP_SHARED slot array made before forking. */
#include "workload.h"

#define KIDS 5
#define GRAND 9
#define TOTAL (1 + KIDS + KIDS * GRAND)

struct slot {
    volatile int pid, ready, done; /* done: 1 pass, 2 fail */
    char msg[120];
};
static struct slot *slots;
static pid_t my_pid, my_ppid, my_pgid, my_sid;

static void record(int idx)
{
    my_pid = getpid(); my_ppid = getppid(); my_pgid = getpgid(0); my_sid = getsid(0);
    slots[idx].pid = my_pid;
    __sync_synchronize();
    slots[idx].ready = 1;
}

static void check(int idx, int check_ppid)
{
    struct slot *s = &slots[idx];
    if (getpid() != my_pid || (pid_t)syscall(SYS_getpid) != my_pid)
        snprintf(s->msg, sizeof s->msg, "slot %d: pid %d != %d", idx, (int)syscall(SYS_getpid), my_pid);
    else if (check_ppid && getppid() != my_ppid)
        snprintf(s->msg, sizeof s->msg, "pid %d: ppid %d != %d", my_pid, getppid(), my_ppid);
    else if (getpgid(0) != my_pgid)
        snprintf(s->msg, sizeof s->msg, "pid %d: pgid %d != %d", my_pid, getpgid(0), my_pgid);
    else if (getsid(0) != my_sid)
        snprintf(s->msg, sizeof s->msg, "pid %d: sid %d != %d", my_pid, getsid(0), my_sid);
    __sync_synchronize();
    s->done = s->msg[0] ? 2 : 1;
}

static void grandchild(int idx)
{
    record(idx);
    wl_wait_go();
    check(idx, 1);
    _exit(0);
}

static void child(int k)
{
    if (setpgid(0, 0) != 0) { perror("setpgid"); _exit(1); }
    int idx = 1 + k * (GRAND + 1);
    record(idx);
    if (my_pgid != my_pid) { snprintf(slots[idx].msg, sizeof slots[idx].msg, "pgid %d != pid %d", my_pgid, my_pid); }
    for (int g = 0; g < GRAND; g++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); _exit(1); }
        if (p == 0) grandchild(idx + 1 + g);
    }
    wl_wait_go();
    if (slots[idx].msg[0] == 0) check(idx, 1);
    else slots[idx].done = 2;
    /* reap the grandchildren only after they checked their ppid */
    int st, bad = 0;
    for (int g = 0; g < GRAND; g++)
        if (waitpid(-1, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    _exit(bad ? 1 : 0);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    slots = wl_shared(sizeof(struct slot) * TOTAL);
    record(0);
    if (my_sid != my_pid || my_pgid != my_pid) wl_fail("root: setsid did not make a session leader");
    for (int k = 0; k < KIDS; k++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 2; }
        if (p == 0) child(k);
    }
    double deadline = wl_now() + 15;
    for (int i = 0; i < TOTAL; i++)
        while (!slots[i].ready) {
            if (wl_now() > deadline) { wl_fail("process slot %d never got ready", i); wl_finish(); }
            wl_sleep_ms(5);
        }
    pid_t pids[TOTAL];
    for (int i = 0; i < TOTAL; i++) pids[i] = slots[i].pid;
    wl_ready_pids(pids, TOTAL);
    wl_wait_go();
    check(0, 0);
    deadline = wl_now() + 20;
    for (int i = 0; i < TOTAL; i++) {
        while (!slots[i].done && wl_now() < deadline) wl_sleep_ms(5);
        if (!slots[i].done) wl_fail("pid %d (slot %d) did not report", pids[i], i);
        else if (slots[i].done != 1) wl_fail("%s", slots[i].msg);
    }
    int st;
    for (int k = 0; k < KIDS; k++) {
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) { wl_fail("waitpid: %s", strerror(errno)); break; }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("child %d ended with status 0x%x", p, st);
    }
    wl_finish();
}
