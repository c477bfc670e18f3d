/* sched-ids: scheduling of every thread, loginuid and membarrier registrations.
 * Threads: SCHED_OTHER nice 5 (main), BATCH nice 7, IDLE (nice 5, inherited), FIFO 10, RR 20 with
 * SCHED_RESET_ON_FORK, OTHER nice -3 with SCHED_RESET_ON_FORK. loginuid 4242. Private
 * and global expedited membarrier registered. After go every value is read again. */
#include "workload.h"
#include <linux/membarrier.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sys/resource.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)   /* Linux 6.3, newer than these headers */
#endif

/* <linux/sched/types.h> clashes with glibc's struct sched_param. */
struct sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

enum { NT = 6 };
struct want { int policy; int nice; int prio; int reset; };
static const struct want want[NT] = {
    { SCHED_OTHER, 5, 0, 0 }, { SCHED_BATCH, 7, 0, 0 }, { SCHED_IDLE, 5, 0, 0 },
    { SCHED_FIFO, 0, 10, 0 }, { SCHED_RR, 0, 20, 1 }, { SCHED_OTHER, -3, 0, 1 },
};
static volatile pid_t tids[NT];
static volatile int set_up[NT];

static int set_sched(int i)
{
    struct sched_attr a = { .size = sizeof a, .sched_policy = want[i].policy, .sched_nice = want[i].nice,
                            .sched_priority = want[i].prio, .sched_flags = want[i].reset ? SCHED_FLAG_RESET_ON_FORK : 0 };
    return syscall(SYS_sched_setattr, 0, &a, 0);
}

static void check(int i, const char *when)
{
    struct sched_attr a = { 0 };
    if (syscall(SYS_sched_getattr, tids[i], &a, sizeof a, 0) != 0) { wl_fail("%s: sched_getattr(%d): %s", when, tids[i], strerror(errno)); return; }
    int nice = (want[i].policy == SCHED_FIFO || want[i].policy == SCHED_RR) ? 0 : a.sched_nice;
    int reset = (a.sched_flags & SCHED_FLAG_RESET_ON_FORK) != 0;
    if ((int)a.sched_policy != want[i].policy || nice != want[i].nice || (int)a.sched_priority != want[i].prio || reset != want[i].reset)
        wl_fail("%s: thread %d policy %u nice %d prio %u reset %d, want %d %d %d %d", when, i,
                a.sched_policy, a.sched_nice, a.sched_priority, reset, want[i].policy, want[i].nice, want[i].prio, want[i].reset);
}

static void *thread(void *arg)
{
    int i = (int)(long)arg;
    tids[i] = gettid();
    if (set_sched(i) != 0) { wl_fail("sched_setattr thread %d: %s", i, strerror(errno)); }
    set_up[i] = 1;
    for (;;) pause();
    return NULL;
}

static long loginuid(void)
{
    char buf[32] = "";
    int fd = open("/proc/self/loginuid", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atol(buf) : -1;
}

static int membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

/* "deadline": one thread under SCHED_DEADLINE, which the dump refuses; the workload
 * must keep running with it. */
static void *deadline_thread(void *arg)
{
    (void)arg;
    tids[1] = gettid();
    struct sched_attr a = { .size = sizeof a, .sched_policy = 6 /* SCHED_DEADLINE */,
                            .sched_runtime = 1000000, .sched_deadline = 10000000, .sched_period = 10000000 };
    set_up[0] = syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 1 : -errno;
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (argc > 2 && strcmp(argv[2], "deadline") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, deadline_thread, NULL);
        while (!set_up[0]) wl_sleep_ms(1);
        if (set_up[0] < 0) { wl_fail("SCHED_DEADLINE: %s", strerror(-set_up[0])); wl_finish(); }
        wl_ready();
        wl_wait_go();
        struct sched_attr a = { 0 };
        if (syscall(SYS_sched_getattr, tids[1], &a, sizeof a, 0) != 0 || a.sched_policy != 6 || a.sched_runtime != 1000000)
            wl_fail("the thread is no longer under SCHED_DEADLINE (policy %u)", a.sched_policy);
        wl_finish();
    }
    tids[0] = gettid();
    if (set_sched(0) != 0) { wl_fail("sched_setattr main: %s", strerror(errno)); wl_finish(); }
    for (int i = 1; i < NT; i++) {
        pthread_t t;
        pthread_create(&t, NULL, thread, (void *)(long)i);
        while (!set_up[i]) wl_sleep_ms(1);
    }
    int fd = open("/proc/self/loginuid", O_WRONLY);
    if (fd < 0 || write(fd, "4242", 4) != 4) { wl_fail("set loginuid: %s", strerror(errno)); wl_finish(); }
    close(fd);
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0 || membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) {
        wl_fail("membarrier register: %s", strerror(errno)); wl_finish();
    }
    int regs = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
    for (int i = 0; i < NT; i++) check(i, "before");
    if (wl_fail_msg[0]) wl_finish();
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < NT; i++) check(i, "after");
    if (loginuid() != 4242) wl_fail("loginuid %ld, want 4242", loginuid());
    int now = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
    if (now != regs) wl_fail("membarrier registrations 0x%x, want 0x%x", now, regs);
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) wl_fail("private expedited membarrier: %s", strerror(errno));
    wl_finish();
}
