/* shared-tables: a child made by clone with CLONE_FILES ("files") or CLONE_FS ("fs")
 * shares that table with its parent; with "siblings" two children share an fd table
 * that their parent left (unshare). After go a child opens a file (files, siblings) or
 * changes directory and umask (fs), and the parent (siblings: the other child) must see
 * it in its own table. */
#include "workload.h"
#include <sched.h>

static int files, siblings;
static volatile int *flag;

static int child(void *arg)
{
    int second = (int)(long)arg;
    while (!flag[1]) wl_sleep_ms(5);   /* not wl_go: with CLONE_FS our chdir moves the parent */
    if (second) {
        while (!flag[0]) wl_sleep_ms(2);
        flag[2] = fcntl(77, F_GETFD) >= 0 ? 1 : 2;
    } else if (files || siblings) {
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
    siblings = argc > 2 && strcmp(argv[2], "siblings") == 0;
    flag = wl_shared(4096);
    mkdir("sub", 0755);
    static char stack[2][65536];
    int share = files || siblings ? CLONE_FILES : CLONE_FS;
    pid_t pids[3] = { getpid(), 0, 0 };
    pids[1] = clone(child, stack[0] + sizeof stack[0], share | SIGCHLD, (void *)0L);
    if (siblings) {
        pids[2] = clone(child, stack[1] + sizeof stack[1], share | SIGCHLD, (void *)1L);
        if (unshare(CLONE_FILES) != 0) { perror("unshare"); return 2; }
    }
    if (pids[1] < 0 || pids[2] < 0) { perror("clone"); return 2; }
    wl_ready_pids(pids, siblings ? 3 : 2);
    wl_wait_go();
    flag[1] = 1;
    double deadline = wl_now() + 5;
    while (!(siblings ? flag[2] : flag[0]) && wl_now() < deadline) wl_sleep_ms(2);
    if (!flag[0]) wl_fail("the child did not act");
    else if (siblings && flag[2] != 1) wl_fail("fd 77 opened by one child is not in its sibling's table: not shared");
    else if (files && fcntl(77, F_GETFD) < 0) wl_fail("fd 77 opened by the child is not in the parent's table: not shared");
    else if (!files && !siblings) {
        char cwd[4096];
        mode_t m = umask(0);
        if (!getcwd(cwd, sizeof cwd) || strcmp(strrchr(cwd, '/'), "/sub") != 0) wl_fail("cwd %s: the child's chdir did not reach the parent", cwd);
        else if (m != 0027) wl_fail("umask %o: the child's umask did not reach the parent", m);
        if (chdir("..") != 0) wl_fail("chdir ..");
    }
    for (int i = 1; i < 3; i++) if (pids[i] > 0) { kill(pids[i], SIGKILL); waitpid(pids[i], NULL, 0); }
    wl_finish();
}
