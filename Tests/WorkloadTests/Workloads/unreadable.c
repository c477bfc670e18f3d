/* unreadable: areas a plain read of another process's memory cannot read, which a dump
 * must still carry: a PROT_NONE area holding data, guard pages (MADV_GUARD_INSTALL) in
 * the middle of data, a shared file mapping that runs past its file's end (SIGBUS there)
 * on a file whose size is no page multiple, and a closed memfd of 5000 bytes mapped
 * shared over two pages. After go: the same contents, protections and faults.
 * argv[2] "grown-shared": also a MAP_SHARED anonymous mapping grown by mremap past its
 * object's end (SIGBUS there), which the dump must refuse. */
#include "workload.h"
#include <setjmp.h>

#define PAGE 4096UL
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static sigjmp_buf jump;
static volatile int got;
static void on_fault(int sig) { got = sig; siglongjmp(jump, 1); }

/* The signal reading *p raises, 0 if none. */
static int fault_of(volatile char *p)
{
    struct sigaction sa = { .sa_handler = on_fault }, old_bus, old_segv;
    sigaction(SIGBUS, &sa, &old_bus);
    sigaction(SIGSEGV, &sa, &old_segv);
    got = 0;
    if (sigsetjmp(jump, 1) == 0) (void)*p;
    sigaction(SIGBUS, &old_bus, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    return got;
}

static int has_guards;

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    /* PROT_NONE with data */
    char *none = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 8; i++) memset(none + i * PAGE, 'A' + i, PAGE);
    mprotect(none, 8 * PAGE, PROT_NONE);
    /* guard pages 2 and 5 in 8 pages of data */
    char *guarded = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 8; i++) memset(guarded + i * PAGE, 'a' + i, PAGE);
    has_guards = madvise(guarded + 2 * PAGE, PAGE, MADV_GUARD_INSTALL) == 0 && madvise(guarded + 5 * PAGE, PAGE, MADV_GUARD_INSTALL) == 0;
    if (!has_guards) { perror("MADV_GUARD_INSTALL (Linux 6.13+)"); return 2; }
    /* a shared mapping of 4 pages over a file of 1.5 pages */
    int fd = open("short", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, PAGE + PAGE / 2) != 0) { perror("short file"); return 2; }
    char *past = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (past == MAP_FAILED) { perror("mmap short"); return 2; }
    memset(past, 'F', PAGE + PAGE / 2);
    /* a closed memfd of 5000 bytes, mapped shared over two pages */
    int mfd = memfd_create("odd-size", 0);
    if (mfd < 0 || ftruncate(mfd, 5000) != 0) { perror("memfd"); return 2; }
    char *odd = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    close(mfd);
    if (odd == MAP_FAILED) { perror("mmap memfd"); return 2; }
    memset(odd, 'M', 5000);
    char *grown = NULL;
    if (argc > 2 && strcmp(argv[2], "grown-shared") == 0) {
        grown = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        grown[0] = 'G';
        grown = mremap(grown, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED) { perror("mremap"); return 2; }
    }
    wl_ready();
    wl_wait_go();

    if (fault_of(none) != SIGSEGV) wl_fail("PROT_NONE area readable");
    if (mprotect(none, 8 * PAGE, PROT_READ) != 0) wl_fail("mprotect: %s", strerror(errno));
    for (int i = 0; i < 8; i++)
        if (none[i * PAGE] != 'A' + i || none[i * PAGE + PAGE - 1] != 'A' + i) { wl_fail("PROT_NONE area page %d: %c", i, none[i * PAGE]); break; }
    for (int i = 0; i < 8; i++) {
        int guard = has_guards && (i == 2 || i == 5);
        int sig = fault_of(guarded + i * PAGE);
        if (guard && sig != SIGSEGV) { wl_fail("guard page %d: signal %d, want SIGSEGV", i, sig); break; }
        if (!guard && (sig || guarded[i * PAGE] != 'a' + i)) { wl_fail("guarded area page %d: signal %d, '%c'", i, sig, sig ? '?' : guarded[i * PAGE]); break; }
    }
    if (past[0] != 'F' || past[PAGE + PAGE / 2 - 1] != 'F' || past[PAGE + PAGE / 2] != 0) wl_fail("short file mapping contents");
    if (fault_of(past + 2 * PAGE) != SIGBUS) wl_fail("short file mapping past the end: no SIGBUS");
    for (int i = 0; i < 5000; i++) if (odd[i] != 'M') { wl_fail("memfd byte %d: %d", i, odd[i]); break; }
    if (odd[5000] != 0) wl_fail("memfd past its size: %d", odd[5000]);
    if (fault_of(odd + PAGE + 1000) != 0) wl_fail("memfd's last page faults");
    if (grown && (grown[0] != 'G' || fault_of(grown + 3 * PAGE) != SIGBUS)) wl_fail("grown shared mapping: no SIGBUS past its object");
    wl_finish();
}
