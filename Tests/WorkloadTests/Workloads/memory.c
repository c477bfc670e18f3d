/* memory: argv[2] MiB (default 512) of anonymous memory filled with xorshift data,
 * checksum kept in a variable; plus a 64 MiB region that is only read (zero page
 * mapped) and must still read as zeros. After go: recompute, compare. */
#include "workload.h"

static uint64_t checksum(const uint64_t *p, size_t words)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < words; i++) h = (h ^ p[i]) * 0x100000001b3ULL + (h >> 29);
    return h;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 512;
    size_t size = mib << 20, zsize = 64UL << 20;
    uint64_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile uint64_t *zero = mmap(NULL, zsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || zero == MAP_FAILED) { perror("mmap"); return 2; }
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid(), s = seed;
    size_t words = size / 8;
    for (size_t i = 0; i < words; i++) mem[i] = wl_xorshift(&s);
    uint64_t sum = checksum(mem, words);
    /* read-only touch: maps the shared zero page everywhere */
    uint64_t acc = 0;
    for (size_t i = 0; i < zsize / 8; i += 512) acc |= zero[i];
    if (acc) { wl_fail("fresh anonymous memory is not zero"); wl_finish(); }
    wl_ready();
    wl_wait_go();

    uint64_t again = checksum(mem, words);
    if (again != sum) {
        s = seed;
        size_t bad = 0, first = (size_t)-1;
        for (size_t i = 0; i < words; i++)
            if (mem[i] != wl_xorshift(&s)) { bad++; if (first == (size_t)-1) first = i; }
        wl_fail("checksum %016llx != %016llx: %zu of %zu words differ, first at byte offset %zu",
                (unsigned long long)again, (unsigned long long)sum, bad, words, first * 8);
    }
    for (size_t i = 0; i < zsize / 8; i++)
        if (zero[i] != 0) { wl_fail("zero region: byte offset %zu reads %016llx", i * 8, (unsigned long long)zero[i]); break; }
    /* the memory is still ordinary writable memory */
    mem[words / 2] ^= 1;
    zero[zsize / 16] = 7;
    if (zero[zsize / 16] != 7) wl_fail("zero region not writable");
    wl_finish();
}
