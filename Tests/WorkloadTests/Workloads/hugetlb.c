/* hugetlb memory in 2 MiB pages (the test reserves them in nr_hugepages):
 * - "huge-mapped": a hugetlb memfd of 2 pages, the first written, mapped MAP_SHARED, its fd
 *   at offset 4096; "huge-closed": 1 page, mapped, its fd closed; "huge-fd": 1 page,
 *   written through a mapping since unmapped, only the fd left;
 * - a MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB area of 2 pages, the first written;
 * all shared with a child forked then; after it the parent maps
 * - a private MAP_HUGETLB area of 3 pages, two written, the third never touched;
 * - a private MAP_HUGETLB page written, then made read-only.
 * After go: every area is where it was, hugetlb (KernelPageSize 2048 kB) with its perms
 * and name, holds its pattern (zeros where nothing was written), is still writable where it
 * was; the child's writes to the shared areas show in the parent's (arg "criu": the shared
 * anonymous area may have another name, as CRIU's restore gives it). Arg "1g": a hugetlb
 * memfd of one 1 GiB page, mapped, written at its start and middle. Args "file PATH": a
 * file of a mounted hugetlbfs, mapped shared, which the dump refuses. Arg "private-memfd":
 * a MAP_PRIVATE mapping of a hugetlb memfd, which the dump refuses. */
#include "workload.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#define HUGE_2MB (21U << 26)
#define HUGE_1GB (30U << 26)
#define HP (2UL << 20)
#define GP (1UL << 30)

static long want_kps = 2048;
static blksize_t want_blksize = HP;

static unsigned char pat(size_t i, int seed) { return (unsigned char)(i * 13 + (i >> 12) + seed); }

static void fill(unsigned char *p, size_t len, int seed) { for (size_t i = 0; i < len; i++) p[i] = pat(i, seed); }

static void check(const char *what, const unsigned char *p, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char want = seed < 0 ? 0 : pat(i, seed);
        if (p[i] != want) { wl_fail("%s: byte %zu is %u, want %u", what, i, p[i], want); return; }
    }
}

static void *map(size_t len, int prot, int flags, int fd)
{
    void *p = mmap(NULL, len, prot, flags, fd, 0);
    if (p == MAP_FAILED) { perror("mmap hugetlb"); exit(2); }
    return p;
}

static int huge_memfd(const char *name, size_t len)
{
    int fd = memfd_create(name, MFD_HUGETLB | HUGE_2MB);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0) { perror("memfd hugetlb"); exit(2); }
    return fd;
}

/* The smaps entry at `p`: perms, name and KernelPageSize must be as given. */
static void check_area(const char *what, const void *p, const char *perms, const char *name)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) { wl_fail("smaps: %s", strerror(errno)); return; }
    char line[512], head[32], got_perms[8] = "", got_name[256] = "";
    long kps = -1;
    int in = 0;
    snprintf(head, sizeof head, "%lx-", (unsigned long)p);
    while (fgets(line, sizeof line, f)) {
        int header = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
        if (header && in) break;
        if (header && strncmp(line, head, strlen(head)) == 0) {
            in = 1;
            sscanf(line, "%*s %7s %*s %*s %*s %255[^\n]", got_perms, got_name);
        } else if (in) {
            sscanf(line, "KernelPageSize: %ld kB", &kps);
        }
    }
    fclose(f);
    if (!in) { wl_fail("%s: no area at %p", what, p); return; }
    if (kps != want_kps) wl_fail("%s: KernelPageSize %ld kB, want %ld", what, kps, want_kps);
    if (strcmp(got_perms, perms) != 0) wl_fail("%s: perms %s, want %s", what, got_perms, perms);
    if (name && strcmp(got_name, name) != 0) wl_fail("%s: name '%s', want '%s'", what, got_name, name);
}

static void check_fd(const char *what, int fd, const char *name, off_t size, off_t pos)
{
    char link[64], path[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t l = readlink(link, path, sizeof path - 1);
    path[l > 0 ? l : 0] = 0;
    if (strcmp(path, name) != 0) wl_fail("%s: fd is '%s', want '%s'", what, path, name);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != size || st.st_blksize != want_blksize)
        wl_fail("%s: size %lld, block size %ld", what, (long long)st.st_size, (long)st.st_blksize);
    if (lseek(fd, 0, SEEK_CUR) != pos) wl_fail("%s: offset %lld, want %lld", what, (long long)lseek(fd, 0, SEEK_CUR), (long long)pos);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (argc > 2 && strcmp(argv[2], "private-memfd") == 0) {
        int fd = huge_memfd("huge-private", HP);
        unsigned char *p = map(HP, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
        fill(p, 4096, 9);
        wl_ready();
        wl_wait_go();
        check("private memfd mapping", p, 4096, 9);
        wl_finish();
    }
    if (argc > 3 && strcmp(argv[2], "file") == 0) {
        int fd = open(argv[3], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)HP) != 0) { perror(argv[3]); return 2; }
        unsigned char *p = map(HP, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
        fill(p, 4096, 12);
        wl_ready();
        wl_wait_go();
        check("hugetlbfs file mapping", p, 4096, 12);
        wl_finish();
    }
    if (argc > 2 && strcmp(argv[2], "1g") == 0) {
        int fd = memfd_create("huge-1g", MFD_HUGETLB | HUGE_1GB);
        if (fd < 0 || ftruncate(fd, (off_t)GP) != 0) { perror("memfd 1g"); return 2; }
        unsigned char *p = map(GP, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
        fill(p, 4096, 10);
        fill(p + GP / 2, 4096, 11);
        wl_ready();
        wl_wait_go();
        want_kps = 1 << 20;
        want_blksize = GP;
        check_area("1 GiB memfd", p, "rw-s", "/memfd:huge-1g (deleted)");
        check_fd("1 GiB memfd", fd, "/memfd:huge-1g (deleted)", GP, 0);
        check("1 GiB memfd start", p, 4096, 10);
        check("1 GiB memfd between", p + 4096, 4096, -1);
        check("1 GiB memfd middle", p + GP / 2, 4096, 11);
        check("1 GiB memfd end", p + GP - 4096, 4096, -1);
        wl_finish();
    }
    int mapped = huge_memfd("huge-mapped", 2 * HP);
    unsigned char *mm = map(2 * HP, PROT_READ | PROT_WRITE, MAP_SHARED, mapped);
    fill(mm, HP, 1);
    lseek(mapped, 4096, SEEK_SET);
    int closed = huge_memfd("huge-closed", HP);
    unsigned char *cm = map(HP, PROT_READ | PROT_WRITE, MAP_SHARED, closed);
    fill(cm, HP, 2);
    close(closed);
    int fdonly = huge_memfd("huge-fd", HP);
    unsigned char *tmp = map(HP, PROT_READ | PROT_WRITE, MAP_SHARED, fdonly);
    fill(tmp, HP, 3);
    munmap(tmp, HP);
    unsigned char *sh = map(2 * HP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | HUGE_2MB, -1);
    fill(sh, HP, 4);

    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child == 0) {
        wl_wait_go();
        sh[HP + 5] = 0xc1;
        mm[HP + 6] = 0xc2;
        cm[7] = 0xc3;
        _exit(0);
    }
    unsigned char *priv = map(3 * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | HUGE_2MB, -1);
    fill(priv, 2 * HP, 5);
    unsigned char *ro = map(HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | HUGE_2MB, -1);
    fill(ro, HP, 6);
    if (mprotect(ro, HP, PROT_READ) != 0) { perror("mprotect"); return 2; }
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("child: status %#x", st);
    check_area("private", priv, "rw-p", "/anon_hugepage (deleted)");
    check("private written", priv, 2 * HP, 5);
    check("private untouched", priv + 2 * HP, HP, -1);
    check_area("read-only private", ro, "r--p", "/anon_hugepage (deleted)");
    check("read-only private", ro, HP, 6);
    /* CRIU restores shared anonymous memory as a memfd of its own: arg "criu" lets it. */
    int criu = argc > 2 && strcmp(argv[2], "criu") == 0;
    check_area("shared anonymous", sh, "rw-s", criu ? NULL : "/anon_hugepage (deleted)");
    if (sh[HP + 5] != 0xc1) wl_fail("shared anonymous: the child's write is not seen");
    sh[HP + 5] = 0;
    check("shared anonymous", sh, HP, 4);
    check("shared anonymous untouched", sh + HP, HP, -1);
    check_area("mapped memfd", mm, "rw-s", "/memfd:huge-mapped (deleted)");
    check_fd("mapped memfd", mapped, "/memfd:huge-mapped (deleted)", 2 * HP, 4096);
    if (mm[HP + 6] != 0xc2) wl_fail("mapped memfd: the child's write is not seen");
    mm[HP + 6] = 0;
    check("mapped memfd", mm, HP, 1);
    check("mapped memfd untouched", mm + HP, HP, -1);
    unsigned char byte = 0;
    mm[100] = 0x77;
    if (pread(mapped, &byte, 1, 100) != 1 || byte != 0x77) wl_fail("mapped memfd: a write through the mapping does not show through the fd");
    check_area("mapped-only memfd", cm, "rw-s", "/memfd:huge-closed (deleted)");
    if (cm[7] != 0xc3) wl_fail("mapped-only memfd: the child's write is not seen");
    cm[7] = pat(7, 2);
    check("mapped-only memfd", cm, HP, 2);
    check_fd("unmapped memfd", fdonly, "/memfd:huge-fd (deleted)", HP, 0);
    unsigned char *again = mmap(NULL, HP, PROT_READ | PROT_WRITE, MAP_SHARED, fdonly, 0);
    if (again == MAP_FAILED) wl_fail("unmapped memfd: mmap: %s", strerror(errno));
    else check("unmapped memfd", again, HP, 3);
    fill(priv + 2 * HP, 4096, 8);
    check("private written after restore", priv + 2 * HP, 4096, 8);
    wl_finish();
}
