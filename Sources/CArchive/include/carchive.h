#ifndef CARCHIVE_H
#define CARCHIVE_H

#include <archive.h>
#include <archive_entry.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/xattr.h>

enum { CARCHIVE_SEEK_DATA = 3, CARCHIVE_SEEK_HOLE = 4 };

/// openat2(dirfd, path, O_PATH, RESOLVE_BENEATH): follows the path's symlinks and fails with
/// errno EXDEV when any step leaves dirfd. Returns the fd or -1 with errno set.
int carchive_open_beneath(int dirfd, const char *path);

/// Removes a tree depth first without following symlinks (nftw FTW_PHYS). 0 or -1 with errno.
int carchive_remove_tree(const char *path);

#endif
