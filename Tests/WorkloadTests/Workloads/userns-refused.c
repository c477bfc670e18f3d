/* userns-refused: shapes of a user namespace the dump refuses; the workload must run on
 * untouched. "nested": a user namespace inside another one (two levels below the dumper's).
 * "tree": a user namespace without a pid namespace of its own and a child process.
 * "foreign": a net namespace made before the user namespace, so owned by the dumper's.
 * "mnt": a mount namespace made inside the user namespace (unshare -Um).
 * "cgroup": a cgroup namespace made inside, then the root moved into a pids cgroup below
 * its root (made before and removed at the end). */
#include "workload.h"
#include "userns.h"
#include <sched.h>

/* One level deeper, mapping our uid and gid 0 to the same ids of the parent. */
static int enter(void)
{
    return unshare(CLONE_NEWUSER) || put("/proc/self/uid_map", "0 0 1\n") || put("/proc/self/setgroups", "deny")
        || put("/proc/self/gid_map", "0 0 1\n");
}

static char cgroup[128];

/* Into `dir` of the pids hierarchy (our pid into its cgroup.procs). */
static int join(const char *dir)
{
    char procs[192], pid[16];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(pid, sizeof pid, "%d", getpid());
    return put(procs, pid);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    const char *shape = argc > 2 ? argv[2] : "";
    int nested = !strcmp(shape, "nested"), tree = !strcmp(shape, "tree"), mnt = !strcmp(shape, "mnt");
    if (!strcmp(shape, "cgroup")) snprintf(cgroup, sizeof cgroup, "/sys/fs/cgroup/pids/ocw-userns-%d", getpid());
    if ((cgroup[0] && mkdir(cgroup, 0755)) || (!strcmp(shape, "foreign") && unshare(CLONE_NEWNET)) || enter()
        || (nested && enter()) || (mnt && unshare(CLONE_NEWNS)) || (cgroup[0] && (unshare(CLONE_NEWCGROUP) || join(cgroup)))) { wl_fail("entering a user namespace: %s", strerror(errno)); wl_finish(); }
    char before[64];
    int n = readlink("/proc/self/ns/user", before, sizeof before - 1);
    before[n > 0 ? n : 0] = 0;
    pid_t pids[2] = { getpid(), tree ? fork() : 0 };
    if (pids[1] == 0 && tree) { for (;;) pause(); }
    wl_ready_pids(pids, tree ? 2 : 1);
    wl_wait_go();
    char after[64];
    n = readlink("/proc/self/ns/user", after, sizeof after - 1);
    after[n > 0 ? n : 0] = 0;
    if (strcmp(before, after)) wl_fail("user namespace changed: %s, was %s", after, before);
    if (tree && (kill(pids[1], SIGKILL) || waitpid(pids[1], NULL, 0) != pids[1])) wl_fail("child: %s", strerror(errno));
    if (cgroup[0] && (join("/sys/fs/cgroup/pids") || rmdir(cgroup))) wl_fail("leaving %s: %s", cgroup, strerror(errno));
    wl_finish();
}
