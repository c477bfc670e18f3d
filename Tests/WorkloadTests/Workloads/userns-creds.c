/* userns-creds: the root enters a user namespace whose maps a helper writes from outside
 * (several extents each, setgroups allowed), then takes credentials inside: uids and gids
 * all different, supplementary groups, capability sets with an ambient one and a dropped
 * bounding capability, securebits. It holds a file opened inside at an offset and a pipe
 * with data queued, and counts in memory. After go everything must read as before. */
#include "workload.h"
#include "userns.h"
#include <sched.h>
#include <grp.h>
#include <sys/prctl.h>
#include <linux/capability.h>

static const char *uid_map = "0 0 1\n1 100001 999\n1000 1000 1\n1001 101001 2000\n";
static const char *gid_map = "0 0 1\n1 100001 999\n1000 2000 1\n1001 101001 2000\n";

/* Maps, setgroups, ids, groups, capability sets and securebits as the task sees them. */
static void state(char *out, size_t size)
{
    char status[4096], buf[512];
    size_t off = 0;
    slurp("/proc/self/status", status, sizeof status);
    const char *keys[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:" };
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *line = strstr(status, keys[i]);
        const char *end = line ? strchr(line, '\n') : NULL;
        if (line && end) off += snprintf(out + off, size - off, "%.*s|", (int)(end - line), line);
    }
    const char *files[] = { "/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups" };
    for (unsigned i = 0; i < 3; i++) {
        slurp(files[i], buf, sizeof buf);
        off += snprintf(out + off, size - off, "%s|", buf);
    }
    snprintf(out + off, size - off, "secbits %d", prctl(PR_GET_SECUREBITS));
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int go[2];
    if (pipe(go)) { perror("pipe"); return 2; }
    pid_t parent = getpid(), helper = fork();
    if (helper == 0) {
        /* From the parent namespace, as newuidmap would. */
        char c, path[64];
        if (read(go[0], &c, 1) != 1) _exit(1);
        snprintf(path, sizeof path, "/proc/%d/uid_map", parent);
        if (put(path, uid_map)) _exit(2);
        snprintf(path, sizeof path, "/proc/%d/gid_map", parent);
        _exit(put(path, gid_map) ? 3 : 0);
    }
    int st = 0;
    if (unshare(CLONE_NEWUSER) || write(go[1], "x", 1) != 1 || waitpid(helper, &st, 0) != helper || st != 0) {
        wl_fail("entering the user namespace: %s (helper status %d)", strerror(errno), st);
        wl_finish();
    }
    close(go[0]); close(go[1]);
    gid_t groups[] = { 10, 1000, 1500 };
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = { { 0 } };
    unsigned keep = 1u << CAP_CHOWN | 1u << CAP_DAC_OVERRIDE | 1u << CAP_SETUID | 1u << CAP_SETGID | 1u << CAP_NET_RAW | 1u << CAP_SETPCAP;
    d[0].effective = keep & ~(1u << CAP_SETPCAP);
    d[0].permitted = keep | 1u << CAP_KILL;
    d[0].inheritable = 1u << CAP_NET_RAW;
    if (setgroups(3, groups) || prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT)
        || prctl(PR_SET_SECUREBITS, 1 << 2 /* NO_SETUID_FIXUP */ | 1 << 4 /* KEEP_CAPS */)
        || setresgid(1000, 1001, 1500) || setresuid(1001, 0, 1000) || syscall(SYS_capset, &h, d)
        || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0)) {
        wl_fail("setting credentials: %s", strerror(errno));
        wl_finish();
    }
    int file = open("data", O_RDWR | O_CREAT | O_TRUNC, 0600), p[2];
    if (file < 0 || write(file, "inside the namespace", 20) != 20 || lseek(file, 7, SEEK_SET) != 7 || pipe(p)
        || write(p[1], "queued", 6) != 6) {
        wl_fail("files: %s", strerror(errno));
        wl_finish();
    }
    char before[4096], after[4096];
    state(before, sizeof before);
    volatile unsigned long counter = 0;
    wl_ready();
    while (!wl_go()) { counter++; wl_sleep_ms(1); }
    unsigned long seen = counter;
    state(after, sizeof after);
    char buf[32] = { 0 };
    if (strcmp(before, after)) wl_fail("credentials changed:\n%s\n%s", before, after);
    else if (read(file, buf, 6) != 6 || memcmp(buf, "the na", 6)) wl_fail("file offset/contents: '%s'", buf);
    else if (read(p[0], buf, 6) != 6 || memcmp(buf, "queued", 6)) wl_fail("pipe data: '%s'", buf);
    else if (seen == 0) wl_fail("the counter did not run");
    wl_finish();
}
