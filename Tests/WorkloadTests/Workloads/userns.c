/* userns: the root enters a user namespace of its own (uid and gid 0 mapped to the
 * host's 0, setgroups denied), which the dump refuses; after go it is still there with
 * the same maps. */
#include "workload.h"
#include "userns.h"
#include <sched.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (unshare(CLONE_NEWUSER) != 0 || put("/proc/self/uid_map", "0 0 1\n") || put("/proc/self/setgroups", "deny")
        || put("/proc/self/gid_map", "0 0 1\n")) {
        wl_fail("entering a user namespace: %s", strerror(errno));
        wl_finish();
    }
    char uid[128], gid[128], sg[32];
    slurp("/proc/self/uid_map", uid, sizeof uid);
    slurp("/proc/self/gid_map", gid, sizeof gid);
    wl_ready();
    wl_wait_go();
    char uid2[128], gid2[128];
    slurp("/proc/self/uid_map", uid2, sizeof uid2);
    slurp("/proc/self/gid_map", gid2, sizeof gid2);
    slurp("/proc/self/setgroups", sg, sizeof sg);
    if (strcmp(uid, uid2) || strcmp(gid, gid2)) wl_fail("maps changed: '%s' '%s'", uid2, gid2);
    else if (strncmp(sg, "deny", 4)) wl_fail("setgroups '%s', want deny", sg);
    wl_finish();
}
