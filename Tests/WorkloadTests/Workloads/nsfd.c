/* nsfd: fds on this process's namespace files (/proc/self/ns/net, uts, ipc, mnt, pid,
 * cgroup, and pid_for_children), one without O_CLOEXEC.
 * After go: each is a file of the namespace this process is in (same inode as its own
 * /proc/self/ns link), the flags are the same, and setns through the uts one works. */
#include "workload.h"
#include <sched.h>

#define N 7
static const char *names[N] = { "net", "uts", "ipc", "mnt", "pid", "cgroup", "pid_for_children" };

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int fd[N], fdfl[N], fl[N];
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        fd[i] = open(path, O_RDONLY | (i == 1 ? 0 : O_CLOEXEC));
        if (fd[i] < 0) { perror(path); return 2; }
        fdfl[i] = fcntl(fd[i], F_GETFD); fl[i] = fcntl(fd[i], F_GETFL);
    }
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        struct stat a, b;
        if (fstat(fd[i], &a) || stat(path, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
            wl_fail("%s: the fd is another namespace than this process's", names[i]);
        if (fcntl(fd[i], F_GETFD) != fdfl[i] || fcntl(fd[i], F_GETFL) != fl[i]) wl_fail("%s: fd flags changed", names[i]);
    }
    if (setns(fd[1], CLONE_NEWUTS) != 0) wl_fail("setns through the uts fd: %s", strerror(errno));
    wl_finish();
}
