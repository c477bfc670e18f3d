/* sysv-shm: a SysV shared memory segment attached by a parent and its child. After
 * restore both attachments must still be that segment (not private copies): a write
 * through one is seen through the other and through a fresh shmat of the same id. */
#include "workload.h"
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int id = shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600);
    if (id < 0) { wl_fail("shmget: %s", strerror(errno)); wl_finish(); }
    volatile uint32_t *seg = shmat(id, NULL, 0);
    if (seg == (void *)-1) { wl_fail("shmat: %s", strerror(errno)); wl_finish(); }
    for (int i = 0; i < (1 << 18); i++) seg[i] = 0x5eed0000u + i;
    volatile int *flags = wl_shared(sizeof(int) * 4);
    pid_t child = fork();
    if (child == 0) {
        while (!flags[0]) wl_sleep_ms(10);
        flags[1] = seg[100] == 0xabcdef01u;   /* the parent's write, seen here */
        seg[200] = 0x12345678u;                /* and ours, for the parent */
        flags[2] = 1;
        _exit(0);
    }
    pid_t pids[2] = { getpid(), child };
    wl_ready_pids(pids, 2);
    while (!wl_go()) wl_sleep_ms(10);
    if (seg[7] != 0x5eed0007u) wl_fail("segment contents lost: 0x%x", seg[7]);
    seg[100] = 0xabcdef01u;
    flags[0] = 1;
    while (!flags[2]) wl_sleep_ms(10);
    if (!flags[1]) wl_fail("the child does not see the parent's write: not the same segment");
    if (seg[200] != 0x12345678u) wl_fail("the parent does not see the child's write");
    volatile uint32_t *again = shmat(id, NULL, SHM_RDONLY);
    if (again == (void *)-1) wl_fail("shmat of segment %d after restore: %s", id, strerror(errno));
    else if (again[100] != 0xabcdef01u) wl_fail("a fresh attach of segment %d does not see the writes", id);
    waitpid(child, NULL, 0);
    shmctl(id, IPC_RMID, NULL);
    wl_finish();
}
