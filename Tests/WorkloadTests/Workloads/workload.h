/* Shared helpers for checkpoint/restore workloads.
 *
 * Protocol: `BIN DIR [args]`; setsid() + chdir(DIR); set up state; write DIR/ready
 * (atomically: ready.tmp + rename; contents: the pids of every process, root first);
 * keep running and poll DIR/go; then check the state and write DIR/result
 * ("PASS\n" or "FAIL: reason\n") atomically and exit 0.
 * The checks must hold whether or not a checkpoint/restore happened in between. */
#ifndef WORKLOAD_H
#define WORKLOAD_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Writes `text` to DIR/name atomically (name.tmp, fsync, rename). */
static inline void wl_write_file(const char *name, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror(tmp); _exit(3); }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { perror("write"); _exit(3); }
        off += (size_t)n;
    }
    fsync(fd);
    close(fd);
    if (rename(tmp, name) != 0) { perror("rename"); _exit(3); }
}

/* setsid() first so the session lies inside the dumped tree, then chdir(DIR). */
static inline void wl_init(int argc, char **argv)
{
    if (setsid() < 0 && getsid(0) != getpid()) { perror("setsid"); exit(2); } /* EPERM: already leader */
    if (argc < 2 || chdir(argv[1]) != 0) { fprintf(stderr, "usage: %s DIR\n", argv[0]); exit(2); }
    setvbuf(stdout, NULL, _IONBF, 0);
}

/* DIR/ready listing the given pids (root first). */
static inline void wl_ready_pids(const pid_t *pids, int n)
{
    char buf[8192];
    size_t off = 0;
    for (int i = 0; i < n && off + 16 < sizeof buf; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%d%s", (int)pids[i], i + 1 < n ? " " : "\n");
    wl_write_file("ready", buf);
}

static inline void wl_ready(void)
{
    pid_t self = getpid();
    wl_ready_pids(&self, 1);
}

static inline int wl_go(void)
{
    struct stat st;
    return stat("go", &st) == 0;
}

static inline void wl_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Polls DIR/go every 10 ms. */
static inline void wl_wait_go(void)
{
    while (!wl_go()) wl_sleep_ms(10);
}

static inline double wl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes DIR/result: PASS when fail[0] == 0, else "FAIL: <fail>". */
static inline void wl_result(const char *fail)
{
    char buf[1200];
    if (fail == NULL || fail[0] == 0) snprintf(buf, sizeof buf, "PASS\n");
    else snprintf(buf, sizeof buf, "FAIL: %.1100s\n", fail);
    wl_write_file("result", buf);
    printf("result: %s", buf);
}

/* Collects the first failure message (later ones are dropped). */
static char wl_fail_msg[1024];
static inline void wl_fail(const char *fmt, ...)
{
    if (wl_fail_msg[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wl_fail_msg, sizeof wl_fail_msg, fmt, ap);
    va_end(ap);
}

static inline void wl_finish(void)
{
    wl_result(wl_fail_msg);
    exit(0);
}

/* MAP_SHARED anonymous memory, created before fork to talk between processes. */
static inline void *wl_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap shared"); exit(2); }
    return p;
}

/* State letter from /proc/PID/stat ('?' if unreadable). */
static inline char wl_proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return (p && p[1] == ' ') ? p[2] : '?';
}

static inline uint64_t wl_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

#endif
