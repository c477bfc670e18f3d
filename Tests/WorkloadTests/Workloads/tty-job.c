/* A job on a terminal it does not own: started with stdin/stdout on a pty slave whose
 * master the test holds, it makes that terminal its session's controlling terminal and
 * answers every line it reads with "echo:<line>". After go: fd 0 is still a terminal and
 * it is the controlling terminal of this session. */
#include "workload.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (ioctl(0, TIOCSCTTY, 0) != 0) { perror("TIOCSCTTY"); return 2; }
    wl_ready();
    char line[256], out[300];
    while (!wl_go()) {
        struct pollfd p = { 0, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = read(0, line, sizeof line - 1);
        if (n <= 0) { wl_sleep_ms(50); continue; }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        line[n] = 0;
        int len = snprintf(out, sizeof out, "echo:%s\n", line);
        if (write(1, out, (size_t)len) != len) perror("write");
    }
    if (!isatty(0)) wl_fail("fd 0 is no terminal");
    else if (tcgetsid(0) != getpid()) wl_fail("the terminal's session is %d, want %d", tcgetsid(0), getpid());
    else {
        int ctty = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (ctty < 0) wl_fail("no controlling terminal (/dev/tty: %s)", strerror(errno));
        else close(ctty);
    }
    wl_finish();
}
