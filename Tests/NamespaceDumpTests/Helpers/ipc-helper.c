/* Creates SysV IPC objects with known contents in the caller's ipc namespace ("setup"),
 * or prints every object with a checksum of its contents ("show"), for the namespace
 * dump tests. Compiled by the tests. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *__buf; };

static void die(const char *what) { perror(what); exit(1); }

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

static int setup(void) {
    /* create and remove one of each first, so the kept objects get ids other than 0 */
    int t = shmget(IPC_PRIVATE, 4096, 0600);
    if (t < 0 || shmctl(t, IPC_RMID, NULL) < 0) die("shm warm-up");
    int a = shmget(0x1234, 10000, IPC_CREAT | IPC_EXCL | 0640);
    if (a < 0) die("shmget a");
    unsigned char *pa = shmat(a, NULL, 0);
    if (pa == (void *)-1) die("shmat a");
    for (int i = 0; i < 10000; i++) pa[i] = (unsigned char)(i * 7 + 3);
    shmdt(pa);
    struct shmid_ds ds;
    if (shmctl(a, IPC_STAT, &ds) < 0) die("shm stat");
    ds.shm_perm.uid = 1000; ds.shm_perm.gid = 1001;
    if (shmctl(a, IPC_SET, &ds) < 0) die("shm set");
    int b = shmget(IPC_PRIVATE, 100, IPC_CREAT | 0600);
    if (b < 0) die("shmget b");
    char *pb = shmat(b, NULL, 0);
    if (pb == (void *)-1) die("shmat b");
    strcpy(pb, "private segment");
    shmdt(pb);

    t = semget(IPC_PRIVATE, 1, 0600);
    if (t < 0 || semctl(t, 0, IPC_RMID) < 0) die("sem warm-up");
    int s = semget(0x2345, 3, IPC_CREAT | IPC_EXCL | 0660);
    if (s < 0) die("semget");
    unsigned short values[3] = {1, 5, 9};
    union semun arg = {.array = values};
    if (semctl(s, 0, SETALL, arg) < 0) die("semctl SETALL");

    int q = msgget(0x3456, IPC_CREAT | IPC_EXCL | 0620);
    if (q < 0) die("msgget");
    struct { long type; char text[4000]; } m;
    m.type = 1; strcpy(m.text, "first");
    if (msgsnd(q, &m, 6, 0) < 0) die("msgsnd 1");
    m.type = 2; strcpy(m.text, "second message");
    if (msgsnd(q, &m, 15, 0) < 0) die("msgsnd 2");
    m.type = 7; for (int i = 0; i < 3000; i++) m.text[i] = (char)(i * 13);
    if (msgsnd(q, &m, 3000, 0) < 0) die("msgsnd 3");
    if (msgget(IPC_PRIVATE, IPC_CREAT | 0600) < 0) die("msgget private");
    return 0;
}

static int show(void) {
    struct shm_info si;
    int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
    if (max < 0) die("SHM_INFO");
    for (int i = 0; i <= max; i++) {
        struct shmid_ds ds;
        int id = shmctl(i, SHM_STAT, &ds);
        if (id < 0) continue;
        unsigned char *p = shmat(id, NULL, SHM_RDONLY);
        if (p == (void *)-1) die("shmat show");
        printf("shm %d key=%#x size=%zu mode=%o uid=%u gid=%u sum=%016llx\n", id, ds.shm_perm.__key,
               (size_t)ds.shm_segsz, ds.shm_perm.mode & 0777, ds.shm_perm.uid, ds.shm_perm.gid,
               (unsigned long long)fnv(p, ds.shm_segsz));
        shmdt(p);
    }
    struct seminfo sem;
    union semun arg = {.__buf = &sem};
    max = semctl(0, 0, SEM_INFO, arg);
    if (max < 0) die("SEM_INFO");
    for (int i = 0; i <= max; i++) {
        struct semid_ds ds;
        arg.buf = &ds;
        int id = semctl(i, 0, SEM_STAT, arg);
        if (id < 0) continue;
        unsigned short v[64];
        arg.array = v;
        if (semctl(id, 0, GETALL, arg) < 0) die("GETALL");
        printf("sem %d key=%#x nsems=%lu mode=%o values=", id, ds.sem_perm.__key, (unsigned long)ds.sem_nsems,
               ds.sem_perm.mode & 0777);
        for (unsigned long k = 0; k < ds.sem_nsems; k++) printf("%s%u", k ? "," : "", v[k]);
        printf("\n");
    }
    struct msginfo mi;
    max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
    if (max < 0) die("MSG_INFO");
    for (int i = 0; i <= max; i++) {
        struct msqid_ds ds;
        int id = msgctl(i, MSG_STAT, &ds);
        if (id < 0) continue;
        printf("msg %d key=%#x mode=%o qnum=%lu qbytes=%lu msgs=", id, ds.msg_perm.__key, ds.msg_perm.mode & 0777,
               (unsigned long)ds.msg_qnum, (unsigned long)ds.msg_qbytes);
        for (unsigned long k = 0; k < ds.msg_qnum; k++) {
            struct { long type; unsigned char text[8192]; } m;
            ssize_t n = msgrcv(id, &m, sizeof(m.text), k, IPC_NOWAIT | MSG_COPY);
            if (n < 0) die("msgrcv MSG_COPY");
            printf("%s%ld:%zd:%016llx", k ? "," : "", m.type, n, (unsigned long long)fnv(m.text, n));
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "setup")) return setup();
    if (argc == 2 && !strcmp(argv[1], "show")) return show();
    fprintf(stderr, "usage: ipc-helper setup|show\n");
    return 2;
}
