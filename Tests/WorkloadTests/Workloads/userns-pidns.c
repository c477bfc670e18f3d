/* userns-pidns: rootless podman's shape. The launcher clones the tree's init with new user,
 * pid, net, uts, ipc and cgroup namespaces in one call (the kernel makes the user namespace first
 * and the others owned by it) and writes its maps from outside; init (pid 1) names its
 * host, makes a SysV message queue (a message queued) and an attached shm segment and gives
 * them to uid 1000, drops to uid 1000 and forks a worker (pid 2) whose two threads count in
 * memory shared with it.
 * DIR/ready lists init's pid as the launcher sees it; the launcher waits for it and ends.
 * After go, init checks the maps, setgroups, its credentials, that each of its namespaces
 * is owned by its user namespace (NS_GET_USERNS) created by uid 0 (NS_GET_OWNER_UID),
 * the SysV objects' owners, modes and contents, and that the worker still counts. */
#include "workload.h"
#include "userns.h"
#include <sched.h>
#include <sys/ioctl.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>

static const char *uid_map = "0 0 1\n1 100001 65535\n";
static const char *gid_map = "0 0 1\n1 100001 65535\n";

static int msq = -1, shm = -1;

static ino_t inode(int fd)
{
    struct stat st;
    return fstat(fd, &st) ? 0 : st.st_ino;
}

/* Maps, setgroups, ids, host name, and for each namespace whether the user namespace owns it. */
static void state(char *out, size_t size)
{
    char buf[4096], status[4096];
    size_t off = 0;
    const char *files[] = { "/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups" };
    for (unsigned i = 0; i < 3; i++) {
        slurp(files[i], buf, sizeof buf);
        off += snprintf(out + off, size - off, "%s|", buf);
    }
    slurp("/proc/self/status", status, sizeof status);
    char *uid = strstr(status, "Uid:"), *end = uid ? strchr(uid, '\n') : NULL;
    if (uid && end) off += snprintf(out + off, size - off, "%.*s|", (int)(end - uid), uid);
    gethostname(buf, sizeof buf);
    off += snprintf(out + off, size - off, "host %s|pid %d|", buf, getpid());
    int user = open("/proc/self/ns/user", O_RDONLY);
    uid_t owner = (uid_t)-1;
    ioctl(user, NS_GET_OWNER_UID, &owner);
    off += snprintf(out + off, size - off, "owner uid %d|", (int)owner);
    const char *kinds[] = { "pid", "net", "uts", "ipc", "cgroup" };
    for (unsigned i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "/proc/self/ns/%s", kinds[i]);
        int ns = open(buf, O_RDONLY), by = ns < 0 ? -1 : ioctl(ns, NS_GET_USERNS);
        off += snprintf(out + off, size - off, "%s %s|", kinds[i], by >= 0 && inode(by) == inode(user) ? "owned" : "NOT OWNED");
        if (by >= 0) close(by);
        if (ns >= 0) close(ns);
    }
    close(user);
    struct msqid_ds m;
    struct shmid_ds sh;
    if (msgctl(msq, IPC_STAT, &m) == 0 && shmctl(shm, IPC_STAT, &sh) == 0)
        snprintf(out + off, size - off, "msq %d uid %d cuid %d mode %o n %lu|shm %d uid %d mode %o size %zu",
                 msq, (int)m.msg_perm.uid, (int)m.msg_perm.cuid, m.msg_perm.mode, (unsigned long)m.msg_qnum,
                 shm, (int)sh.shm_perm.uid, sh.shm_perm.mode, sh.shm_segsz);
    else
        snprintf(out + off, size - off, "IPC_STAT: %s", strerror(errno));
}

static int maps_pipe[2], ready_pipe[2];
static volatile unsigned long *counter;

static void *count(void *arg)
{
    for (;;) { (*(volatile unsigned long *)arg)++; wl_sleep_ms(1); }
    return NULL;
}

static int init_main(void *arg)
{
    (void)arg;
    char c;
    close(maps_pipe[1]); close(ready_pipe[0]);
    if (read(maps_pipe[0], &c, 1) != 1) _exit(1);  /* maps written */
    close(maps_pipe[0]);
    setsid();
    if (sethostname("inside-userns", 13)) { perror("sethostname"); _exit(2); }
    /* SysV objects of the ipc namespace, made by uid 0 inside and handed to uid 1000 */
    struct { long type; char text[8]; } msg = { 7, "queued" };
    msq = msgget(IPC_PRIVATE, 0660);
    shm = shmget(IPC_PRIVATE, 8192, 0640);
    char *seg = shm < 0 ? NULL : shmat(shm, NULL, 0);
    struct msqid_ds m;
    if (msq < 0 || seg == (void *)-1 || !seg || msgsnd(msq, &msg, sizeof msg.text, 0) || msgctl(msq, IPC_STAT, &m)) { perror("sysv"); _exit(6); }
    struct shmid_ds sh;
    m.msg_perm.uid = 1000;
    if (msgctl(msq, IPC_SET, &m) || shmctl(shm, IPC_STAT, &sh)) { perror("IPC_SET"); _exit(6); }
    sh.shm_perm.uid = 1000;
    if (shmctl(shm, IPC_SET, &sh)) { perror("IPC_SET"); _exit(6); }
    strcpy(seg, "shared segment");
    if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { perror("setresuid"); _exit(3); }
    pid_t worker = fork();
    if (worker == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, count, (void *)(counter + 1))) _exit(5);
        count((void *)counter);
    }
    char before[4096], after[4096];
    state(before, sizeof before);
    if (write(ready_pipe[1], "r", 1) != 1) _exit(4);
    close(ready_pipe[1]);
    wl_wait_go();
    unsigned long seen = *counter, seen_thread = counter[1];
    wl_sleep_ms(50);
    state(after, sizeof after);
    if (strcmp(seg, "shared segment")) wl_fail("segment holds '%s'", seg);
    else if (msgrcv(msq, &msg, sizeof msg.text, 7, IPC_NOWAIT) != sizeof msg.text || strcmp(msg.text, "queued"))
        wl_fail("message: %s", strerror(errno));
    else if (strstr(after, "IPC_STAT")) wl_fail("%s", after);
    else if (strcmp(before, after)) wl_fail("state changed:\n%s\n%s", before, after);
    else if (strstr(after, "NOT OWNED")) wl_fail("a namespace is not owned by the user namespace: %s", after);
    else if (kill(worker, 0) || worker != 2) wl_fail("worker %d gone: %s", worker, strerror(errno));
    else if (*counter == seen || counter[1] == seen_thread) wl_fail("the worker stopped counting at %lu/%lu", seen, seen_thread);
    kill(worker, SIGKILL);
    wl_finish();
    return 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    counter = wl_shared(4096);
    /* init drops to uid 1000, which owns nothing here */
    if (pipe(maps_pipe) || pipe(ready_pipe) || chmod(".", 0777)) { perror("pipe"); return 2; }
    static char stack[256 * 1024];
    pid_t init = clone(init_main, stack + sizeof stack,
                       CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD, NULL);
    if (init < 0) { perror("clone"); return 2; }
    char path[64], c;
    snprintf(path, sizeof path, "/proc/%d/uid_map", init);
    if (put(path, uid_map)) { perror("uid_map"); return 2; }
    snprintf(path, sizeof path, "/proc/%d/gid_map", init);
    if (put(path, gid_map)) { perror("gid_map"); return 2; }
    close(maps_pipe[0]); close(ready_pipe[1]);
    if (write(maps_pipe[1], "m", 1) != 1) return 2;
    if (read(ready_pipe[0], &c, 1) != 1) { fprintf(stderr, "init failed\n"); return 2; }
    wl_ready_pids(&init, 1);
    int st;
    waitpid(init, &st, 0);
    return 0;
}
