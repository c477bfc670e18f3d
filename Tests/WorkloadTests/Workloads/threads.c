/* threads: 8 pthreads, each incrementing its own counter with tiny sleeps.
 * Each thread keeps a private copy of its counter on its stack and checks that the
 * published one agrees every round, and that its TID never changes.
 * After go: every counter still increases from at least where it was at ready,
 * all 8 threads are alive (/proc/self/task has 9 entries). */
#include "workload.h"
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#define N 8

static _Atomic uint64_t counter[N];
static _Atomic int ready_threads, stop;
static pid_t tids[N];
static char errs[N][160];

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    tids[i] = tid;
    uint64_t mine = 0;
    atomic_fetch_add(&ready_threads, 1);
    while (!atomic_load(&stop)) {
        if (atomic_load(&counter[i]) != mine) {
            snprintf(errs[i], sizeof errs[i], "thread %d: counter %llu != private %llu", i,
                     (unsigned long long)atomic_load(&counter[i]), (unsigned long long)mine);
            break;
        }
        if ((pid_t)syscall(SYS_gettid) != tid) {
            snprintf(errs[i], sizeof errs[i], "thread %d: tid changed from %d to %ld", i, tid,
                     (long)syscall(SYS_gettid));
            break;
        }
        mine++;
        atomic_store(&counter[i], mine);
        struct timespec ts = { 0, 200000 + 50000 * i };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) { perror("pthread_create"); return 2; }
    while (atomic_load(&ready_threads) < N) wl_sleep_ms(1);
    wl_sleep_ms(50);
    uint64_t at_ready[N];
    for (int i = 0; i < N; i++) at_ready[i] = atomic_load(&counter[i]);
    wl_ready();
    wl_wait_go();

    int tasks = count_tasks();
    if (tasks != N + 1) wl_fail("/proc/self/task has %d entries, want %d", tasks, N + 1);
    uint64_t before[N];
    for (int i = 0; i < N; i++) {
        before[i] = atomic_load(&counter[i]);
        if (before[i] < at_ready[i])
            wl_fail("thread %d: counter went back from %llu to %llu", i,
                    (unsigned long long)at_ready[i], (unsigned long long)before[i]);
    }
    /* every counter must move on within 2 s */
    for (int i = 0; i < N; i++) {
        double deadline = wl_now() + 2.0;
        while (atomic_load(&counter[i]) <= before[i] + 5 && wl_now() < deadline && !errs[i][0]) wl_sleep_ms(5);
        if (errs[i][0]) wl_fail("%s", errs[i]);
        else if (atomic_load(&counter[i]) <= before[i] + 5)
            wl_fail("thread %d (tid %d): counter stuck at %llu", i, tids[i], (unsigned long long)atomic_load(&counter[i]));
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        if (errs[i][0]) wl_fail("%s", errs[i]);
    wl_finish();
}
