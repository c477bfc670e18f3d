// A small process tree with known state for `inspect`:
//   inspect-tree DIR          opens DIR/marker.txt as fd 7 and a pipe, forks a child
//                             that re-executes this program with known arguments,
//                             writes "ROOT CHILD" to DIR/ready and waits.
//   inspect-tree --child ...  the child: keeps the pipe's read end and pauses.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        for (;;) pause();
    }
    if (argc < 2) return 2;
    // The tree must own its session, or a dump would need --shell-job.
    setsid();
    if (chdir(argv[1]) != 0) return 7;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 8;
    self[len] = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/marker.txt", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || dup2(fd, 7) < 0) return 3;
    if (fd != 7) close(fd);
    int p[2];
    if (pipe(p) != 0) return 4;
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        // By its real path, so the child's comm is the binary's name.
        execl(self, "inspect-tree", "--child", "marker-arg", "two words", (char *)NULL);
        _exit(5);
    }
    close(p[0]);
    // Wait until the child has exec'd (its comm changes), so the tree is stable.
    char comm[64] = "", cpath[64];
    snprintf(cpath, sizeof cpath, "/proc/%d/cmdline", child);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(cpath, "r");
        if (f) { size_t n = fread(comm, 1, sizeof comm - 1, f); comm[n] = 0; fclose(f); }
        if (strcmp(comm, "inspect-tree") == 0) break;
        usleep(10000);
    }
    snprintf(path, sizeof path, "%s/ready", argv[1]);
    FILE *r = fopen(path, "w");
    if (!r) return 6;
    fprintf(r, "%d %d\n", getpid(), child);
    fclose(r);
    for (;;) pause();
}
