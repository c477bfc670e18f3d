/* bpf(2) helpers for the BPF map workloads (bpf_map.c, bpf_map_refused.c). */
#ifndef BPF_MAP_H
#define BPF_MAP_H
#include "workload.h"
#include <linux/bpf.h>

static inline long bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }

static inline int map_create(int type, const char *name, int key, int value, int max, int flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type; a.key_size = key; a.value_size = value; a.max_entries = max; a.map_flags = flags;
    strncpy(a.map_name, name, sizeof a.map_name - 1);
    int fd = (int)bpf(BPF_MAP_CREATE, &a);
    if (fd < 0) { fprintf(stderr, "create %s: %s\n", name, strerror(errno)); exit(2); }
    return fd;
}

static inline int map_update(int fd, const void *key, const void *value, int flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key; a.value = (uintptr_t)value; a.flags = flags;
    return (int)bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static inline int map_lookup(int fd, const void *key, void *value)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key; a.value = (uintptr_t)value;
    return (int)bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static inline int map_delete(int fd, const void *key)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key;
    return (int)bpf(BPF_MAP_DELETE_ELEM, &a);
}

/* Entries in the map, by GET_NEXT_KEY. */
static inline int map_count(int fd, int key_size)
{
    char key[64], next[64];
    union bpf_attr a;
    int n = 0;
    for (;;) {
        memset(&a, 0, sizeof a);
        a.map_fd = fd; a.key = n ? (uintptr_t)key : 0; a.next_key = (uintptr_t)next;
        if (bpf(BPF_MAP_GET_NEXT_KEY, &a) != 0) return errno == ENOENT ? n : -1;
        memcpy(key, next, key_size);
        n++;
    }
}

static inline struct bpf_map_info map_info(int fd)
{
    struct bpf_map_info info;
    union bpf_attr a;
    memset(&info, 0, sizeof info);
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = fd; a.info.info_len = sizeof info; a.info.info = (uintptr_t)&info;
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) wl_fail("BPF_OBJ_GET_INFO_BY_FD fd %d: %s", fd, strerror(errno));
    return info;
}

#endif
