/* shared-anon: 1 MiB MAP_SHARED|MAP_ANONYMOUS shared by a parent and a forked child.
 * The child filled a pattern and bumps a generation counter every ms; the parent reads.
 * After go: the pattern is intact, the parent sees the child's counter move, the parent
 * writes a value the child must see (and answer) -- sharing still works both ways. */
#include "workload.h"

#define SIZE (1 << 20)
#define HDR 4096
#define MAGIC 0x5eed5eed12345678ULL

struct hdr {
    volatile uint64_t gen, child_ready, parent_val, child_ack, done;
    volatile int child_err;
    char child_msg[200];
};

static int pattern_ok(const unsigned char *p, size_t *bad)
{
    for (size_t i = HDR; i < SIZE; i++)
        if (p[i] != (unsigned char)(i * 7 + (i >> 12))) { *bad = i; return 0; }
    return 1;
}

static void child_main(unsigned char *mem)
{
    struct hdr *h = (struct hdr *)mem;
    for (size_t i = HDR; i < SIZE; i++) mem[i] = (unsigned char)(i * 7 + (i >> 12));
    __sync_synchronize();
    h->child_ready = 1;
    for (;;) {
        h->gen++;
        if (h->parent_val == MAGIC) {
            size_t bad;
            if (!pattern_ok(mem, &bad)) {
                snprintf(h->child_msg, sizeof h->child_msg, "child: pattern differs at %zu", bad);
                h->child_err = 1;
            }
            __sync_synchronize();
            h->child_ack = MAGIC + 1;
            break;
        }
        wl_sleep_ms(1);
    }
    double deadline = wl_now() + 10;
    while (!h->done && wl_now() < deadline) wl_sleep_ms(1);
    _exit(h->done == 2 ? 0 : 1);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    unsigned char *mem = wl_shared(SIZE);
    struct hdr *h = (struct hdr *)mem;
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child == 0) child_main(mem);
    while (!h->child_ready) wl_sleep_ms(1);
    size_t bad;
    if (!pattern_ok(mem, &bad)) { wl_fail("pattern differs at %zu before ready", bad); wl_finish(); }
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    uint64_t last = h->gen;
    while (!wl_go()) {
        uint64_t g = h->gen;
        if (g < last) wl_fail("child generation went back from %llu to %llu", (unsigned long long)last, (unsigned long long)g);
        last = g;
        wl_sleep_ms(10);
    }

    if (!pattern_ok(mem, &bad)) wl_fail("parent: pattern differs at offset %zu", bad);
    uint64_t g0 = h->gen;
    double deadline = wl_now() + 5;
    while (h->gen < g0 + 10 && wl_now() < deadline) wl_sleep_ms(1);
    if (h->gen < g0 + 10) wl_fail("parent does not see the child's counter move (%llu -> %llu)",
                                  (unsigned long long)g0, (unsigned long long)h->gen);
    h->parent_val = MAGIC;
    deadline = wl_now() + 5;
    while (h->child_ack != MAGIC + 1 && wl_now() < deadline) wl_sleep_ms(1);
    if (h->child_ack != MAGIC + 1) wl_fail("child did not see the parent's write (ack %llx)", (unsigned long long)h->child_ack);
    if (h->child_err) wl_fail("%s", h->child_msg);
    h->done = 2;
    int st;
    if (waitpid(child, &st, 0) != child) wl_fail("waitpid child: %s", strerror(errno));
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("child ended with status 0x%x", st);
    wl_finish();
}
