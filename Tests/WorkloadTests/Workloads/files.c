/* files: regular files at offsets (read @3, write @12345, O_APPEND), a deleted-but-open
 * 100 KiB file, a directory fd, /dev/null, /dev/zero (O_NONBLOCK), /dev/urandom, CLOEXEC
 * and non-CLOEXEC fds, dup2'ed fds sharing one offset, and a child sharing an fd (and
 * its offset) with the parent. After go: fd numbers, flags, offsets, inodes, the deleted
 * file's contents and shared-offset behaviour are all checked. */
#include "workload.h"

enum { R, W, A, DEL, DIRFD, NUL, ZERO, URND, CLX, DUP1, DUP2, SHR, NFD };
static const char *names[NFD] = { "read", "write", "append", "deleted", "dir", "null", "zero",
                                  "urandom", "cloexec", "dup", "dup2(100)", "shared-with-child" };
static int fd[NFD];
struct rec { int fl, fd; off_t off; struct stat st; } rec[NFD];
struct shm { volatile int step, child_ready; char msg[200]; } *sh;
static unsigned char pat(size_t i) { return (unsigned char)(i * 13 + 5 + (i >> 8)); }

static void fill(int f, size_t n)
{
    unsigned char buf[4096];
    for (size_t off = 0; off < n; off += sizeof buf) {
        size_t k = n - off < sizeof buf ? n - off : sizeof buf;
        for (size_t i = 0; i < k; i++) buf[i] = pat(off + i);
        if (write(f, buf, k) != (ssize_t)k) { perror("write"); exit(2); }
    }
}

static void snap(struct rec *r)
{
    for (int i = 0; i < NFD; i++) {
        r[i].fl = fcntl(fd[i], F_GETFL);
        r[i].fd = fcntl(fd[i], F_GETFD);
        r[i].off = lseek(fd[i], 0, SEEK_CUR);
        if (fstat(fd[i], &r[i].st) != 0) r[i].st.st_ino = (ino_t)-1;
    }
}

static int check_bytes(int f, off_t at, size_t n, const char *what)
{
    unsigned char buf[128 * 1024];
    if (pread(f, buf, n, at) != (ssize_t)n) { wl_fail("%s: short pread", what); return 0; }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat((size_t)at + i)) { wl_fail("%s: byte %zu differs", what, (size_t)at + i); return 0; }
    return 1;
}

static void child_main(void)
{
    sh->child_ready = 1;
    while (sh->step != 1) wl_sleep_ms(5);
    unsigned char b[7];
    off_t o = lseek(fd[SHR], 0, SEEK_CUR);
    if (o != 50) snprintf(sh->msg, sizeof sh->msg, "child: shared offset %lld, want 50", (long long)o);
    else if (read(fd[SHR], b, 7) != 7) snprintf(sh->msg, sizeof sh->msg, "child: short read");
    else for (int i = 0; i < 7; i++)
        if (b[i] != pat(50 + i)) snprintf(sh->msg, sizeof sh->msg, "child: read wrong byte at %d", 50 + i);
    sh->step = 2;
    while (sh->step != 3) wl_sleep_ms(5);
    o = lseek(fd[SHR], 0, SEEK_CUR);
    if (!sh->msg[0] && o != 60) snprintf(sh->msg, sizeof sh->msg, "child: offset %lld after parent's read, want 60", (long long)o);
    sh->step = 4;
    _exit(0);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    sh = wl_shared(sizeof *sh);
    int f = open("data_r", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    fill(f, 4096); close(f);
    char b[16];
    fd[R] = open("data_r", O_RDONLY); read(fd[R], b, 3);
    fd[W] = open("data_w", O_WRONLY | O_CREAT | O_TRUNC, 0644); fill(fd[W], 12345);
    fd[A] = open("data_a", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644); write(fd[A], "abc", 3);
    fd[DEL] = open("data_del", O_RDWR | O_CREAT | O_TRUNC, 0600); fill(fd[DEL], 100 * 1024);
    lseek(fd[DEL], 777, SEEK_SET); unlink("data_del");
    fd[DIRFD] = open(".", O_RDONLY | O_DIRECTORY);
    fd[NUL] = open("/dev/null", O_WRONLY);
    fd[ZERO] = open("/dev/zero", O_RDONLY | O_NONBLOCK);
    fd[URND] = open("/dev/urandom", O_RDONLY);
    fd[CLX] = open("data_r", O_RDONLY | O_CLOEXEC); lseek(fd[CLX], 99, SEEK_SET);
    fd[DUP1] = open("data_r", O_RDONLY); read(fd[DUP1], b, 10);
    fd[DUP2] = dup2(fd[DUP1], 100);
    fd[SHR] = open("data_r", O_RDONLY); lseek(fd[SHR], 50, SEEK_SET);
    for (int i = 0; i < NFD; i++) if (fd[i] < 0) { fprintf(stderr, "open %s failed\n", names[i]); return 2; }
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child == 0) child_main();
    while (!sh->child_ready) wl_sleep_ms(1);
    snap(rec);
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    struct rec now[NFD];
    snap(now);
    for (int i = 0; i < NFD; i++) {
        if (now[i].fl != rec[i].fl) wl_fail("fd %d (%s): F_GETFL 0%o, want 0%o", fd[i], names[i], now[i].fl, rec[i].fl);
        if (now[i].fd != rec[i].fd) wl_fail("fd %d (%s): F_GETFD %d, want %d", fd[i], names[i], now[i].fd, rec[i].fd);
        if (now[i].off != rec[i].off) wl_fail("fd %d (%s): offset %lld, want %lld", fd[i], names[i], (long long)now[i].off, (long long)rec[i].off);
        /* a restored deleted file is a new inode holding the old contents */
        if ((i != DEL && (now[i].st.st_ino != rec[i].st.st_ino || now[i].st.st_dev != rec[i].st.st_dev)) ||
            now[i].st.st_mode != rec[i].st.st_mode || now[i].st.st_rdev != rec[i].st.st_rdev)
            wl_fail("fd %d (%s): fstat dev/ino/mode/rdev changed", fd[i], names[i]);
    }
    if (rec[CLX].fd != FD_CLOEXEC || rec[R].fd != 0) wl_fail("setup: CLOEXEC flags wrong");
    if (!(rec[A].fl & O_APPEND) || !(rec[ZERO].fl & O_NONBLOCK)) wl_fail("setup: O_APPEND/O_NONBLOCK missing");
    if (now[DEL].st.st_nlink != 0 || now[DEL].st.st_size != 100 * 1024)
        wl_fail("deleted file: nlink %ld size %lld", (long)now[DEL].st.st_nlink, (long long)now[DEL].st.st_size);
    check_bytes(fd[DEL], 0, 100 * 1024, "deleted file");
    char link[512] = "";
    snprintf(b, sizeof b, "/proc/self/fd/%d", fd[DEL]);
    readlink(b, link, sizeof link - 1);
    if (!strstr(link, "(deleted)")) wl_fail("deleted file shows as '%s'", link);
    if (access("data_del", F_OK) == 0) wl_fail("deleted file reappeared as data_del");
    /* the fds still work */
    unsigned char c;
    if (read(fd[R], &c, 1) != 1 || c != pat(3)) wl_fail("read fd: wrong byte at offset 3");
    if (write(fd[W], "XYZ", 3) != 3 || fstat(fd[W], &now[W].st) || now[W].st.st_size != 12348) wl_fail("write fd: write at 12345 failed");
    if (write(fd[A], "def", 3) != 3) wl_fail("append fd: write failed");
    char txt[16] = "";
    f = open("data_a", O_RDONLY);
    if (read(f, txt, sizeof txt - 1) != 6 || strcmp(txt, "abcdef")) wl_fail("append file holds '%s', want 'abcdef'", txt);
    close(f);
    f = openat(fd[DIRFD], "data_r", O_RDONLY);
    if (f < 0) wl_fail("openat(dir fd, data_r): %s", strerror(errno)); else close(f);
    if (write(fd[NUL], "x", 1) != 1) wl_fail("/dev/null not writable");
    if (read(fd[ZERO], b, 8) != 8 || memcmp(b, "\0\0\0\0\0\0\0\0", 8)) wl_fail("/dev/zero read failed");
    if (read(fd[URND], b, 16) != 16) wl_fail("/dev/urandom read failed");
    /* dup2'ed fds share one offset */
    if (read(fd[DUP2], b, 5) != 5 || memcmp(b, (char[]){ pat(10), pat(11), pat(12), pat(13), pat(14) }, 5))
        wl_fail("fd 100 read wrong bytes at offset 10");
    if (lseek(fd[DUP1], 0, SEEK_CUR) != 15) wl_fail("dup'ed fd offset %lld after reading fd 100, want 15", (long long)lseek(fd[DUP1], 0, SEEK_CUR));
    /* the child shares the offset of fd[SHR] */
    sh->step = 1;
    double deadline = wl_now() + 5;
    while (sh->step != 2 && wl_now() < deadline) wl_sleep_ms(1);
    if (sh->step != 2) wl_fail("child did not answer");
    if (lseek(fd[SHR], 0, SEEK_CUR) != 57) wl_fail("parent offset %lld after the child read 7 bytes, want 57", (long long)lseek(fd[SHR], 0, SEEK_CUR));
    read(fd[SHR], b, 3);
    sh->step = 3;
    while (sh->step != 4 && wl_now() < deadline + 5) wl_sleep_ms(1);
    if (sh->msg[0]) wl_fail("%s", sh->msg);
    if (sh->step != 4) { wl_fail("child stuck at step %d", sh->step); kill(child, SIGKILL); }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)) wl_fail("child did not exit cleanly");
    wl_finish();
}
