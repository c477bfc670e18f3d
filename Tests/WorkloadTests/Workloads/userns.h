/* What the user-namespace workloads share: writing a /proc file whole (maps, setgroups)
 * and reading one back into a string. */
#include <sched.h>

static inline int put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    int ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok ? 0 : -1;
}

static inline void slurp(const char *path, char *out, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, out, size - 1);
    out[n > 0 ? n : 0] = 0;
    if (fd >= 0) close(fd);
}
