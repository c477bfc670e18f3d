/* locks: a flock write lock on DIR/data (its description shared with a child), POSIX
 * locks on DIR/posix (write [10,20), read [100,EOF)), an OFD write lock on DIR/ofd
 * [0,50), and the child's own POSIX read lock on DIR/child. After go a fresh process
 * sees every lock as held by the right owner, then the root releases its locks and
 * a fresh process sees them free; the child's stays until the child exits. */
#include "workload.h"
#include <sys/file.h>

static int fd_data, fd_posix, fd_ofd;
static pid_t root, child;

static int getlk(const char *path, int cmd, short type, off_t start, off_t len, struct flock *out)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) return -1;
    memset(out, 0, sizeof *out);
    out->l_type = type; out->l_whence = SEEK_SET; out->l_start = start; out->l_len = len;
    int r = fcntl(fd, cmd, out);
    close(fd);
    return r;
}

/* In a fresh process: 0 when every lock is seen as `held` says, else a code. */
static int probe(int held)
{
    struct flock f;
    int fd = open("data", O_RDWR);
    int r = flock(fd, LOCK_EX | LOCK_NB);
    if (held ? (r == 0 || errno != EWOULDBLOCK) : r != 0) return 10;
    close(fd);
    if (getlk("posix", F_GETLK, F_WRLCK, 12, 2, &f) != 0) return 11;
    if (held ? (f.l_type != F_WRLCK || f.l_pid != root || f.l_start != 10 || f.l_len != 10) : f.l_type != F_UNLCK) return 12;
    if (getlk("posix", F_GETLK, F_WRLCK, 150, 0, &f) != 0) return 13;
    if (held ? (f.l_type != F_RDLCK || f.l_pid != root || f.l_start != 100 || f.l_len != 0) : f.l_type != F_UNLCK) return 14;
    if (getlk("posix", F_GETLK, F_RDLCK, 100, 10, &f) != 0 || f.l_type != F_UNLCK) return 15;
    if (getlk("ofd", F_OFD_GETLK, F_RDLCK, 40, 5, &f) != 0) return 16;
    if (held ? (f.l_type != F_WRLCK || f.l_start != 0 || f.l_len != 50) : f.l_type != F_UNLCK) return 17;
    if (getlk("child", F_GETLK, F_WRLCK, 0, 0, &f) != 0) return 18;
    if (child && (f.l_type != F_RDLCK || f.l_pid != child)) return 19;
    if (!child && f.l_type != F_UNLCK) return 20;
    return 0;
}

static void check(int held, const char *when)
{
    pid_t p = fork();
    if (p == 0) _exit(probe(held));
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) wl_fail("%s: lock probe failed with code %d", when, WEXITSTATUS(st));
}

static void lock(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock f = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    if (fcntl(fd, cmd, &f) != 0) { perror("lock"); exit(2); }
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    root = getpid();
    fd_data = open("data", O_RDWR | O_CREAT, 0644);
    fd_posix = open("posix", O_RDWR | O_CREAT, 0644);
    fd_ofd = open("ofd", O_RDWR | O_CREAT, 0644);
    int fd_child = open("child", O_RDWR | O_CREAT, 0644);
    if (fd_data < 0 || fd_posix < 0 || fd_ofd < 0 || fd_child < 0) { perror("open"); return 2; }
    if (flock(fd_data, LOCK_EX | LOCK_NB) != 0) { perror("flock"); return 2; }
    lock(fd_posix, F_SETLK, F_WRLCK, 10, 10);
    lock(fd_posix, F_SETLK, F_RDLCK, 100, 0);
    lock(fd_ofd, F_OFD_SETLK, F_WRLCK, 0, 50);
    child = fork();
    if (child == 0) {
        lock(fd_child, F_SETLK, F_RDLCK, 0, 0);
        wl_write_file("child-ready", "1\n");
        struct stat st;
        while (stat("release", &st) != 0) wl_sleep_ms(10);
        _exit(0);
    }
    struct stat st;
    while (stat("child-ready", &st) != 0) wl_sleep_ms(5);
    pid_t pids[2] = { root, child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    check(1, "after go");
    if (flock(fd_data, LOCK_UN) != 0) wl_fail("flock LOCK_UN: %s", strerror(errno));
    lock(fd_posix, F_SETLK, F_UNLCK, 0, 0);
    lock(fd_ofd, F_OFD_SETLK, F_UNLCK, 0, 0);
    check(0, "after unlocking");
    wl_write_file("release", "1\n");
    int cst;
    if (waitpid(child, &cst, 0) != child || !WIFEXITED(cst)) wl_fail("child did not exit");
    child = 0;
    check(0, "after the child exited");
    wl_finish();
}
