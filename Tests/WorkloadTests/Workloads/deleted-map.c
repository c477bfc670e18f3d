/* deleted-map: mappings of deleted files, their fds closed.
 *  shared: 4 pages MAP_SHARED read-write of a file unlinked after mapping, one page
 *    written through the mapping (the file holds it), page 2 a hole;
 *  private: 3 pages MAP_PRIVATE of another unlinked file, page 1 changed privately.
 * After go: contents of both; the shared one still writes through to its file (a
 * write shows in a read of the file through /proc/self/map_files), the private one
 * does not; /proc/self/maps names both "(deleted)". */
#include "workload.h"

#define PG 4096

static int map_file_fd(void *addr, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", (unsigned long)addr, (unsigned long)addr + len);
    return open(path, O_RDONLY);
}

static int maps_say_deleted(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, name) && strstr(line, "(deleted)")) found = 1;
    if (f) fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    unlink("shared-file"); unlink("private-file");
    int s = open("shared-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    int p = open("private-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (s < 0 || p < 0 || ftruncate(s, 4 * PG) || ftruncate(p, 3 * PG)) { perror("files"); return 2; }
    char buf[PG];
    memset(buf, 'a', PG); pwrite(s, buf, PG, 0); pwrite(s, buf, PG, 3 * PG);
    for (int i = 0; i < 3; i++) { memset(buf, 'x' + i, PG); pwrite(p, buf, PG, i * PG); }
    char *sm = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    char *pm = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, p, 0);
    if (sm == MAP_FAILED || pm == MAP_FAILED) { perror("mmap"); return 2; }
    memset(sm + PG, 'b', PG);
    memset(pm + PG, 'q', PG);
    close(s); close(p);
    unlink("shared-file"); unlink("private-file");
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < 4 * PG; i++) {
        char want = i < PG || i >= 3 * PG ? 'a' : i < 2 * PG ? 'b' : 0;
        if (sm[i] != want) { wl_fail("shared: byte %d is %d, want %d", i, sm[i], want); break; }
    }
    for (int i = 0; i < 3 * PG; i++) {
        char want = i < PG ? 'x' : i < 2 * PG ? 'q' : 'z';
        if (pm[i] != want) { wl_fail("private: byte %d is %d, want %d", i, pm[i], want); break; }
    }
    sm[2 * PG + 5] = 'w';
    int f = map_file_fd(sm, 4 * PG);
    char c = 0;
    if (f < 0 || pread(f, &c, 1, 2 * PG + 5) != 1 || c != 'w') wl_fail("shared: a write through the mapping does not reach its file");
    struct stat st;
    if (f >= 0 && (fstat(f, &st) || st.st_nlink != 0 || st.st_size != 4 * PG)) wl_fail("shared: its file is not deleted or changed size");
    pm[5] = 'v';
    int g = map_file_fd(pm, 3 * PG);
    if (g < 0 || pread(g, &c, 1, 5) != 1 || c != 'x') wl_fail("private: a private write reached the file");
    if (!maps_say_deleted("/shared-file") || !maps_say_deleted("/private-file")) wl_fail("maps do not name the deleted files");
    wl_finish();
}
