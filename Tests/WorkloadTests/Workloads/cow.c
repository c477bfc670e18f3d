/* cow: memory shared copy-on-write between a parent and its forked child.
 * The parent fills 32 MiB of private anonymous memory, forks; the child changes a few
 * pages and drops one (MADV_DONTNEED: reads zero), then forks a grandchild that changes
 * one more; the parent changes one more too. After go each checks the contents and that
 * the region is still mostly shared (smaps: Shared_* high, Private_Dirty low), then COW
 * between parent and child: a write by one is not seen by the other. */
#include "workload.h"

#define SIZE (32UL << 20)
#define PAGE 4096UL
#define CHILD_PAGES 4
static const size_t child_pages[CHILD_PAGES] = { 3, 1000, 4095, 8000 };
static const size_t dropped_page = 5000, parent_page = 6000, ping_page = 7000, pong_page = 2000, grandchild_page = 3000;

static uint64_t *mem;
static uint64_t seed;

/* generation: 0 parent, 1 child, 2 grandchild (which has the child's changes too) */
static uint64_t expected_word(size_t i, int child)
{
    size_t page = i * 8 / PAGE;
    if (child == 2 && page == grandchild_page) return 0x9a9a000000000000ULL | i;
    if (child) {
        for (int k = 0; k < CHILD_PAGES; k++)
            if (page == child_pages[k]) return 0xc0ffee0000000000ULL | i;
        if (page == dropped_page) return 0;
    } else if (page == parent_page) {
        return 0xbadcafe000000000ULL | i;
    }
    return 0;  /* caller uses the xorshift stream */
}

static void check_contents(int child)
{
    uint64_t s = seed;
    for (size_t i = 0; i < SIZE / 8; i++) {
        uint64_t want = wl_xorshift(&s);
        uint64_t special = expected_word(i, child);
        size_t page = i * 8 / PAGE;
        int is_special = special != 0 || (child && page == dropped_page);
        if (is_special) want = special;
        if (mem[i] != want) {
            wl_fail("generation %d: word %zu (page %zu) is %016llx, want %016llx", child, i, page,
                    (unsigned long long)mem[i], (unsigned long long)want);
            return;
        }
    }
}

/* Shared_Clean+Shared_Dirty and Private_Dirty of the area at mem, in KiB. */
static void sharing(long *shared, long *private_dirty)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    *shared = *private_dirty = -1;
    unsigned long start = (unsigned long)mem;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a <= start && start < b;
            if (in) *shared = *private_dirty = 0;
            continue;
        }
        long kb;
        if (!in) continue;
        if (sscanf(line, "Shared_Clean: %ld kB", &kb) == 1 || sscanf(line, "Shared_Dirty: %ld kB", &kb) == 1) *shared += kb;
        if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1) *private_dirty += kb;
    }
    if (f) fclose(f);
}

static void check_sharing(const char *who)
{
    long shared, priv;
    sharing(&shared, &priv);
    long total = SIZE >> 10;
    if (shared < total * 9 / 10 || priv > total / 10)
        wl_fail("%s: region %p no longer shared: Shared %ld kB, Private_Dirty %ld kB of %ld kB", who, (void *)mem, shared, priv, total);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 2; }
    seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    uint64_t s = seed;
    for (size_t i = 0; i < SIZE / 8; i++) mem[i] = wl_xorshift(&s);
    int to_child[2], to_parent[2];
    if (pipe(to_child) || pipe(to_parent)) { perror("pipe"); return 2; }
    volatile char *status = wl_shared(4096);
    pid_t kid = fork();
    if (kid < 0) { perror("fork"); return 2; }
    if (kid == 0) {
        for (int k = 0; k < CHILD_PAGES; k++)
            for (size_t i = child_pages[k] * PAGE / 8; i < (child_pages[k] + 1) * PAGE / 8; i++) mem[i] = expected_word(i, 1);
        madvise((char *)mem + dropped_page * PAGE, PAGE, MADV_DONTNEED);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            for (size_t i = grandchild_page * PAGE / 8; i < (grandchild_page + 1) * PAGE / 8; i++) mem[i] = expected_word(i, 2);
            status[2000] = 1;
            wl_wait_go();
            check_contents(2);
            check_sharing("grandchild");
            snprintf((char *)status + 2001, 1000, "%.900s", wl_fail_msg);
            _exit(wl_fail_msg[0] ? 1 : 0);
        }
        while (!status[2000]) wl_sleep_ms(1);
        *(volatile pid_t *)(status + 3800) = grandchild;
        status[0] = 1;
        wl_wait_go();
        check_contents(1);
        check_sharing("child");
        char c;
        /* the parent wrote ping_page: the child still sees its own copy */
        if (read(to_child[0], &c, 1) != 1) wl_fail("child: read pipe");
        s = seed;
        uint64_t want = 0;
        for (size_t i = 0; i <= ping_page * PAGE / 8; i++) want = wl_xorshift(&s);
        if (mem[ping_page * PAGE / 8] != want) wl_fail("child: sees the parent's write after fork");
        mem[pong_page * PAGE / 8] = 0x1234;
        if (write(to_parent[1], "k", 1) != 1) wl_fail("child: write pipe");
        int gst;
        if (waitpid(grandchild, &gst, 0) != grandchild || !WIFEXITED(gst) || WEXITSTATUS(gst) != 0)
            wl_fail("grandchild: %s", status[2001] ? (const char *)status + 2001 : "exited badly");
        snprintf((char *)status + 1, 1000, "%.900s", wl_fail_msg);
        _exit(wl_fail_msg[0] ? 1 : 0);
    }
    for (size_t i = parent_page * PAGE / 8; i < (parent_page + 1) * PAGE / 8; i++) mem[i] = expected_word(i, 0);
    while (!status[0]) wl_sleep_ms(1);
    pid_t pids[3] = { getpid(), kid, *(volatile pid_t *)(status + 3800) };
    wl_ready_pids(pids, 3);
    wl_wait_go();
    check_contents(0);
    check_sharing("parent");
    mem[ping_page * PAGE / 8] = 0x5678;
    if (write(to_child[1], "p", 1) != 1) wl_fail("parent: write pipe");
    char c;
    if (read(to_parent[0], &c, 1) != 1) wl_fail("parent: read pipe");
    s = seed;
    uint64_t want = 0;
    for (size_t i = 0; i <= pong_page * PAGE / 8; i++) want = wl_xorshift(&s);
    if (mem[pong_page * PAGE / 8] != want) wl_fail("parent: sees the child's write");
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        wl_fail("child: %s", status[1] ? (const char *)status + 1 : "exited badly");
    wl_finish();
}
