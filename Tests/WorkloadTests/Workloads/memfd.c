/* memfd: "fdkinds-a" (sealable) with 10000 bytes of a pattern in 20000, mapped MAP_SHARED,
 * at offset 1234, sealed against shrinking and growing; "fdkinds-b" without sealing;
 * "fdkinds-c" sealed F_SEAL_FUTURE_WRITE after a writable shared mapping was made;
 * "fdkinds-d" only mapped (its fd closed), sealed against growing. After
 * go: name, size, contents, offset and seals are the same; a write through the fd shows in
 * the mapping and the other way round; the seals still forbid what they forbid; the
 * mapped-only one is still that memfd, with its contents and seal. */
#include "workload.h"
#include <linux/memfd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + 3); }

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int a = memfd_create("fdkinds-a", MFD_ALLOW_SEALING);
    int b = memfd_create("fdkinds-b", 0);
    int c = memfd_create("fdkinds-c", MFD_ALLOW_SEALING);
    if (a < 0 || b < 0 || c < 0) { perror("memfd_create"); return 2; }
    unsigned char data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = pat(i);
    if (write(a, data, sizeof data) != (ssize_t)sizeof data || ftruncate(a, 20000) != 0) { perror("fill a"); return 2; }
    unsigned char *map = mmap(NULL, 20480, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
    if (map == MAP_FAILED) { perror("mmap a"); return 2; }
    map[15000] = 0x5a;
    lseek(a, 1234, SEEK_SET);
    if (fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) { perror("seal a"); return 2; }
    if (write(b, "bee", 3) != 3) return 2;
    if (ftruncate(c, 4096) != 0) return 2;
    unsigned char *cmap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0);
    if (cmap == MAP_FAILED) { perror("mmap c"); return 2; }
    if (fcntl(c, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) { perror("seal c"); return 2; }
    int d = memfd_create("fdkinds-d", MFD_ALLOW_SEALING);
    if (d < 0 || ftruncate(d, 8192) != 0) { perror("memfd d"); return 2; }
    char *dmap = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
    if (dmap == MAP_FAILED) { perror("mmap d"); return 2; }
    strcpy(dmap + 4096, "only mapped");
    if (fcntl(d, F_ADD_SEALS, F_SEAL_GROW) != 0) { perror("seal d"); return 2; }
    close(d);
    wl_ready();
    wl_wait_go();

    char link[64], path[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", a);
    ssize_t l = readlink(link, path, sizeof path - 1);
    path[l > 0 ? l : 0] = 0;
    if (strcmp(path, "/memfd:fdkinds-a (deleted)") != 0) wl_fail("fd %d is '%s'", a, path);
    struct stat st;
    fstat(a, &st);
    if (st.st_size != 20000) wl_fail("size %lld, want 20000", (long long)st.st_size);
    if (lseek(a, 0, SEEK_CUR) != 1234) wl_fail("offset %lld, want 1234", (long long)lseek(a, 0, SEEK_CUR));
    unsigned char back[20000];
    if (pread(a, back, sizeof back, 0) != (ssize_t)sizeof back) wl_fail("pread a");
    for (size_t i = 0; i < sizeof back; i++) {
        unsigned char want = i < 10000 ? pat(i) : i == 15000 ? 0x5a : 0;
        if (back[i] != want) { wl_fail("byte %zu is %u, want %u", i, back[i], want); break; }
    }
    if (fcntl(a, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW)) wl_fail("seals of a: %#x", fcntl(a, F_GET_SEALS));
    if (ftruncate(a, 30000) == 0 || errno != EPERM) wl_fail("a grew despite F_SEAL_GROW");
    if (pwrite(a, "Q", 1, 500) != 1 || map[500] != 'Q') wl_fail("a write through the fd does not show in the mapping");
    map[600] = 'R';
    char r = 0;
    if (pread(a, &r, 1, 600) != 1 || r != 'R') wl_fail("a write through the mapping does not show through the fd");
    if (fcntl(b, F_GET_SEALS) != F_SEAL_SEAL) wl_fail("seals of b: %#x, want F_SEAL_SEAL", fcntl(b, F_GET_SEALS));
    char bee[4] = { 0 };
    if (pread(b, bee, 3, 0) != 3 || strcmp(bee, "bee") != 0) wl_fail("b holds '%s'", bee);
    if (fcntl(c, F_GET_SEALS) != F_SEAL_FUTURE_WRITE) wl_fail("seals of c: %#x", fcntl(c, F_GET_SEALS));
    cmap[1] = 'w';
    if (pwrite(c, "x", 1, 0) != -1 || errno != EPERM) wl_fail("c written through the fd despite F_SEAL_FUTURE_WRITE");
    if (pread(c, &r, 1, 1) != 1 || r != 'w') wl_fail("c's old writable mapping no longer writes the object");
    snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)dmap, (unsigned long)dmap + 8192);
    l = readlink(link, path, sizeof path - 1);
    path[l > 0 ? l : 0] = 0;
    if (strcmp(path, "/memfd:fdkinds-d (deleted)") != 0) wl_fail("mapped-only memfd is now '%s'", path);
    if (strcmp(dmap + 4096, "only mapped") != 0) wl_fail("mapped-only memfd holds '%.20s'", dmap + 4096);
    int dd = open(link, O_RDWR);
    /* Opening map_files needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN), which a runc
     * container does not have: there the name read above is what can be checked. */
    int capless = dd < 0 && (errno == EPERM || errno == EACCES);
    if (!capless && (dd < 0 || fcntl(dd, F_GET_SEALS) != F_SEAL_GROW))
        wl_fail("mapped-only memfd seals: %#x", dd < 0 ? -1 : fcntl(dd, F_GET_SEALS));
    wl_finish();
}
