/* malloc-rseq: 4 threads malloc/free random sizes (small ones from the brk heap or a
 * thread arena, >128 KiB ones through mmap), tagging each block and checking the tag on
 * free; glibc registered rseq for every thread. After go: allocation goes on for 1 s
 * more without a crash; every thread's rseq area is still registered with the kernel
 * (re-registering the same area gives EBUSY) and shows a valid cpu_id; sbrk still
 * grows and shrinks. */
#include "workload.h"
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/rseq.h>

#define T 4
#define SLOTS 64
static _Atomic uint64_t ops[T];
static _Atomic int stop, started;
static char errs[T + 1][200];
static long ncpu;

static struct rseq *rseq_area(void)
{
    char *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return (struct rseq *)(tp + __rseq_offset);
}

/* "" when this thread's rseq is registered at glibc's area, else a reason. */
static void rseq_check(char *msg, size_t len, const char *who)
{
    struct rseq *rs = rseq_area();
    int32_t cpu = (int32_t)rs->cpu_id;
    if (cpu < 0 || cpu >= ncpu) { snprintf(msg, len, "%s: rseq cpu_id %d", who, cpu); return; }
    unsigned lens[2] = { 32, __rseq_size };
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_rseq, rs, lens[i], 0, RSEQ_SIG);
        if (r == 0) { snprintf(msg, len, "%s: rseq was not registered (registering it again succeeded)", who); return; }
        if (errno == EBUSY) return;
    }
    snprintf(msg, len, "%s: rseq registered elsewhere or with other parameters (%s)", who, strerror(errno));
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "thread %d", t);
    uint64_t s = 0x1234567ULL * (uint64_t)(t + 1);
    unsigned char *slot[SLOTS] = { 0 };
    size_t size[SLOTS] = { 0 };
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop)) {
        uint64_t r = wl_xorshift(&s);
        int j = (int)(r % SLOTS);
        if (slot[j]) {
            unsigned char tag = (unsigned char)(j + t * SLOTS);
            if (slot[j][0] != tag || slot[j][size[j] - 1] != tag || slot[j][size[j] / 2] != tag) {
                snprintf(errs[t], sizeof errs[t], "%s: block of %zu bytes lost its tag", who, size[j]);
                break;
            }
            free(slot[j]);
        }
        size[j] = (r >> 8) % 10 < 7 ? 16 + (r >> 16) % 4096 : (128 << 10) + (r >> 16) % (1 << 20);
        slot[j] = malloc(size[j]);
        if (!slot[j]) { snprintf(errs[t], sizeof errs[t], "%s: malloc(%zu) failed", who, size[j]); break; }
        memset(slot[j], (unsigned char)(j + t * SLOTS), size[j] < 256 ? size[j] : 256);
        slot[j][size[j] - 1] = slot[j][size[j] / 2] = (unsigned char)(j + t * SLOTS);
        uint64_t n = atomic_fetch_add(&ops[t], 1) + 1;
        if (n % 64 == 0) {
            if ((int32_t)rseq_area()->cpu_id < 0) { snprintf(errs[t], sizeof errs[t], "%s: rseq cpu_id < 0", who); break; }
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
    }
    if (!errs[t][0]) rseq_check(errs[t], sizeof errs[t], who);
    for (int j = 0; j < SLOTS; j++) free(slot[j]);
    return NULL;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    ncpu = sysconf(_SC_NPROCESSORS_CONF);
    if (__rseq_size == 0) { wl_fail("glibc did not register rseq (__rseq_size 0)"); wl_finish(); }
    mallopt(M_ARENA_MAX, 2);            /* threads share the brk arena and one mmap'd arena */
    mallopt(M_MMAP_THRESHOLD, 128 << 10); /* fixed: >128 KiB always through mmap */
    mallopt(M_TRIM_THRESHOLD, 256 << 10); /* the brk heap shrinks too */
    pthread_t th[T];
    for (int t = 0; t < T; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    while (atomic_load(&started) < T) wl_sleep_ms(1);
    wl_sleep_ms(100);
    wl_ready();
    wl_wait_go();

    uint64_t before[T];
    for (int t = 0; t < T; t++) before[t] = atomic_load(&ops[t]);
    wl_sleep_ms(1000);
    for (int t = 0; t < T; t++)
        if (atomic_load(&ops[t]) < before[t] + 100 && !errs[t][0])
            wl_fail("thread %d: only %llu allocations in 1 s", t, (unsigned long long)(atomic_load(&ops[t]) - before[t]));
    atomic_store(&stop, 1);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++) if (errs[t][0]) wl_fail("%s", errs[t]);
    rseq_check(errs[T], sizeof errs[T], "main thread");
    if (errs[T][0]) wl_fail("%s", errs[T]);
    malloc_trim(0);
    char *cur = sbrk(0);
    char *p = sbrk(1 << 20);
    if (p != cur) wl_fail("sbrk(+1 MiB) returned %p, break was %p", p, cur);
    else {
        memset(p, 0x5a, 1 << 20);
        if (sbrk(-(1 << 20)) == (void *)-1 || sbrk(0) != cur) wl_fail("sbrk(-1 MiB) did not shrink the break back");
    }
    void *big = malloc(64 << 20);
    if (!big) wl_fail("malloc(64 MiB) failed");
    else { memset(big, 1, 64 << 20); free(big); }
    wl_finish();
}
