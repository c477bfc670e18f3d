/* seccomp: a filter that fails uname() with EPERM (and allows everything else), installed
 * under no_new_privs, inherited by a second thread. After restore the filter, the
 * Seccomp mode and NoNewPrivs must be the same in both threads. */
#include "workload.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

static int filtered(void)
{
    struct utsname u;
    return uname(&u) == -1 && errno == EPERM;
}

static int status_field(const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/thread-self/status");
    FILE *f = fopen(path, "r");
    int v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) v = atoi(line + strlen(key));
    if (f) fclose(f);
    return v;
}

static volatile int thread_ok = -1;
static volatile int go_seen;

static void *worker(void *arg)
{
    (void)arg;
    while (!go_seen) usleep(10000);
    thread_ok = filtered() && status_field("Seccomp:") == 2 && status_field("NoNewPrivs:") == 1;
    return NULL;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = code };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("nnp"); return 2; }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) { perror("seccomp"); return 2; }
    if (!filtered()) { wl_fail("filter not active before checkpoint"); wl_finish(); }
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pid_t me = getpid();
    wl_ready_pids(&me, 1);
    while (!wl_go()) usleep(10000);
    go_seen = 1;
    pthread_join(t, NULL);
    if (!filtered()) wl_fail("uname is no longer filtered in the main thread");
    if (status_field("Seccomp:") != 2) wl_fail("Seccomp mode changed");
    if (status_field("NoNewPrivs:") != 1) wl_fail("NoNewPrivs lost");
    if (thread_ok != 1) wl_fail("second thread lost its filter");
    wl_finish();
}
