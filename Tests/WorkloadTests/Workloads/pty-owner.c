/* pty-owner: the slave of a pty pair given to uid 1000, gid 5 and mode 0640 (as a login
 * does with grantpt for a user), held by its master and slave fds.
 * After go: /dev/pts/N has the same owner, group and mode, and the pair still talks. */
#include "workload.h"

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) { perror("openpt"); return 2; }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    if (s < 0 || fchown(s, 1000, 5) || fchmod(s, 0640)) { perror("slave"); return 2; }
    struct stat before;
    fstat(s, &before);
    char name[64];
    snprintf(name, sizeof name, "%s", ptsname(m));
    wl_ready();
    wl_wait_go();

    struct stat now, path;
    fstat(s, &now);
    if (now.st_uid != before.st_uid || now.st_gid != before.st_gid || now.st_mode != before.st_mode)
        wl_fail("slave: %d:%d 0%o, want %d:%d 0%o", now.st_uid, now.st_gid, now.st_mode, before.st_uid, before.st_gid, before.st_mode);
    if (stat(name, &path) != 0 || path.st_rdev != now.st_rdev || path.st_uid != before.st_uid || path.st_mode != before.st_mode)
        wl_fail("%s is not the slave as it was", name);
    if (write(m, "hi\n", 3) != 3) wl_fail("write master");
    char buf[8] = "";
    if (read(s, buf, sizeof buf) < 2 || memcmp(buf, "hi", 2) != 0) wl_fail("slave read '%s'", buf);
    wl_finish();
}
