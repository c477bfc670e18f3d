/* lazy-tree: a parent and two children restored lazily, their pages served per process.
 * Before the fork the parent fills S (8 MiB), which stays shared copy-on-write, and W
 * (2 MiB), which every process rewrites whole after the fork (its own copy, at the same
 * place in all three). After the fork process g (0 parent, 1 and 2 children) changes page
 * 100*g+7 of S (a child only), maps its own area P of (3+g) MiB (no other process has one
 * like it) and fills it, and counts. Its checksums go to DIR/sums-g (a file: not restored memory).
 * After go each process checks, in this order:
 *   "missing": P's first page is not present yet (lazy), S's and W's are (filled before
 *   the fork, as the dump wrote them);
 *   a forked grandchild checksums P (its pages come through its own userfaultfd);
 *   P, W and S checksum as before (S with its own changed page, not the others');
 *   S's pages it did not change are still shared, the one it changed is its own
 *   (/proc/self/pagemap: exclusively mapped or not);
 *   the counter continues. */
#include "workload.h"

#define MB (1UL << 20)
#define PAGE 4096UL
#define S_SIZE (8 * MB)
#define W_SIZE (2 * MB)
#define GENERATIONS 3

static unsigned char *s_area, *w_area, *p_area;
static size_t p_size;
static volatile unsigned long counter;

static void fill(unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t *w = (uint64_t *)p;
    for (size_t i = 0; i < len / 8; i++) w[i] = i * 0x9E3779B97F4A7C15ULL ^ seed;
}

static uint64_t sum(const void *p, size_t len)
{
    const uint64_t *w = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len / 8; i++) h = (h ^ w[i]) * 1099511628211ULL;
    return h;
}

/* The /proc/self/pagemap entries of `n` pages from `addr`. */
static void pagemap(const void *addr, uint64_t *entries, size_t n)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread(fd, entries, n * 8, (off_t)((uintptr_t)addr / PAGE * 8)) != (ssize_t)(n * 8)) { perror("pagemap"); exit(2); }
    close(fd);
}

static int present(const void *addr)
{
    uint64_t e;
    pagemap(addr, &e, 1);
    return (int)(e >> 63);
}

/* Between two PROT_NONE pages: the kernel merges neighbouring areas of one kind (P with
 * W, in a child), and only areas that match one to one are shared at restore. */
static unsigned char *area(size_t len)
{
    unsigned char *r = mmap(NULL, len + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED || mmap(r + PAGE, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != r + PAGE) {
        perror("mmap");
        exit(2);
    }
    return r + PAGE;
}

/* The page of S process g changes after the fork (none for the parent: a page the parent
 * changed would be one the children share with each other only, and the restore, as
 * CRIU's, shares a child's pages with its parent only). */
static size_t changed_page(int g) { return g ? 100 * (size_t)g + 7 : S_SIZE / PAGE; }

/* After the fork, in process g: its own memory, then its checksums. */
static void diverge(int g)
{
    if (g) fill(s_area + changed_page(g) * PAGE, PAGE, 0xc0ffee00 + (uint64_t)g);
    fill(w_area, W_SIZE, 0x5000 + (uint64_t)g);
    p_size = (3 + (size_t)g) * MB;
    p_area = area(p_size);
    fill(p_area, p_size, 0x7000 + (uint64_t)g);
    for (int i = 0; i < 1000 * (g + 1); i++) counter++;
    char name[32], text[128];
    snprintf(name, sizeof name, "sums-%d", g);
    snprintf(text, sizeof text, "%lx %lx %lx %lu\n", (unsigned long)sum(p_area, p_size), (unsigned long)sum(w_area, W_SIZE),
             (unsigned long)sum(s_area, S_SIZE), (unsigned long)counter);
    wl_write_file(name, text);
}

static void check(int g, int missing)
{
    char name[32];
    unsigned long want[3], count;
    snprintf(name, sizeof name, "sums-%d", g);
    FILE *f = fopen(name, "r");
    if (!f || fscanf(f, "%lx %lx %lx %lu", &want[0], &want[1], &want[2], &count) != 4) { wl_fail("%s unreadable", name); return; }
    fclose(f);
    if (missing && (present(p_area) || !present(s_area) || !present(s_area + 107 * PAGE) || !present(w_area)))
        wl_fail("generation %d: P present %d (want 0: lazy), S %d/%d and W %d (want 1: filled before the fork)", g,
                present(p_area), present(s_area), present(s_area + 107 * PAGE), present(w_area));
    pid_t grandchild = fork();
    if (grandchild == 0) _exit(sum(p_area, p_size) == want[0] ? 0 : 1);
    int st = 0;
    if (grandchild < 0 || waitpid(grandchild, &st, 0) != grandchild || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        wl_fail("generation %d: a forked grandchild sees another P (status 0x%x)", g, st);
    if (sum(p_area, p_size) != want[0]) wl_fail("generation %d: P differs", g);
    if (sum(w_area, W_SIZE) != want[1]) wl_fail("generation %d: W differs", g);
    if (sum(s_area, S_SIZE) != want[2]) wl_fail("generation %d: S differs", g);
    static uint64_t entries[S_SIZE / PAGE];
    pagemap(s_area, entries, S_SIZE / PAGE);
    for (size_t page = 0; page < S_SIZE / PAGE; page++) {
        int own = page == changed_page(g);
        if ((int)(entries[page] >> 56 & 1) != own) {
            wl_fail("generation %d: S's page %zu is %s, want %s", g, page, own ? "shared" : "its own", own ? "its own" : "shared copy-on-write");
            break;
        }
    }
    if (counter != count) wl_fail("generation %d: counter %lu, want %lu", g, (unsigned long)counter, count);
    for (int i = 0; i < 10; i++) counter++;
    if (counter != count + 10) wl_fail("generation %d: counter does not continue: %lu", g, (unsigned long)counter);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int missing = argc > 2 && !strcmp(argv[2], "missing");
    s_area = area(S_SIZE);
    w_area = area(W_SIZE);
    fill(s_area, S_SIZE, 1);
    fill(w_area, W_SIZE, 2);
    /* per generation: ready at 0, checked at 1 (the parent's: all may leave), failure message at 64 */
    volatile char *status = wl_shared(GENERATIONS * 1024);
    pid_t pids[GENERATIONS] = { getpid() };
    for (int g = 1; g < GENERATIONS; g++) {
        pids[g] = fork();
        if (pids[g] < 0) { perror("fork"); return 2; }
        if (pids[g] == 0) {
            diverge(g);
            status[g * 1024] = 1;
            wl_wait_go();
            check(g, missing);
            snprintf((char *)status + g * 1024 + 64, 900, "%.890s", wl_fail_msg);
            status[g * 1024 + 1] = 1;
            while (!status[1]) wl_sleep_ms(1);
            _exit(wl_fail_msg[0] ? 1 : 0);
        }
    }
    diverge(0);
    for (int g = 1; g < GENERATIONS; g++)
        while (!status[g * 1024]) wl_sleep_ms(1);
    wl_ready_pids(pids, GENERATIONS);
    wl_wait_go();
    check(0, missing);
    /* Nobody leaves before every process has checked S's sharing (an exit ends it). */
    for (int g = 1; g < GENERATIONS; g++)
        while (!status[g * 1024 + 1]) wl_sleep_ms(1);
    status[1] = 1;
    for (int g = 1; g < GENERATIONS; g++) {
        int st;
        if (waitpid(pids[g], &st, 0) != pids[g] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            wl_fail("child %d: %s", g, status[g * 1024 + 64] ? (const char *)status + g * 1024 + 64 : "exited badly");
    }
    wl_finish();
}
