/* madvise: the state of areas beyond their contents. Areas with MADV_DONTFORK,
 * MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_MERGEABLE,
 * MADV_RANDOM, MADV_SEQUENTIAL and an mlock'ed one; PR_SET_THP_DISABLE; an area moved by
 * mremap and one grown in place; a private file mapping whose file was rewritten and cut
 * short after mapping. Before ready each area's maps line and VmFlags are recorded; after
 * go they must read the same, with the same contents, and behave the same (DONTFORK:
 * absent in a child, WIPEONFORK: zero in a child, SIGBUS beyond the file's end). */
#include "workload.h"
#include <setjmp.h>
#include <sys/prctl.h>

#define AREA (2UL << 20)
#define PAGE 4096UL
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static const int advice[] = { MADV_DONTFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_WIPEONFORK,
                              MADV_DONTDUMP, MADV_MERGEABLE, MADV_RANDOM, MADV_SEQUENTIAL };
#define NADV (int)(sizeof advice / sizeof advice[0])
#define NAREAS (NADV + 4) /* + locked, moved, grown, file */
static char *areas[NAREAS];
static char before[NAREAS][512];

/* The maps line (without inode/path padding) and VmFlags of the area starting at p. */
static void describe(char *p, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            in = a == (unsigned long)p;
            if (in) snprintf(out, n, "%lx-%lx %s", a, b, perms);
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            line[strcspn(line, "\n")] = 0;
            /* "ac" (accountable) and "sd" (soft-dirty) are the kernel's bookkeeping */
            strncat(out, " |", n - strlen(out) - 1);
            for (char *t = strtok(line + 8, " "); t; t = strtok(NULL, " "))
                if (strcmp(t, "ac") && strcmp(t, "sd")) { strncat(out, " ", n - strlen(out) - 1); strncat(out, t, n - strlen(out) - 1); }
        }
    }
    if (f) fclose(f);
}

static sigjmp_buf jump;
static void on_bus(int sig) { (void)sig; siglongjmp(jump, 1); }

static int faults(volatile char *p)
{
    struct sigaction sa = { .sa_handler = on_bus }, old;
    sigaction(SIGBUS, &sa, &old);
    int hit = 0;
    if (sigsetjmp(jump, 1) == 0) (void)*p; else hit = 1;
    sigaction(SIGBUS, &old, NULL);
    return hit;
}

static void fill(char *p, size_t len, int tag)
{
    for (size_t i = 0; i < len; i += PAGE) memset(p + i, tag + (int)(i / PAGE) % 7, PAGE);
}

static int filled(const char *p, size_t len, int tag)
{
    for (size_t i = 0; i < len; i += PAGE)
        for (size_t j = 0; j < PAGE; j += 512)
            if (p[i + j] != (char)(tag + (int)(i / PAGE) % 7)) return 0;
    return 1;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) { perror("PR_SET_THP_DISABLE"); return 2; }
    /* One reservation, so the areas lie apart from each other (no merging). */
    char *base = mmap(NULL, AREA * 2 * (NAREAS + 4), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) { perror("mmap"); return 2; }
    munmap(base, AREA * 2 * (NAREAS + 4));
    for (int i = 0; i < NAREAS - 1; i++) {
        areas[i] = mmap(base + AREA * 2 * i, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (areas[i] == MAP_FAILED) { perror("mmap area"); return 2; }
        fill(areas[i], AREA, i + 1);
        if (i < NADV && madvise(areas[i], AREA, advice[i]) != 0) { fprintf(stderr, "madvise %d: %s\n", advice[i], strerror(errno)); return 2; }
    }
    if (mlock(areas[NADV], AREA) != 0) { perror("mlock"); return 2; }
    /* moved: to the reservation's end, keeping its contents */
    char *moved = mremap(areas[NADV + 1], AREA, AREA, MREMAP_MAYMOVE | MREMAP_FIXED, base + AREA * 2 * (NAREAS + 2));
    if (moved == MAP_FAILED) { perror("mremap move"); return 2; }
    areas[NADV + 1] = moved;
    /* grown in place to twice its size: the new half is fresh memory */
    if (mremap(areas[NADV + 2], AREA, AREA * 2, 0) != areas[NADV + 2]) { perror("mremap grow"); return 2; }
    /* a private mapping of 4 pages of a file that is then rewritten and cut to 2 pages */
    int fd = open("mapped", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char page[PAGE];
    for (int i = 0; i < 4; i++) { memset(page, 'a' + i, PAGE); if (write(fd, page, PAGE) != (ssize_t)PAGE) return 2; }
    char *file = mmap(base + AREA * 2 * (NAREAS - 1), 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (file == MAP_FAILED) { perror("mmap file"); return 2; }
    areas[NAREAS - 1] = file;
    file[PAGE] = 'X';                                 /* page 1: the process's own copy */
    memset(page, 'N', PAGE);
    if (pwrite(fd, page, PAGE, 0) != (ssize_t)PAGE) return 2;  /* page 0: new file contents */
    if (ftruncate(fd, 2 * PAGE) != 0) return 2;                /* pages 2, 3: beyond the end */
    close(fd);
    for (int i = 0; i < NAREAS; i++) describe(areas[i], before[i], sizeof before[i]);
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < NAREAS; i++) {
        char now[512];
        describe(areas[i], now, sizeof now);
        if (strcmp(now, before[i]) != 0) { wl_fail("area %d: was '%s', now '%s'", i, before[i], now); break; }
    }
    for (int i = 0; i < NAREAS - 1; i++)
        if (!filled(areas[i], AREA, i + 1)) wl_fail("area %d (%s): contents changed", i, before[i]);
    for (size_t i = AREA; i < 2 * AREA; i += PAGE)
        if (areas[NADV + 2][i] != 0) { wl_fail("grown half not zero at %zu", i); break; }
    if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1) wl_fail("PR_GET_THP_DISABLE is %d", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    if (file[0] != 'N' || file[PAGE] != 'X' || file[PAGE + 1] != 'b') wl_fail("file mapping: %c %c %c, want N X b", file[0], file[PAGE], file[PAGE + 1]);
    if (!faults(file + 2 * PAGE)) wl_fail("file mapping beyond the file's end does not fault");
    /* fork: the DONTFORK area is absent in the child, the WIPEONFORK one zero */
    pid_t kid = fork();
    if (kid == 0) {
        int bad = 0;
        if (msync(areas[0], PAGE, MS_ASYNC) == 0 || errno != ENOMEM) bad |= 1;
        if (areas[3][0] != 0 || areas[3][AREA - 1] != 0) bad |= 2;
        _exit(bad);
    }
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        wl_fail("child after fork: status %x (1: DONTFORK area present, 2: WIPEONFORK area not zero)", st);
    wl_finish();
}
