#define _GNU_SOURCE
#include "carchive.h"
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int carchive_open_beneath(int dirfd, const char *path) {
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int carchive_remove_tree(const char *path) {
    return nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH);
}
