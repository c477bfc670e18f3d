/* shared-tables: a child made by clone with CLONE_FILES ("files") or CLONE_FS ("fs")
 * shares that table with its parent. After go the child opens a file (files) or
 * changes directory and umask (fs), and the parent must see it in its own table. */
#include "workload.h"
#include <sched.h>

static int files;
static volatile int *flag;

static int child(void *arg)
{
    (void)arg;
    while (!flag[1]) wl_sleep_ms(5);   /* not wl_go: with CLONE_FS our chdir moves the parent */
    if (files) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, 77) != 77) _exit(3);
    } else {
        if (chdir("sub") != 0) _exit(3);
        umask(0027);
    }
    flag[0] = 1;
    for (;;) pause();
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    files = argc > 2 && strcmp(argv[2], "files") == 0;
    flag = wl_shared(4096);
    mkdir("sub", 0755);
    static char stack[65536];
    pid_t c = clone(child, stack + sizeof stack, (files ? CLONE_FILES : CLONE_FS) | SIGCHLD, NULL);
    if (c < 0) { perror("clone"); return 2; }
    pid_t pids[2] = { getpid(), c };
    wl_ready_pids(pids, 2);
    wl_wait_go();
    flag[1] = 1;
    double deadline = wl_now() + 5;
    while (!flag[0] && wl_now() < deadline) wl_sleep_ms(2);
    if (!flag[0]) wl_fail("the child did not act");
    else if (files && fcntl(77, F_GETFD) < 0) wl_fail("fd 77 opened by the child is not in the parent's table: not shared");
    else if (!files) {
        char cwd[4096];
        mode_t m = umask(0);
        if (!getcwd(cwd, sizeof cwd) || strcmp(strrchr(cwd, '/'), "/sub") != 0) wl_fail("cwd %s: the child's chdir did not reach the parent", cwd);
        else if (m != 0027) wl_fail("umask %o: the child's umask did not reach the parent", m);
        if (chdir("..") != 0) wl_fail("chdir ..");
    }
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    wl_finish();
}
