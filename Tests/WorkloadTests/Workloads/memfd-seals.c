/* memfd-seals: memfds with each creation flag and seal set, and a changed mode.
 *  plain: MFD_CLOEXEC, no sealing (F_SEAL_SEAL only); chmod 0640, owner 1000:1000
 *  grow: MFD_ALLOW_SEALING, F_SEAL_SHRINK|F_SEAL_GROW
 *  frozen: MFD_ALLOW_SEALING, F_SEAL_WRITE|F_SEAL_SEAL
 *  future: MFD_ALLOW_SEALING, F_SEAL_FUTURE_WRITE
 *  noexec: MFD_NOEXEC_SEAL (mode 0666, F_SEAL_EXEC)
 *  exec: MFD_EXEC|MFD_ALLOW_SEALING, mode 0777
 * After go: the same seals, modes, owners, sizes, contents, close-on-exec, names; and the
 * seals still act (a write to frozen fails, chmod +x of noexec fails). */
#include "workload.h"
#include <linux/memfd.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define N 6
static const char *names[N] = { "plain", "grow", "frozen", "future", "noexec", "exec" };

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    unsigned flags[N] = { MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_ALLOW_SEALING | MFD_CLOEXEC, MFD_ALLOW_SEALING,
                          MFD_NOEXEC_SEAL, MFD_EXEC | MFD_ALLOW_SEALING };
    int seals[N] = { 0, F_SEAL_SHRINK | F_SEAL_GROW, F_SEAL_WRITE | F_SEAL_SEAL, F_SEAL_FUTURE_WRITE, 0, 0 };
    int fd[N], before[N], fdfl[N];
    struct stat st[N];
    for (int i = 0; i < N; i++) {
        fd[i] = (int)syscall(SYS_memfd_create, names[i], flags[i]);
        if (fd[i] < 0) { perror(names[i]); return 2; }
        char buf[5000];
        memset(buf, 'a' + i, sizeof buf);
        if (write(fd[i], buf, 1000 + 500 * i) < 0) { perror("write"); return 2; }
        if (seals[i] && fcntl(fd[i], F_ADD_SEALS, seals[i]) != 0) { perror("seal"); return 2; }
    }
    if (fchmod(fd[0], 0640) || fchown(fd[0], 1000, 1000)) { perror("chmod"); return 2; }
    for (int i = 0; i < N; i++) { before[i] = fcntl(fd[i], F_GET_SEALS); fdfl[i] = fcntl(fd[i], F_GETFD); fstat(fd[i], &st[i]); }
    wl_ready();
    wl_wait_go();

    for (int i = 0; i < N; i++) {
        struct stat now;
        fstat(fd[i], &now);
        int s = fcntl(fd[i], F_GET_SEALS);
        if (s != before[i]) wl_fail("%s: seals 0x%x, want 0x%x", names[i], s, before[i]);
        if (fcntl(fd[i], F_GETFD) != fdfl[i]) wl_fail("%s: FD_CLOEXEC changed", names[i]);
        if (now.st_mode != st[i].st_mode || now.st_uid != st[i].st_uid || now.st_gid != st[i].st_gid)
            wl_fail("%s: mode 0%o %d:%d, want 0%o %d:%d", names[i], now.st_mode, now.st_uid, now.st_gid, st[i].st_mode, st[i].st_uid, st[i].st_gid);
        if (now.st_size != st[i].st_size) wl_fail("%s: size %lld", names[i], (long long)now.st_size);
        char c = 0;
        if (pread(fd[i], &c, 1, now.st_size - 1) != 1 || c != 'a' + i) wl_fail("%s: contents changed", names[i]);
        char link[64], target[128] = "", want[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd[i]);
        snprintf(want, sizeof want, "/memfd:%s (deleted)", names[i]);
        if (readlink(link, target, sizeof target - 1) < 0 || strcmp(target, want) != 0) wl_fail("%s shows as '%s'", names[i], target);
    }
    if (pwrite(fd[2], "x", 1, 0) != -1 || errno != EPERM) wl_fail("frozen: a write went through its seal");
    if (fchmod(fd[4], 0777) == 0) wl_fail("noexec: chmod +x went through F_SEAL_EXEC");
    if (fcntl(fd[2], F_ADD_SEALS, F_SEAL_GROW) == 0) wl_fail("frozen: a seal was added after F_SEAL_SEAL");
    if (fcntl(fd[1], F_ADD_SEALS, F_SEAL_WRITE) != 0) wl_fail("grow: no more seals can be added");
    wl_finish();
}
