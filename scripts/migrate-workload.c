/* The container of `ocicheckpoint migrate`'s test and bench: one static process (the
 * container's init) that holds MIB MiB of memory, rewrites RATE MiB/s of it, serves TCP
 * clients on PORT, and measures its own downtime: the largest gap between two iterations
 * of its loop (CLOCK_REALTIME), which a move to another host shows as one long gap.
 *
 * Every page's contents follow from its index and how often it was rewritten (gen[]),
 * so CHECK verifies all of memory after a restore without a copy to compare with.
 *
 * Usage: migrate-workload MIB PORT RATE
 * Lines a client may send:  PING -> PONG N (N counts requests, across moves)
 *                           GAP  -> GAP MICROSECONDS      RESET -> RESET (gap to 0)
 *                           CHECK -> CHECK OK PAGES | CHECK BAD PAGE
 *                           anything else -> ECHO LINE
 */
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_CLIENTS 8

static uint8_t *mem;
static uint32_t *gen;
static size_t npages;

static void fill(size_t p)
{
    uint64_t *w = (uint64_t *)(mem + p * PAGE);
    uint64_t seed = (p * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)gen[p] << 32);
    for (int i = 0; i < PAGE / 8; i++)
        w[i] = seed + i;
}

static long check(void)
{
    for (size_t p = 0; p < npages; p++) {
        const uint64_t *w = (const uint64_t *)(mem + p * PAGE);
        uint64_t seed = (p * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)gen[p] << 32);
        for (int i = 0; i < PAGE / 8; i++)
            if (w[i] != seed + i)
                return (long)p;
    }
    return -1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct client { int fd; char line[256]; size_t len; };

static void reply(int fd, const char *text)
{
    send(fd, text, strlen(text), MSG_NOSIGNAL);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: %s MIB PORT RATE\n", argv[0]); return 2; }
    size_t mib = strtoul(argv[1], NULL, 10);
    int port = atoi(argv[2]);
    double rate = atof(argv[3]);
    npages = mib * 256;
    mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    gen = calloc(npages, sizeof(*gen));
    if (mem == MAP_FAILED || !gen) { perror("memory"); return 1; }
    for (size_t p = 0; p < npages; p++)
        fill(p);

    int lfd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4)) { perror("listen"); return 1; }

    struct client clients[MAX_CLIENTS];
    int nclients = 0;
    unsigned long requests = 0;
    size_t cursor = 0;
    double due = 0;
    int64_t last = now_us(), max_gap = 0;
    for (;;) {
        struct pollfd pfd[MAX_CLIENTS + 1] = { { .fd = lfd, .events = POLLIN } };
        for (int i = 0; i < nclients; i++)
            pfd[i + 1] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
        poll(pfd, nclients + 1, 1);

        int64_t t = now_us();
        if (t - last > max_gap)
            max_gap = t - last;
        /* After a long gap, catch up at most a tenth of a second of writes. */
        due += rate * 256 * (double)(t - last < 100000 ? t - last : 100000) / 1e6;
        last = t;
        for (; due >= 1; due -= 1) {
            gen[cursor]++;
            fill(cursor);
            cursor = (cursor + 1) % npages;
        }

        if ((pfd[0].revents & POLLIN) && nclients < MAX_CLIENTS) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0)
                clients[nclients++] = (struct client){ .fd = fd };
        }
        for (int i = nclients - 1; i >= 0; i--) {
            struct client *c = &clients[i];
            if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(c->fd, c->line + c->len, sizeof(c->line) - 1 - c->len, 0);
            if (n <= 0) {
                close(c->fd);
                clients[i] = clients[--nclients];
                continue;
            }
            c->len += n;
            char *nl;
            while ((nl = memchr(c->line, '\n', c->len))) {
                *nl = 0;
                char out[320];
                if (!strcmp(c->line, "PING")) {
                    snprintf(out, sizeof(out), "PONG %lu\n", ++requests);
                } else if (!strcmp(c->line, "GAP")) {
                    snprintf(out, sizeof(out), "GAP %lld\n", (long long)max_gap);
                } else if (!strcmp(c->line, "RESET")) {
                    max_gap = 0;
                    snprintf(out, sizeof(out), "RESET\n");
                } else if (!strcmp(c->line, "CHECK")) {
                    long bad = check();
                    if (bad < 0) snprintf(out, sizeof(out), "CHECK OK %zu\n", npages);
                    else snprintf(out, sizeof(out), "CHECK BAD %ld\n", bad);
                    /* The check's own time is not downtime. */
                    last = now_us();
                } else {
                    snprintf(out, sizeof(out), "ECHO %s\n", c->line);
                }
                reply(c->fd, out);
                size_t used = nl + 1 - c->line;
                memmove(c->line, nl + 1, c->len - used);
                c->len -= used;
            }
            if (c->len == sizeof(c->line) - 1)
                c->len = 0;
        }
    }
}
