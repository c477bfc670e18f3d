/* page-server: what a page server must carry. argv[2] MiB (default 16) of private
 * anonymous memory with xorshift data and holes (a run of untouched pages every 64),
 * 1 MiB of MAP_SHARED anonymous memory (a shmem pagemap), and a thread counting in
 * memory. After go: both checksums again, and the counter kept its value and counts on. */
#include "workload.h"
#include <pthread.h>

static volatile uint64_t counter;

static void *count(void *arg)
{
    (void)arg;
    for (;;) { counter++; wl_sleep_ms(1); }
    return NULL;
}

static uint64_t checksum(const uint64_t *p, size_t words)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < words; i++) h = (h ^ p[i]) * 0x100000001b3ULL + (h >> 29);
    return h;
}

static void fill(uint64_t *p, size_t words, uint64_t seed, int holes)
{
    uint64_t s = seed;
    for (size_t i = 0; i < words; i++) {
        uint64_t v = wl_xorshift(&s);
        /* every 64th page stays untouched: runs, not one block */
        if (!holes || (i / 512) % 64 != 63) p[i] = v;
    }
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    size_t size = (argc > 2 ? strtoul(argv[2], NULL, 10) : 16) << 20, ssize = 1 << 20;
    uint64_t *priv = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *shared = wl_shared(ssize);
    if (priv == MAP_FAILED) { perror("mmap"); return 2; }
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    fill(priv, size / 8, seed, 1);
    fill(shared, ssize / 8, ~seed, 0);
    uint64_t psum = checksum(priv, size / 8), ssum = checksum(shared, ssize / 8);
    pthread_t t;
    if (pthread_create(&t, NULL, count, NULL)) { perror("pthread_create"); return 2; }
    while (counter < 5) wl_sleep_ms(1);
    uint64_t before = counter;
    wl_ready();
    wl_wait_go();

    uint64_t at_go = counter;
    if (at_go < before) wl_fail("counter went back from %llu to %llu", (unsigned long long)before, (unsigned long long)at_go);
    if (checksum(priv, size / 8) != psum) wl_fail("private memory checksum differs");
    if (checksum(shared, ssize / 8) != ssum) wl_fail("shared memory checksum differs");
    for (size_t i = 0; i < size / 8; i += 512)
        if ((i / 512) % 64 == 63 && priv[i] != 0) { wl_fail("untouched page at offset %zu reads %llx", i * 8, (unsigned long long)priv[i]); break; }
    double until = wl_now() + 2;
    while (counter < at_go + 5 && wl_now() < until) wl_sleep_ms(5);
    if (counter < at_go + 5) wl_fail("the counting thread stopped at %llu", (unsigned long long)counter);
    wl_finish();
}
