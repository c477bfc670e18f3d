/* lazy: memory a lazy restore leaves to the lazy-pages daemon, used after go while it is
 * still missing. Areas A (16 MiB, every 7th page never touched), B, C, D (4 MiB each), a
 * heap block, a static array and a counter. Before ready: fill them, count, write their
 * checksums to DIR/sums (a file: not restored memory). After go, in this order:
 *   "missing": the first page of A, B, C and D is not present yet (/proc/self/pagemap);
 *   a forked child checksums A (its pages arrive through its own userfaultfd);
 *   madvise(DONTNEED) on B's first half: zero there (no stale saved page), data after;
 *   mremap of C into a reserved hole: its data moved along;
 *   munmap of D's middle 2 MiB and a new mapping there: zero, D's ends keep their data;
 *   A, the heap block and the static array checksum as before; the counter continues;
 *   "missing": E (8 MiB, untouched so far) arrives whole in the background, then sums right. */
#include "workload.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define MB (1UL << 20)
#define PAGE 4096UL
static unsigned long statics[32768];
static volatile unsigned long counter;

static void fill(unsigned char *p, size_t len, uint64_t seed, int holes)
{
    for (size_t off = 0; off < len; off += PAGE) {
        if (holes && (off / PAGE) % 7 == 3) continue;
        uint64_t *w = (uint64_t *)(p + off);
        for (size_t i = 0; i < PAGE / 8; i++) w[i] = (off / 8 + i) * 0x9E3779B97F4A7C15ULL ^ seed;
    }
}

static uint64_t sum(const void *p, size_t len)
{
    const uint64_t *w = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len / 8; i++) h = (h ^ w[i]) * 1099511628211ULL;
    return h;
}

static int zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) if (p[i]) return 0;
    return 1;
}

static int present(const void *addr)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t e = 0;
    if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)addr / PAGE * 8)) != 8) { perror("pagemap"); exit(2); }
    close(fd);
    return (int)(e >> 63);
}

static unsigned char *area(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    return p;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int missing = argc > 2 && !strcmp(argv[2], "missing");
    unsigned char *a = area(16 * MB), *b = area(4 * MB), *c = area(4 * MB), *d = area(4 * MB), *e = area(8 * MB);
    unsigned char *hole = mmap(NULL, 4 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *heap = malloc(64 * 1024);
    if (!heap || hole == MAP_FAILED) { perror("alloc"); return 2; }
    fill(a, 16 * MB, 1, 1); fill(b, 4 * MB, 2, 0); fill(c, 4 * MB, 3, 0); fill(d, 4 * MB, 4, 0);
    fill(e, 8 * MB, 7, 1); fill(heap, 64 * 1024, 5, 0); fill((unsigned char *)statics, sizeof statics, 6, 0);
    for (int i = 0; i < 1000; i++) counter++;
    uint64_t want[7] = { sum(a, 16 * MB), sum(b + 2 * MB, 2 * MB), sum(c, 4 * MB), sum(d, MB) ^ sum(d + 3 * MB, MB),
                         sum(heap, 64 * 1024), sum(statics, sizeof statics), sum(e, 8 * MB) };
    char text[256];
    snprintf(text, sizeof text, "%lx %lx %lx %lx %lx %lx %lx %lu\n", (unsigned long)want[0], (unsigned long)want[1],
             (unsigned long)want[2], (unsigned long)want[3], (unsigned long)want[4], (unsigned long)want[5],
             (unsigned long)want[6], (unsigned long)counter);
    wl_write_file("sums", text);
    wl_ready();
    wl_wait_go();

    unsigned long w[7], count;
    FILE *f = fopen("sums", "r");
    if (!f || fscanf(f, "%lx %lx %lx %lx %lx %lx %lx %lu", &w[0], &w[1], &w[2], &w[3], &w[4], &w[5], &w[6], &count) != 8) { wl_fail("DIR/sums unreadable"); wl_finish(); }
    fclose(f);
    if (missing && (present(a) || present(b) || present(c) || present(d + 2 * MB)))
        wl_fail("pages present before use: A %d B %d C %d D %d (not lazy, or the background copy came first)",
                present(a), present(b), present(c), present(d + 2 * MB));
    pid_t child = fork();
    if (child == 0) _exit(sum(a, 16 * MB) == w[0] ? 0 : 1);
    int st = 0;
    if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        wl_fail("forked child: A's checksum differs (status 0x%x)", st);
    if (madvise(b, 2 * MB, MADV_DONTNEED) != 0) wl_fail("madvise: %s", strerror(errno));
    if (!zero(b, 2 * MB)) wl_fail("B after MADV_DONTNEED is not zero");
    if (sum(b + 2 * MB, 2 * MB) != w[1]) wl_fail("B's second half differs");
    if (mremap(c, 4 * MB, 4 * MB, MREMAP_MAYMOVE | MREMAP_FIXED, hole) != hole) wl_fail("mremap: %s", strerror(errno));
    else if (sum(hole, 4 * MB) != w[2]) wl_fail("C moved by mremap differs");
    if (munmap(d + MB, 2 * MB) != 0 || mmap(d + MB, 2 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != d + MB)
        wl_fail("munmap/mmap of D: %s", strerror(errno));
    if (!zero(d + MB, 2 * MB)) wl_fail("D mapped again after munmap is not zero");
    if ((sum(d, MB) ^ sum(d + 3 * MB, MB)) != w[3]) wl_fail("D's ends differ");
    if (sum(a, 16 * MB) != w[0]) wl_fail("A differs");
    if (sum(heap, 64 * 1024) != w[4]) wl_fail("heap block differs");
    if (sum(statics, sizeof statics) != w[5]) wl_fail("static array differs");
    if (counter != count) wl_fail("counter %lu, want %lu", (unsigned long)counter, count);
    for (int i = 0; i < 10; i++) counter++;
    if (counter != count + 10) wl_fail("counter does not continue: %lu", (unsigned long)counter);
    if (missing) {
        size_t page = 0;
        for (double until = wl_now() + 10; page < 8 * MB / PAGE && wl_now() < until; ) {
            if (page % 7 == 3 || present(e + page * PAGE)) page++;
            else wl_sleep_ms(5);
        }
        if (page < 8 * MB / PAGE) wl_fail("E's page %zu did not arrive in the background", page);
    }
    if (sum(e, 8 * MB) != w[6]) wl_fail("E differs");
    wl_finish();
}
