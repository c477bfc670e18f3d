/* eventfd: a semaphore eventfd (non-blocking) holding 5 and a plain blocking one holding
 * a count beyond 32 bits. After go: the flags, the counts and the semaphore behaviour
 * (five reads of 1, then EAGAIN) are as before; both still count. */
#include "workload.h"
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int sem = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
    int big = eventfd(0, EFD_CLOEXEC);
    if (sem < 0 || big < 0) { perror("eventfd"); return 2; }
    uint64_t v = 0x100000007ULL;
    if (write(big, &v, 8) != 8) { perror("write"); return 2; }
    wl_ready();
    wl_wait_go();

    if (!(fcntl(sem, F_GETFL) & O_NONBLOCK)) wl_fail("semaphore eventfd lost O_NONBLOCK");
    if (fcntl(big, F_GETFL) & O_NONBLOCK) wl_fail("plain eventfd became non-blocking");
    if (!(fcntl(big, F_GETFD) & FD_CLOEXEC)) wl_fail("plain eventfd lost FD_CLOEXEC");
    for (int i = 0; i < 5; i++) {
        uint64_t got = 0;
        if (read(sem, &got, 8) != 8 || got != 1) { wl_fail("semaphore read %d gave %llu (%s)", i, (unsigned long long)got, strerror(errno)); break; }
    }
    uint64_t got = 0;
    if (read(sem, &got, 8) != -1 || errno != EAGAIN) wl_fail("semaphore eventfd not empty after 5 reads");
    if (read(big, &got, 8) != 8 || got != 0x100000007ULL) wl_fail("plain eventfd held %#llx, want 0x100000007", (unsigned long long)got);
    v = 3;
    if (write(sem, &v, 8) != 8 || read(sem, &got, 8) != 8 || got != 1) wl_fail("semaphore eventfd does not count after restore");
    if (write(big, &v, 8) != 8 || read(big, &got, 8) != 8 || got != 3) wl_fail("plain eventfd does not count after restore");
    wl_finish();
}
