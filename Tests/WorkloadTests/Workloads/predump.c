/* Memory that keeps changing through pre-dump, pre-dump, dump, restore.
 * Areas: `still` (16 MiB, written once, checksummed), `hot` (4 MiB, one page rewritten
 * per millisecond, each page stamped with a generation that `gens` must agree with, so a
 * page restored from a stale parent image shows), two counters in different areas that
 * move together, `gone` (unmapped at DIR/round1) and `fresh` (mapped at DIR/round1).
 * At DIR/round1 the root also forks a child that writes its own area and half of `hot`
 * (copy-on-write); at go the child checks itself and reports through its exit status.
 * DIR/round1-done answers round1 with the child's pid. */
#include "workload.h"

#define MIB (1024UL * 1024UL)
#define PAGE 4096UL
#define HOT_SIZE (4 * MIB)
#define HOT_PAGES (HOT_SIZE / PAGE)
#define SIDE_SIZE (2 * MIB)

static uint64_t word(uint64_t page, uint64_t gen, uint64_t i) {
    uint64_t s = (page + 1) * 0x9E3779B97F4A7C15ULL ^ (gen + 7) * 0xBF58476D1CE4E5B9ULL ^ (i + 3);
    return wl_xorshift(&s);
}

static void stamp(uint64_t *p, uint64_t page, uint64_t gen) {
    p[0] = gen;
    for (uint64_t i = 1; i < PAGE / 8; i++) p[i] = word(page, gen, i);
}

static int consistent(const uint64_t *p, uint64_t page, uint64_t gen) {
    if (p[0] != gen) return 0;
    for (uint64_t i = 1; i < PAGE / 8; i++) if (p[i] != word(page, gen, i)) return 0;
    return 1;
}

static void *area(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    return p;
}

static void fill(uint64_t *p, size_t size, uint64_t seed) {
    for (size_t i = 0; i < size / PAGE; i++) stamp(p + i * PAGE / 8, i, seed);
}

static void check_fill(const uint64_t *p, size_t size, uint64_t seed, const char *what) {
    for (size_t i = 0; i < size / PAGE; i++)
        if (!consistent(p + i * PAGE / 8, i, seed)) { wl_fail("%s: page %zu differs", what, i); return; }
}

static uint64_t *hot, *gens, *counter_b;
static size_t STILL_SIZE = 16 * MIB;
static uint64_t counter_a, rng = 88172645463325252ULL;

static void step(uint64_t lo, uint64_t span) {
    uint64_t page = lo + wl_xorshift(&rng) % span;
    uint64_t gen = gens[page] + 1;
    stamp(hot + page * PAGE / 8, page, gen);
    gens[page] = gen;
    counter_a++;
    (*counter_b)++;
}

static void check_hot(const char *who) {
    for (uint64_t i = 0; i < HOT_PAGES; i++)
        if (!consistent(hot + i * PAGE / 8, i, gens[i])) { wl_fail("%s: hot page %lu: generation %lu, gens says %lu", who, i, hot[i * PAGE / 8], gens[i]); return; }
    if (counter_a != *counter_b || counter_a == 0) wl_fail("%s: counters %lu and %lu", who, counter_a, *counter_b);
}

int main(int argc, char **argv) {
    wl_init(argc, argv);
    /* argv[2]: the unchanging area in MiB (the measure uses a large one). */
    if (argc > 2) STILL_SIZE = strtoul(argv[2], NULL, 10) * MIB;
    uint64_t *still = area(STILL_SIZE), *gone = area(SIDE_SIZE), *fresh = NULL;
    hot = area(HOT_SIZE);
    gens = area(HOT_PAGES * 8);
    counter_b = area(PAGE);
    fill(still, STILL_SIZE, 1);
    fill(gone, SIDE_SIZE, 2);
    for (uint64_t i = 0; i < HOT_PAGES; i++) stamp(hot + i * PAGE / 8, i, 0);
    wl_ready();
    pid_t child = 0;
    struct stat st;
    uint64_t before_go = 0;
    while (!wl_go()) {
        for (int i = 0; i < 10; i++) { step(0, HOT_PAGES); wl_sleep_ms(1); }
        if (!fresh && stat("round1", &st) == 0) {
            munmap(gone, SIDE_SIZE);
            fresh = area(SIDE_SIZE);
            fill(fresh, SIDE_SIZE, 3);
            child = fork();
            if (child < 0) { perror("fork"); exit(2); }
            if (child == 0) {
                uint64_t *own = area(SIDE_SIZE);
                fill(own, SIDE_SIZE, 4);
                /* The child rewrites the upper half of hot: its pages part from the parent's. */
                while (!wl_go()) { step(HOT_PAGES / 2, HOT_PAGES / 2); wl_sleep_ms(1); }
                check_fill(own, SIDE_SIZE, 4, "child's own area");
                check_fill(fresh, SIDE_SIZE, 3, "child's fresh area");
                check_hot("child");
                if (wl_fail_msg[0]) { fprintf(stderr, "child: %s\n", wl_fail_msg); _exit(1); }
                _exit(0);
            }
            char pid_text[32];
            snprintf(pid_text, sizeof pid_text, "%d\n", (int)child);
            wl_write_file("round1-done", pid_text);
        }
        before_go = counter_a;
    }
    /* Counters go on after the restore. */
    for (int i = 0; i < 20; i++) step(0, HOT_PAGES);
    if (counter_a != before_go + 20) wl_fail("counter did not continue: %lu after %lu", counter_a, before_go);
    check_fill(still, STILL_SIZE, 1, "still area");
    check_hot("root");
    /* Without round1 (a test that stops at a pre-dump), no fresh area and no child. */
    if (fresh) {
        check_fill(fresh, SIDE_SIZE, 3, "fresh area");
        /* The unmapped area stays unmapped. */
        unsigned char vec;
        if (mincore(gone, PAGE, &vec) == 0) wl_fail("the unmapped area is mapped again");
        int status = 0;
        if (waitpid(child, &status, 0) != child) wl_fail("child %d: %s", child, strerror(errno));
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) wl_fail("child failed its checks (status %d)", status);
    }
    wl_finish();
}
