/* deleted-mapping: mappings whose file is gone. A MAP_SHARED mapping of a deleted file
 * (no fd left) shared by parent and child, a MAP_PRIVATE one with a page of its own, a
 * deleted file both open and mapped shared, and a closed memfd mapped shared by parent
 * and child. After go: the same names in maps ("NAME (deleted)"), the same contents, and
 * still one object each: a write by the child is seen by the parent, a write through the
 * fd is seen in the mapping. */
#include "workload.h"

#define PAGE 4096UL

static char *map_file(const char *name, int pages, int prot_flags, int keep_fd, int *fd_out)
{
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0640);
    char page[PAGE];
    for (int i = 0; i < pages; i++) { memset(page, name[0] + i, PAGE); if (write(fd, page, PAGE) != (ssize_t)PAGE) exit(2); }
    char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, prot_flags, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    unlink(name);
    if (keep_fd) *fd_out = fd; else close(fd);
    return p;
}

/* The maps name of the area at p. */
static void name_of(void *p, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a;
        if (sscanf(line, "%lx-", &a) == 1 && a == (unsigned long)p) {
            char *slash = strchr(line, '/');
            if (slash) { slash[strcspn(slash, "\n")] = 0; snprintf(out, n, "%s", slash); }
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int both_fd = -1;
    char *shared = map_file("shared-del", 3, MAP_SHARED, 0, NULL);
    char *private = map_file("private-del", 2, MAP_PRIVATE, 0, NULL);
    char *both = map_file("both-del", 2, MAP_SHARED, 1, &both_fd);
    private[0] = 'P';
    int mfd = memfd_create("gone", 0);
    if (mfd < 0 || ftruncate(mfd, 2 * PAGE) != 0) return 2;
    char *memfd = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    close(mfd);
    memset(memfd, 'm', 2 * PAGE);
    char names[4][256], now[256];
    void *areas[4] = { shared, private, both, memfd };
    for (int i = 0; i < 4; i++) name_of(areas[i], names[i], sizeof names[i]);
    int to_parent[2];
    if (pipe(to_parent)) return 2;
    pid_t kid = fork();
    if (kid == 0) {
        wl_wait_go();
        shared[PAGE] = 'K';
        memfd[PAGE] = 'K';
        if (write(to_parent[1], "k", 1) != 1) _exit(1);
        _exit(0);
    }
    pid_t pids[2] = { getpid(), kid };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    for (int i = 0; i < 4; i++) {
        name_of(areas[i], now, sizeof now);
        if (strcmp(now, names[i])) wl_fail("area %d is '%s', was '%s'", i, now, names[i]);
    }
    if (shared[0] != 's' || shared[2 * PAGE] != 's' + 2) wl_fail("shared deleted mapping: %c %c", shared[0], shared[2 * PAGE]);
    if (private[0] != 'P' || private[1] != 'p' || private[PAGE] != 'p' + 1) wl_fail("private deleted mapping: %c %c %c", private[0], private[1], private[PAGE]);
    if (both[0] != 'b' || pwrite(both_fd, "W", 1, 5) != 1 || both[5] != 'W') wl_fail("open and mapped deleted file: mapping does not see the fd's write");
    struct stat st;
    if (fstat(both_fd, &st) != 0 || st.st_nlink != 0 || st.st_size != (off_t)(2 * PAGE)) wl_fail("open deleted file: nlink %d size %lld", (int)st.st_nlink, (long long)st.st_size);
    char c;
    if (read(to_parent[0], &c, 1) != 1) wl_fail("child");
    if (shared[PAGE] != 'K') wl_fail("the child's write to the shared deleted mapping is not seen");
    if (memfd[PAGE] != 'K' || memfd[0] != 'm') wl_fail("the child's write to the closed memfd is not seen");
    int status;
    if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status) || WEXITSTATUS(status)) wl_fail("child exited %x", status);
    wl_finish();
}
