/*
 * countgen: a fixed number of unpipelined get/set requests (90% get / 10% set, 16-byte
 * keys "key:" + 11 digits, 100-byte values starting with their key), for counting the
 * instructions a server spends per request under valgrind's callgrind (see
 * bench/counts/server-counts.sh). Wall-clock figures are bench/loadgen's job.
 *
 *   countgen PORT CONNS WARMUP COUNT VGPID seq|all
 *
 * Every key is set first (one at a time), then WARMUP requests, then (with VGPID > 0)
 * `callgrind_control -z VGPID`, COUNT requests, `callgrind_control -d VGPID`.
 * seq: one request in flight in all, the connections in turn (one server wake-up per
 * request). all: one request in flight on every connection at once (as the server
 * benchmark's unpipelined scenario). Replies are checked: a get must hit, a set be STORED.
 *
 * Build: cc -O2 -o countgen countgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEYS 10000
#define MAX_CONNS 256

static uint64_t rng = 42;
static int fds[MAX_CONNS];

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int set_request(char *b, uint32_t k) {
    char val[101];
    snprintf(val, sizeof val, "key:%011u", k);
    memset(val + 15, 'v', 85);
    val[100] = 0;
    return sprintf(b, "set key:%011u 0 0 100\r\n%s\r\n", k, val);
}

static int request(char *b, int *is_get) {
    uint32_t k = next() % KEYS;
    *is_get = next() % 10 != 0;
    return *is_get ? sprintf(b, "get key:%011u\r\n", k) : set_request(b, k);
}

static void send_all(int fd, const char *b, int len) {
    if (write(fd, b, len) != len) {
        perror("countgen: write");
        exit(1);
    }
}

/* Reads one whole reply: a hit ends in END, a set in STORED. */
static void reply(int fd, int is_get) {
    char buf[4096];
    int n = 0;
    for (;;) {
        int r = read(fd, buf + n, sizeof buf - n);
        if (r <= 0) {
            perror("countgen: read");
            exit(1);
        }
        n += r;
        if (n >= 5 && memcmp(buf + n - 5, is_get ? "END\r\n" : "RED\r\n", 5) == 0) {
            if (is_get && n < 100) {
                fprintf(stderr, "countgen: a get missed: %.*s\n", n, buf);
                exit(1);
            }
            return;
        }
        if (n == sizeof buf) {
            fprintf(stderr, "countgen: unexpected reply\n");
            exit(1);
        }
    }
}

static void run_seq(int conns, int count) {
    char b[512];
    int g;
    for (int i = 0; i < count; i++) {
        int fd = fds[i % conns];
        send_all(fd, b, request(b, &g));
        reply(fd, g);
    }
}

static void run_all(int conns, int count) {
    char b[512];
    int g[MAX_CONNS];
    struct pollfd p[MAX_CONNS];
    int sent = 0, done = 0;
    for (int c = 0; c < conns && sent < count; c++, sent++) send_all(fds[c], b, request(b, &g[c]));
    while (done < count) {
        for (int c = 0; c < conns; c++) p[c] = (struct pollfd){.fd = fds[c], .events = POLLIN};
        if (poll(p, conns, 60000) <= 0) {
            fprintf(stderr, "countgen: no reply in 60 s\n");
            exit(1);
        }
        for (int c = 0; c < conns; c++) {
            if (!p[c].revents) continue;
            reply(fds[c], g[c]);
            done++;
            if (sent < count) {
                send_all(fds[c], b, request(b, &g[c]));
                sent++;
            }
        }
    }
}

static void callgrind(const char *op, int pid) {
    char cmd[128];
    if (pid <= 0) return;
    snprintf(cmd, sizeof cmd, "callgrind_control %s %d >/dev/null", op, pid);
    if (system(cmd) != 0) {
        fprintf(stderr, "countgen: %s failed\n", cmd);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: countgen PORT CONNS WARMUP COUNT VGPID seq|all\n");
        return 2;
    }
    int port = atoi(argv[1]), conns = atoi(argv[2]), warm = atoi(argv[3]), count = atoi(argv[4]);
    int pid = atoi(argv[5]), all = strcmp(argv[6], "all") == 0;
    if (conns < 1 || conns > MAX_CONNS || warm < 0 || count < 1) {
        fprintf(stderr, "countgen: CONNS 1..%d, WARMUP >= 0, COUNT >= 1\n", MAX_CONNS);
        return 2;
    }
    alarm(3600); /* bounded, whatever the server does */
    for (int c = 0; c < conns; c++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        fds[c] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fds[c], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fds[c], (struct sockaddr *)&a, sizeof a) != 0) {
            perror("countgen: connect");
            return 1;
        }
    }
    char b[512];
    for (uint32_t k = 0; k < KEYS; k++) {
        send_all(fds[0], b, set_request(b, k));
        reply(fds[0], 0);
    }
    (all ? run_all : run_seq)(conns, warm);
    callgrind("-z", pid);
    (all ? run_all : run_seq)(conns, count);
    callgrind("-d", pid);
    printf("countgen: %d requests\n", count);
    return 0;
}
