/* ghost: deleted-but-open files.
 *  sparse: 1.5 GiB apparent size, data at 0 and past 1 GiB only, mode 0640 (a mode the
 *    umask would not give), owner 1000:1001; open twice (a second description through
 *    /proc/self/fd) at offsets 777 and 5, then unlinked.
 *  spot: opened, unlinked, and a new file made at the same name.
 *  `ghost linked`: also a file opened as orig, linked as other, orig unlinked and other
 *    opened: both fds must stay one inode (needs --link-remap).
 * After go: sizes, modes, owners, holes, contents, positions, one inode per file. */
#include "workload.h"
#include <dirent.h>

#define BIG (3LL << 29)           /* 1.5 GiB */
#define FAR ((1LL << 30) + 12345)

static unsigned char pat(long long i, unsigned seed) { return (unsigned char)(i * 11 + seed); }

static void put(int fd, long long off, size_t n, unsigned seed)
{
    static unsigned char buf[8192];
    for (size_t i = 0; i < n; i++) buf[i] = pat(off + (long long)i, seed);
    if (pwrite(fd, buf, n, off) != (ssize_t)n) { perror("pwrite"); exit(2); }
}

static void expect_bytes(int fd, long long off, size_t n, unsigned seed, const char *what)
{
    static unsigned char buf[8192];
    if (pread(fd, buf, n, off) != (ssize_t)n) { wl_fail("%s: short read at %lld", what, off); return; }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(off + (long long)i, seed)) { wl_fail("%s: byte %lld is %u", what, off + (long long)i, buf[i]); return; }
}

static int reopen(int fd, int flags)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, flags);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int linked = argc > 2 && strcmp(argv[2], "linked") == 0;
    unlink("sparse"); unlink("spot"); unlink("orig"); unlink("other");
    int a = open("sparse", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (a < 0 || ftruncate(a, BIG) != 0) { perror("sparse"); return 2; }
    put(a, 0, 4096, 1);
    put(a, FAR, 8000, 1);
    if (fchown(a, 1000, 1001) != 0 || fchmod(a, 0640) != 0) { perror("chown"); return 2; }
    int a2 = reopen(a, O_RDONLY);
    if (a2 < 0) { perror("reopen"); return 2; }
    lseek(a, 777, SEEK_SET); lseek(a2, 5, SEEK_SET);
    unlink("sparse");
    struct stat before;
    fstat(a, &before);

    int s = open("spot", O_RDWR | O_CREAT | O_TRUNC, 0644);
    put(s, 0, 300, 2);
    unlink("spot");
    int s2 = open("spot", O_RDWR | O_CREAT | O_TRUNC, 0644);
    put(s2, 0, 50, 3);
    close(s2);

    int o = -1, o2 = -1;
    if (linked) {
        o = open("orig", O_RDWR | O_CREAT | O_TRUNC, 0600);
        put(o, 0, 2000, 4);
        if (link("orig", "other") != 0) { perror("link"); return 2; }
        unlink("orig");
        o2 = open("other", O_RDWR);
        lseek(o, 42, SEEK_SET);
    }
    wl_ready();
    wl_wait_go();

    struct stat now, now2;
    fstat(a, &now); fstat(a2, &now2);
    if (now.st_ino != now2.st_ino) wl_fail("sparse: its two descriptions are two inodes");
    if (now.st_size != BIG || now.st_nlink != 0) wl_fail("sparse: size %lld nlink %ld", (long long)now.st_size, (long)now.st_nlink);
    if (now.st_mode != before.st_mode) wl_fail("sparse: mode 0%o, want 0%o", now.st_mode, before.st_mode);
    if (now.st_uid != 1000 || now.st_gid != 1001) wl_fail("sparse: owner %d:%d", now.st_uid, now.st_gid);
    if (now.st_mtime != before.st_mtime) wl_fail("sparse: mtime %ld, want %ld", (long)now.st_mtime, (long)before.st_mtime);
    if (now.st_blocks > before.st_blocks + 64) wl_fail("sparse: %lld blocks, %lld before: holes filled", (long long)now.st_blocks, (long long)before.st_blocks);
    if (lseek(a, 0, SEEK_CUR) != 777 || lseek(a2, 0, SEEK_CUR) != 5) wl_fail("sparse: positions moved");
    if (lseek(a2, 4096, SEEK_DATA) < (off_t)(1LL << 30)) wl_fail("sparse: data where a hole was");
    expect_bytes(a2, 0, 4096, 1, "sparse head");
    expect_bytes(a2, FAR, 8000, 1, "sparse tail");
    put(a, 100, 10, 9);
    expect_bytes(a2, 100, 10, 9, "sparse written through the other description");
    char link[256] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", a);
    char target[512] = "";
    if (readlink(link, target, sizeof target - 1) < 0 || !strstr(target, "sparse (deleted)")) wl_fail("sparse shows as '%s'", target);

    expect_bytes(s, 0, 300, 2, "deleted spot");
    int s3 = open("spot", O_RDONLY);
    struct stat ss, sn;
    fstat(s, &ss);
    if (s3 < 0 || fstat(s3, &sn) || sn.st_size != 50 || sn.st_ino == ss.st_ino || ss.st_nlink != 0) wl_fail("spot: the new file at its name changed");
    else expect_bytes(s3, 0, 50, 3, "new spot");

    if (linked) {
        struct stat x, y, z;
        fstat(o, &x); fstat(o2, &y);
        if (x.st_ino != y.st_ino || stat("other", &z) != 0 || z.st_ino != x.st_ino) wl_fail("orig and other are no longer one inode");
        if (x.st_nlink != 1) wl_fail("other: %ld links", (long)x.st_nlink);
        if (lseek(o, 0, SEEK_CUR) != 42) wl_fail("orig: position moved");
        put(o, 10, 10, 8);
        expect_bytes(o2, 10, 10, 8, "orig written, other read");
        expect_bytes(o2, 1000, 1000, 4, "other");
        if (access("orig", F_OK) == 0) wl_fail("orig reappeared");
    }
    DIR *d = opendir(".");
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, "link_remap") || strstr(e->d_name, "ghost")) wl_fail("%s left in the directory", e->d_name);
    if (d) closedir(d);
    wl_finish();
}
