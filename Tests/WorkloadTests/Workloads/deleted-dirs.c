/* deleted-dirs: what stays in use after its name is gone.
 *  a child whose cwd is a directory (mode 0751) removed after it went in;
 *  an fd on another removed directory (mode 0705);
 *  an unlinked FIFO (mode 0640) open at both ends with 100 bytes queued;
 *  a device node (1:3, /dev/null's) made in DIR, opened and unlinked.
 * After go: each still works as before, is still deleted, keeps its mode, and nothing
 * new stands at the old names. */
#include "workload.h"
#include <sys/sysmacros.h>

struct report { volatile int done; char msg[200]; };

static void expect_deleted(int fd, const char *name, mode_t mode, const char *what)
{
    char link[64], target[512] = "";
    struct stat st;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (readlink(link, target, sizeof target - 1) < 0) { wl_fail("%s: readlink", what); return; }
    char want[300];
    snprintf(want, sizeof want, "/%s (deleted)", name);
    if (!strstr(target, want)) wl_fail("%s shows as '%s'", what, target);
    if (fstat(fd, &st) != 0 || st.st_mode != mode || st.st_nlink != 0)
        wl_fail("%s: mode 0%o nlink %ld, want 0%o and 0", what, st.st_mode, (long)st.st_nlink, mode);
    if (access(name, F_OK) == 0) wl_fail("%s: %s reappeared", what, name);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    rmdir("cwd"); rmdir("gone"); unlink("ff"); unlink("null2");
    umask(0);
    struct report *r = wl_shared(4096);
    if (mkdir("cwd", 0751) || mkdir("gone", 0705) || mkfifo("ff", 0640) || mknod("null2", S_IFCHR | 0600, makedev(1, 3))) { perror("make"); return 2; }
    pid_t child = fork();
    if (child == 0) {
        if (chdir("cwd") != 0) _exit(1);
        while (access("../go", F_OK) != 0) wl_sleep_ms(10);
        char target[512] = "";
        struct stat st;
        if (readlink("/proc/self/cwd", target, sizeof target - 1) < 0 || !strstr(target, "/cwd (deleted)"))
            snprintf(r->msg, sizeof r->msg, "child cwd shows as '%.150s'", target);
        else if (stat(".", &st) != 0 || st.st_mode != (S_IFDIR | 0751) || st.st_nlink != 0)
            snprintf(r->msg, sizeof r->msg, "child cwd: mode 0%o nlink %ld", st.st_mode, (long)st.st_nlink);
        else if (open("x", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT)
            snprintf(r->msg, sizeof r->msg, "child could create a file in its deleted cwd");
        __sync_synchronize();
        r->done = 1;
        _exit(0);
    }
    while (access("/proc/self", F_OK) == 0) {   /* until the child is in */
        char path[64], target[256] = "";
        snprintf(path, sizeof path, "/proc/%d/cwd", child);
        if (readlink(path, target, sizeof target - 1) > 0 && strstr(target, "/cwd")) break;
        wl_sleep_ms(5);
    }
    int dfd = open("gone", O_RDONLY | O_DIRECTORY);
    int rd = open("ff", O_RDONLY | O_NONBLOCK), wr = open("ff", O_WRONLY);
    int dev = open("null2", O_RDWR);
    if (dfd < 0 || rd < 0 || wr < 0 || dev < 0) { perror("open"); return 2; }
    char msg[100];
    for (int i = 0; i < 100; i++) msg[i] = (char)(i * 3 + 1);
    if (write(wr, msg, 100) != 100) { perror("write"); return 2; }
    if (rmdir("cwd") || rmdir("gone") || unlink("ff") || unlink("null2")) { perror("remove"); return 2; }
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    wl_wait_go();

    expect_deleted(dfd, "gone", S_IFDIR | 0705, "removed directory");
    if (openat(dfd, "x", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT) wl_fail("a file could be made in the removed directory");
    expect_deleted(rd, "ff", S_IFIFO | 0640, "FIFO read end");
    expect_deleted(wr, "ff", S_IFIFO | 0640, "FIFO write end");
    struct stat a, b;
    fstat(rd, &a); fstat(wr, &b);
    if (a.st_ino != b.st_ino) wl_fail("FIFO ends are two FIFOs");
    if (write(wr, "tail", 4) != 4) wl_fail("FIFO write after go");
    char got[200];
    ssize_t n = read(rd, got, sizeof got);
    if (n != 104 || memcmp(got, msg, 100) != 0 || memcmp(got + 100, "tail", 4) != 0) wl_fail("FIFO: read %zd bytes, want the 100 queued and 4 new", n);
    expect_deleted(dev, "null2", S_IFCHR | 0600, "device node");
    if (fstat(dev, &a) != 0 || a.st_rdev != makedev(1, 3)) wl_fail("device node is no longer 1:3");
    if (write(dev, "x", 1) != 1 || read(dev, got, 1) != 0) wl_fail("device node does not act as /dev/null");
    waitpid(child, NULL, 0);
    if (!r->done) wl_fail("child did not report");
    else if (r->msg[0]) wl_fail("%s", r->msg);
    wl_finish();
}
