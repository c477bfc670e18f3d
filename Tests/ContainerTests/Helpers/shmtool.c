/* shmtool: a SysV shared memory segment for the container tests (busybox has no ipcmk).
 *   shmtool create KEY SIZE   create the segment (0600) and fill it with the pattern
 *   shmtool verify KEY SIZE   check that the segment exists, has SIZE bytes and holds the pattern
 * Exit 0 on success; otherwise a reason on stderr and exit 1.
 * Built static into the container's rootfs: cc -static -O2 -o rootfs/bin/shmtool shmtool.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

static unsigned char pattern(unsigned long i, key_t key) {
    return (unsigned char)((i * 31u + (unsigned long)key + (i >> 8)) & 0xff);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: shmtool create|verify KEY SIZE\n");
        return 2;
    }
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    size_t size = (size_t)strtoul(argv[3], NULL, 0);
    if (strcmp(argv[1], "create") == 0) {
        int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
        if (id < 0) { fprintf(stderr, "shmget(create %#x): %s\n", key, strerror(errno)); return 1; }
        unsigned char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) { fprintf(stderr, "shmat: %s\n", strerror(errno)); return 1; }
        for (size_t i = 0; i < size; i++) p[i] = pattern(i, key);
        shmdt(p);
        printf("created key %#x id %d size %zu\n", key, id, size);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0) {
        int id = shmget(key, 0, 0);
        if (id < 0) { fprintf(stderr, "shmget(%#x): %s\n", key, strerror(errno)); return 1; }
        struct shmid_ds ds;
        if (shmctl(id, IPC_STAT, &ds) < 0) { fprintf(stderr, "IPC_STAT: %s\n", strerror(errno)); return 1; }
        if (ds.shm_segsz != size) { fprintf(stderr, "size %zu, expected %zu\n", (size_t)ds.shm_segsz, size); return 1; }
        if ((ds.shm_perm.mode & 0777) != 0600) { fprintf(stderr, "mode %o, expected 600\n", ds.shm_perm.mode & 0777); return 1; }
        unsigned char *p = shmat(id, NULL, SHM_RDONLY);
        if (p == (void *)-1) { fprintf(stderr, "shmat: %s\n", strerror(errno)); return 1; }
        for (size_t i = 0; i < size; i++) {
            if (p[i] != pattern(i, key)) {
                fprintf(stderr, "byte %zu is %#x, expected %#x\n", i, p[i], pattern(i, key));
                return 1;
            }
        }
        shmdt(p);
        printf("verified key %#x id %d size %zu\n", key, id, size);
        return 0;
    }
    fprintf(stderr, "unknown command %s\n", argv[1]);
    return 2;
}
