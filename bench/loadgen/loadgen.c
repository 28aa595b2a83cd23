/*
 * loadgen: closed-loop, pipelining load generator for memcached-protocol
 * servers (classic text get/set or meta mg/ms), used by bench/server.ts.
 *
 * Each connection keeps up to `depth` requests in flight. Requests go into a
 * per-connection write buffer and leave in one send() per event-loop turn;
 * replies are parsed in order and matched to the request at the head of the
 * connection's in-flight ring, so every count it prints is a verified reply:
 * a GET hit must carry the right key (text) and a value of the right length
 * that starts with that key; anything the protocol does not allow for that
 * request is an "unexpected" reply, kept as a sample and printed at the end.
 *
 * Latency is send -> last byte of the reply, per request. ops/s counts the
 * replies that complete inside the measured window (after warm-up).
 * Every run is bounded: by --duration, a drain deadline, and a hard alarm.
 *
 * Build: cc -O2 -o loadgen loadgen.c -lpthread      Usage: loadgen --help
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum proto { PROTO_TEXT, PROTO_META };
enum op { OP_GET, OP_SET };
enum mode { MODE_PRELOAD, MODE_MIX };

struct options {
    const char *host;
    const char *port;
    int conns;
    int depth;
    int threads;
    double get_ratio;
    uint32_t keys;
    int key_size;
    int value_size;
    double duration;
    double warmup;
    double drain;      /* seconds to wait for in-flight replies after the window */
    double timeout;    /* hard limit on the whole process */
    bool preload;
    bool check_stats;
    bool json_only;
    enum proto proto;
    uint64_t seed;
    int server_pid;    /* when set, report that process's CPU use over the window */
};

static struct options opt = {
    .host = "127.0.0.1", .port = "11211", .conns = 50, .depth = 1, .threads = 1,
    .get_ratio = 0.9, .keys = 100000, .key_size = 16, .value_size = 100,
    .duration = 10, .warmup = 1, .drain = 5, .timeout = 0, .preload = false,
    .check_stats = true, .json_only = false, .proto = PROTO_TEXT, .seed = 42, .server_pid = 0,
};

static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram ---------------------------------------------------
 * 1 us buckets up to 64 ms (exact enough for p50 at tens of microseconds),
 * then 1 ms buckets up to 10 s; anything slower lands in the last bucket. */
#define FINE_BUCKETS 65536u
#define COARSE_BUCKETS 10000u

struct histogram {
    uint64_t fine[FINE_BUCKETS];
    uint64_t coarse[COARSE_BUCKETS];
    uint64_t count, max_ns, sum_ns;
};

static void hist_record(struct histogram *h, uint64_t ns) {
    uint64_t us = ns / 1000;
    if (us < FINE_BUCKETS) {
        h->fine[us]++;
    } else {
        uint64_t ms = us / 1000;
        h->coarse[ms < COARSE_BUCKETS ? ms : COARSE_BUCKETS - 1]++;
    }
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns) h->max_ns = ns;
}

static void hist_add(struct histogram *into, const struct histogram *from) {
    for (unsigned i = 0; i < FINE_BUCKETS; i++) into->fine[i] += from->fine[i];
    for (unsigned i = 0; i < COARSE_BUCKETS; i++) into->coarse[i] += from->coarse[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

/* The value (in microseconds) below which `pct` percent of samples fall;
 * reported as the bucket's midpoint, capped by the true maximum. */
static double hist_percentile(const struct histogram *h, double pct) {
    if (h->count == 0) return 0;
    uint64_t rank = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999);
    if (rank == 0) rank = 1;
    double max_us = (double)h->max_ns / 1000.0, v = max_us;
    uint64_t seen = 0;
    for (unsigned i = 0; i < FINE_BUCKETS; i++) {
        seen += h->fine[i];
        if (seen >= rank) { v = i + 0.5; goto done; }
    }
    for (unsigned i = 0; i < COARSE_BUCKETS; i++) {
        seen += h->coarse[i];
        if (seen >= rank) { v = i * 1000.0 + 500.0; goto done; }
    }
done:
    return v < max_us ? v : max_us;
}

/* ---- keys and values ------------------------------------------------------
 * Key i is 'k' followed by i zero-padded to key_size-1 digits. A value is the
 * key followed by a fixed filler, so a GET can check it got its own key's
 * value back. */
static char *g_filler;

static void write_key(char *dst, uint32_t key) {
    dst[0] = 'k';
    for (int i = opt.key_size - 1; i >= 1; i--) {
        dst[i] = (char)('0' + key % 10);
        key /= 10;
    }
}

/* ---- per-connection state ------------------------------------------------- */
struct inflight {
    uint64_t sent_ns;
    uint32_t key;
    uint8_t op;
};

enum rx_state { RX_HEADER, RX_VALUE, RX_END };

#define SAMPLE_LEN 120
#define MAX_PROBLEMS 5

struct counters {
    uint64_t gets, hits, misses, sets, stored, not_stored;
    uint64_t server_errors;   /* ERROR / CLIENT_ERROR / SERVER_ERROR lines */
    uint64_t bad_values;      /* a hit whose key or value is not the one asked for */
    uint64_t unexpected;      /* replies the protocol does not allow here */
    uint64_t abandoned;       /* in flight on a connection that died or never answered */
    uint64_t window_ops, window_gets, window_sets;
};

struct worker;

struct conn {
    int fd;
    bool dead, want_out;
    struct worker *w;
    struct inflight *ring;       /* capacity = depth */
    uint32_t head, count, unstamped;
    char *wbuf;
    size_t wlen, wsent, wcap;
    char *rbuf;
    size_t rstart, rend, rcap;
    enum rx_state rx;
    size_t value_len;            /* for RX_VALUE: declared value length */
};

struct worker {
    int id, epfd;
    struct conn *conns;
    int nconns;
    enum mode mode;
    uint64_t rng;
    uint32_t next_key, end_key;  /* preload: this worker's key range */
    uint64_t window_start, window_end, deadline;
    struct counters c;
    struct histogram *lat;
    char problems[MAX_PROBLEMS][SAMPLE_LEN];   /* the first few things that went wrong */
    int nproblems;
};

/* Keeps a description of what went wrong, for the report at the end. */
static void note_problem(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_problem(struct worker *w, const char *fmt, ...) {
    if (w->nproblems == MAX_PROBLEMS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->problems[w->nproblems++], SAMPLE_LEN, fmt, ap);
    va_end(ap);
}

static uint64_t rng_next(uint64_t *s) {   /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void wbuf_reserve(struct conn *c, size_t n) {
    if (c->wlen + n <= c->wcap) return;
    while (c->wlen + n > c->wcap) c->wcap *= 2;
    c->wbuf = realloc(c->wbuf, c->wcap);
    if (!c->wbuf) fatal("out of memory");
}

static void append_request(struct conn *c, enum op op, uint32_t key) {
    size_t ks = (size_t)opt.key_size, vs = (size_t)opt.value_size;
    wbuf_reserve(c, ks + vs + 64);
    char *p = c->wbuf + c->wlen;
    if (op == OP_GET) {
        if (opt.proto == PROTO_META) { memcpy(p, "mg ", 3); p += 3; }
        else { memcpy(p, "get ", 4); p += 4; }
        write_key(p, key);
        p += ks;
        if (opt.proto == PROTO_META) { memcpy(p, " v\r\n", 4); p += 4; }
        else { memcpy(p, "\r\n", 2); p += 2; }
    } else {
        if (opt.proto == PROTO_META) { memcpy(p, "ms ", 3); p += 3; }
        else { memcpy(p, "set ", 4); p += 4; }
        write_key(p, key);
        p += ks;
        p += sprintf(p, opt.proto == PROTO_META ? " %d\r\n" : " 0 0 %d\r\n", opt.value_size);
        memcpy(p, g_filler, vs);
        write_key(p, key);          /* value_size >= key_size is checked at start-up */
        p += vs;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    c->wlen = (size_t)(p - c->wbuf);
    struct inflight *f = &c->ring[(c->head + c->count) % (uint32_t)opt.depth];
    f->op = (uint8_t)op;
    f->key = key;
    f->sent_ns = 0;
    c->count++;
    c->unstamped++;
}

/* Top the pipeline up to `depth`, as long as the run is still issuing. */
static void refill(struct conn *c, uint64_t now) {
    struct worker *w = c->w;
    if (c->dead) return;
    while (c->count < (uint32_t)opt.depth) {
        if (w->mode == MODE_PRELOAD) {
            if (w->next_key >= w->end_key) return;
            append_request(c, OP_SET, w->next_key++);
        } else {
            if (now >= w->window_end) return;
            uint64_t r = rng_next(&w->rng);
            uint32_t key = (uint32_t)((r >> 32) % opt.keys);
            double u = (double)(r & 0xffffffffu) / 4294967296.0;
            append_request(c, u < opt.get_ratio ? OP_GET : OP_SET, key);
        }
    }
}

static void set_want_out(struct conn *c, bool on) {
    if (c->want_out == on) return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void kill_conn(struct conn *c, const char *why) {
    struct worker *w = c->w;
    if (c->dead) return;
    if (why) note_problem(w, "%s", why);
    w->c.abandoned += c->count;
    c->count = 0;
    c->dead = true;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void flush(struct conn *c) {
    if (c->dead || c->wsent == c->wlen) return;
    if (c->unstamped) {
        /* the requests just appended leave now: stamp them with one clock read */
        uint64_t now = clock_ns();
        uint32_t d = (uint32_t)opt.depth;
        for (uint32_t i = c->count - c->unstamped; i < c->count; i++)
            c->ring[(c->head + i) % d].sent_ns = now;
        c->unstamped = 0;
    }
    while (c->wsent < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->wsent, c->wlen - c->wsent, MSG_NOSIGNAL);
        if (n > 0) { c->wsent += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { set_want_out(c, true); return; }
        char why[SAMPLE_LEN];
        snprintf(why, sizeof why, "send: %s", n < 0 ? strerror(errno) : "connection closed");
        kill_conn(c, why);
        return;
    }
    c->wlen = c->wsent = 0;
    set_want_out(c, false);
}

/* ---- reply parsing -------------------------------------------------------- */

static void complete(struct conn *c, uint64_t now) {
    struct worker *w = c->w;
    struct inflight *f = &c->ring[c->head];
    if (now >= w->window_start && now < w->window_end) {
        w->c.window_ops++;
        if (f->op == OP_GET) w->c.window_gets++; else w->c.window_sets++;
        hist_record(w->lat, now > f->sent_ns ? now - f->sent_ns : 0);
    }
    c->head = (c->head + 1) % (uint32_t)opt.depth;
    c->count--;
}

static bool line_is(const char *line, size_t len, const char *word) {
    size_t wl = strlen(word);
    return len == wl && memcmp(line, word, wl) == 0;
}

static bool line_starts(const char *line, size_t len, const char *word) {
    size_t wl = strlen(word);
    return len >= wl && memcmp(line, word, wl) == 0;
}

static bool is_error_line(const char *line, size_t len) {
    return line_is(line, len, "ERROR") || line_starts(line, len, "CLIENT_ERROR ") ||
           line_starts(line, len, "SERVER_ERROR ");
}

static void unexpected(struct conn *c, const char *what, const char *line, size_t len) {
    char why[SAMPLE_LEN];
    snprintf(why, sizeof why, "%s: \"%.*s\"", what, (int)(len > 60 ? 60 : len), line);
    c->w->c.unexpected++;
    /* this request is accounted for; the ones behind it go to "unanswered" */
    if (c->count) {
        c->head = (c->head + 1) % (uint32_t)opt.depth;
        c->count--;
    }
    /* the reply stream cannot be re-synchronised after this: drop the connection */
    kill_conn(c, why);
}

/* Parse a decimal number that ends at a space or the end of the line. */
static bool parse_len(const char *p, const char *end, size_t *out, const char **after) {
    size_t v = 0;
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (size_t)(*p++ - '0');
    if (p == s || (p < end && *p != ' ')) return false;
    *out = v;
    if (after) *after = p;
    return true;
}

/* Handle one reply line for the request at the head of the ring.
 * Returns false if the connection was dropped. */
static bool on_header(struct conn *c, const char *line, size_t len, uint64_t now) {
    struct worker *w = c->w;
    struct inflight *f = &c->ring[c->head];
    const char *end = line + len;
    if (c->rx == RX_END) {
        if (!line_is(line, len, "END")) { unexpected(c, "expected END after value", line, len); return false; }
        c->rx = RX_HEADER;
        w->c.hits++;
        complete(c, now);
        return true;
    }
    if (is_error_line(line, len)) {
        w->c.server_errors++;
        if (f->op == OP_GET) w->c.gets++; else w->c.sets++;
        note_problem(w, "server error: \"%.*s\"", (int)(len > 60 ? 60 : len), line);
        complete(c, now);
        return true;
    }
    if (f->op == OP_SET) {
        bool meta = opt.proto == PROTO_META;
        w->c.sets++;
        if (line_is(line, len, meta ? "HD" : "STORED")) w->c.stored++;
        else if (meta ? (line_is(line, len, "NS") || line_is(line, len, "EX") || line_is(line, len, "NF"))
                      : (line_is(line, len, "NOT_STORED") || line_is(line, len, "EXISTS") ||
                         line_is(line, len, "NOT_FOUND")))
            w->c.not_stored++;
        else { w->c.sets--; unexpected(c, "unexpected reply to a set", line, len); return false; }
        complete(c, now);
        return true;
    }
    /* GET */
    size_t vlen;
    if (opt.proto == PROTO_META) {
        if (line_is(line, len, "EN")) {
            w->c.gets++;
            w->c.misses++;
            complete(c, now);
            return true;
        }
        if (!line_starts(line, len, "VA ") || !parse_len(line + 3, end, &vlen, NULL)) {
            unexpected(c, "unexpected reply to mg", line, len);
            return false;
        }
    } else {
        if (line_is(line, len, "END")) {
            w->c.gets++;
            w->c.misses++;
            complete(c, now);
            return true;
        }
        /* VALUE <key> <flags> <bytes> */
        size_t ks = (size_t)opt.key_size, flags;
        char key[256];
        const char *p = line + 6, *after;
        write_key(key, f->key);
        if (!line_starts(line, len, "VALUE ") || (size_t)(end - p) < ks + 1 || memcmp(p, key, ks) != 0 ||
            p[ks] != ' ' || !parse_len(p + ks + 1, end, &flags, &after) || after >= end ||
            !parse_len(after + 1, end, &vlen, &after)) {
            unexpected(c, "unexpected reply to get", line, len);
            return false;
        }
    }
    w->c.gets++;
    c->value_len = vlen;
    c->rx = RX_VALUE;
    size_t need = vlen + 2 + 64;
    if (need > c->rcap / 2) {    /* keep room for a whole value plus the lines around it */
        while (need > c->rcap / 2) c->rcap *= 2;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (!c->rbuf) fatal("out of memory");
    }
    return true;
}

static void parse(struct conn *c, uint64_t now) {
    while (!c->dead && c->rstart < c->rend) {
        char *p = c->rbuf + c->rstart;
        size_t avail = c->rend - c->rstart;
        if (c->count == 0) { unexpected(c, "reply with no request in flight", p, avail); return; }
        if (c->rx == RX_VALUE) {
            size_t vlen = c->value_len;
            if (avail < vlen + 2) return;
            struct inflight *f = &c->ring[c->head];
            char key[256];
            write_key(key, f->key);
            if (vlen != (size_t)opt.value_size || memcmp(p, key, (size_t)opt.key_size) != 0) {
                c->w->c.bad_values++;
                note_problem(c->w, "wrong value for %.*s: %zu bytes \"%.*s...\"", opt.key_size, key, vlen,
                             (int)(vlen < 24 ? vlen : 24), p);
            }
            if (p[vlen] != '\r' || p[vlen + 1] != '\n') { unexpected(c, "value not followed by CRLF", p, vlen + 2); return; }
            c->rstart += vlen + 2;
            if (opt.proto == PROTO_META) {
                c->rx = RX_HEADER;
                c->w->c.hits++;
                complete(c, now);
            } else {
                c->rx = RX_END;
            }
            continue;
        }
        char *nl = memchr(p, '\n', avail);
        if (!nl) {
            if (avail > 1024) unexpected(c, "reply line longer than 1 KiB", p, avail);
            return;
        }
        size_t len = (size_t)(nl - p);
        if (len == 0 || p[len - 1] != '\r') { unexpected(c, "line not ended by CRLF", p, len); return; }
        c->rstart += len + 1;
        if (!on_header(c, p, len - 1, now)) return;
    }
}

static void on_readable(struct conn *c) {
    for (;;) {
        if (c->rstart == c->rend) c->rstart = c->rend = 0;
        else if (c->rend == c->rcap || c->rstart > c->rcap / 2) {
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
        }
        if (c->rend == c->rcap) {   /* still full after compaction: one reply is bigger than the buffer */
            c->rcap *= 2;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) fatal("out of memory");
        }
        size_t room = c->rcap - c->rend;
        ssize_t n = recv(c->fd, c->rbuf + c->rend, room, 0);
        if (n > 0) {
            c->rend += (size_t)n;
            parse(c, clock_ns());
            /* a short read means the socket is drained: skip the EAGAIN round trip */
            if ((size_t)n < room || c->dead) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        char why[SAMPLE_LEN];
        snprintf(why, sizeof why, "recv: %s with %u requests in flight", n < 0 ? strerror(errno) : "server closed the connection", c->count);
        kill_conn(c, why);
        return;
    }
}

static void *worker_run(void *arg) {
    struct worker *w = arg;
    uint64_t now = clock_ns();
    for (int i = 0; i < w->nconns; i++) {
        refill(&w->conns[i], now);
        flush(&w->conns[i]);
    }
    struct epoll_event evs[128];
    for (;;) {
        int n = epoll_wait(w->epfd, evs, 128, 20);
        if (n < 0 && errno != EINTR) fatal("epoll_wait: %s", strerror(errno));
        now = clock_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
            if (c->dead) continue;
            refill(c, now);
            flush(c);
        }
        uint64_t in_flight = 0;
        for (int i = 0; i < w->nconns; i++) in_flight += w->conns[i].count;
        if (in_flight == 0) {
            if (w->mode == MODE_PRELOAD) {
                bool more = false;   /* all dead connections: nothing more can be sent */
                for (int i = 0; i < w->nconns && !more; i++) more = !w->conns[i].dead;
                if (!more || w->next_key >= w->end_key) break;
            } else if (now >= w->window_end) {
                break;
            }
        }
        if (now >= w->deadline) {
            for (int i = 0; i < w->nconns; i++)
                if (w->conns[i].count) kill_conn(&w->conns[i], "no reply before the drain deadline");
            break;
        }
    }
    return NULL;
}

/* ---- server "stats" (cross-check of the counters) ------------------------ */
struct server_stats { bool ok; long long cmd_get, get_hits, get_misses, cmd_set, curr_items; };

static int dial(bool nonblocking) {
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc) fatal("cannot resolve %s:%s: %s", opt.host, opt.port, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nonblocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static struct server_stats fetch_stats_once(void) {
    struct server_stats s = { .ok = false };
    int fd = dial(false);
    if (fd < 0) return s;
    struct timeval tv = { .tv_sec = 3 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    size_t len = 0;
    if (send(fd, "stats\r\n", 7, MSG_NOSIGNAL) == 7) {
        while (len < sizeof buf - 1) {
            ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0) break;
            len += (size_t)n;
            buf[len] = 0;
            if (strstr(buf, "END\r\n") || strstr(buf, "ERROR")) break;
        }
    }
    close(fd);
    buf[len] = 0;
    if (!strstr(buf, "END\r\n")) return s;
    int found = 0;
    for (char *line = buf; line && *line; ) {
        char *next = strstr(line, "\r\n");
        if (next) *next = 0;
        char name[64];
        long long v;
        if (sscanf(line, "STAT %63s %lld", name, &v) == 2) {
            if (!strcmp(name, "cmd_get")) { s.cmd_get = v; found++; }
            else if (!strcmp(name, "get_hits")) { s.get_hits = v; found++; }
            else if (!strcmp(name, "get_misses")) { s.get_misses = v; found++; }
            else if (!strcmp(name, "cmd_set")) { s.cmd_set = v; found++; }
            else if (!strcmp(name, "curr_items")) { s.curr_items = v; found++; }
        }
        line = next ? next + 2 : NULL;
    }
    s.ok = found == 5;
    return s;
}

/* A few attempts: one slow answer on a loaded machine should not void the cross-check. */
static struct server_stats fetch_stats(void) {
    struct server_stats s = fetch_stats_once();
    for (int i = 0; i < 2 && !s.ok; i++) {
        struct timespec pause = { .tv_sec = 0, .tv_nsec = 200000000 };
        nanosleep(&pause, NULL);
        s = fetch_stats_once();
    }
    return s;
}

/* ---- server CPU over the measured window ------------------------------------
 * Read from /proc so the figure covers exactly the window, not start-up or drain:
 * it tells whether the server (and not this generator) was the bottleneck. */
#define MAX_CORES 64

struct cpu_sampler {
    uint64_t from, to;
    double pct;                  /* the server's CPU use, percent of one core */
    double self_pct;             /* this generator's, over the same window */
    int ncores;
    double core_busy[MAX_CORES]; /* every core's busy share, whoever used it: shows contention */
};

struct core_ticks { unsigned long long busy, total; };

static int read_core_ticks(struct core_ticks *out) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_CORES) {
        unsigned long long v[8] = { 0 };
        int id;
        if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9') continue;
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]) < 5)
            continue;
        unsigned long long total = 0;
        for (int i = 0; i < 8; i++) total += v[i];
        out[n].total = total;
        /* everything but idle and iowait: includes softirq, part of which is the kernel's
         * packet processing for this very traffic rather than another process */
        out[n].busy = total - v[3] - v[4];
        n++;
    }
    fclose(f);
    return n;
}

static double cpu_seconds(void);

static double proc_cpu_seconds(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the command name may contain spaces */
    unsigned long long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void sleep_until(uint64_t t) {
    uint64_t now = clock_ns();
    if (t <= now) return;
    struct timespec ts = { .tv_sec = (time_t)((t - now) / 1000000000u), .tv_nsec = (long)((t - now) % 1000000000u) };
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static void *cpu_sampler_run(void *arg) {
    struct cpu_sampler *s = arg;
    struct core_ticks k0[MAX_CORES], k1[MAX_CORES];
    sleep_until(s->from);
    double c0 = opt.server_pid > 0 ? proc_cpu_seconds(opt.server_pid) : -1;
    double s0 = cpu_seconds();
    int n0 = read_core_ticks(k0);
    uint64_t t0 = clock_ns();
    sleep_until(s->to);
    double c1 = opt.server_pid > 0 ? proc_cpu_seconds(opt.server_pid) : -1;
    double s1 = cpu_seconds();
    int n1 = read_core_ticks(k1);
    uint64_t t1 = clock_ns();
    s->self_pct = t1 > t0 ? (s1 - s0) / ((double)(t1 - t0) / 1e9) * 100 : -1;
    s->pct = c0 < 0 || c1 < 0 || t1 <= t0 ? -1 : (c1 - c0) / ((double)(t1 - t0) / 1e9) * 100;
    s->ncores = n0 == n1 ? n0 : 0;
    for (int i = 0; i < s->ncores; i++) {
        unsigned long long dt = k1[i].total - k0[i].total;
        s->core_busy[i] = dt ? (double)(k1[i].busy - k0[i].busy) / (double)dt * 100 : 0;
    }
    return NULL;
}

/* ---- driver ---------------------------------------------------------------- */

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "loadgen: hard timeout: the server stopped answering; aborting\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(3);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Run every worker in `mode` to completion and merge their counters. */
static void run_workers(struct worker *ws, enum mode mode, struct counters *sum, struct histogram *lat,
                        struct cpu_sampler *server_cpu) {
    pthread_t *tids = calloc((size_t)opt.threads, sizeof *tids);
    uint64_t start = clock_ns();
    uint64_t wstart = start + (uint64_t)(opt.warmup * 1e9);
    uint64_t wend = wstart + (uint64_t)(opt.duration * 1e9);
    /* preloading is bounded by the hard alarm only; the mix by its window + drain */
    uint64_t deadline = mode == MODE_PRELOAD ? UINT64_MAX : wend + (uint64_t)(opt.drain * 1e9);
    uint32_t per = opt.keys / (uint32_t)opt.threads, extra = opt.keys % (uint32_t)opt.threads, key = 0;
    for (int i = 0; i < opt.threads; i++) {
        struct worker *w = &ws[i];
        w->mode = mode;
        w->next_key = key;
        key += per + ((uint32_t)i < extra);
        w->end_key = key;
        w->window_start = mode == MODE_PRELOAD ? 0 : wstart;
        w->window_end = mode == MODE_PRELOAD ? UINT64_MAX : wend;
        w->deadline = deadline;
        memset(&w->c, 0, sizeof w->c);
        memset(w->lat, 0, sizeof *w->lat);
        if (pthread_create(&tids[i], NULL, worker_run, w)) fatal("pthread_create failed");
    }
    pthread_t sampler;
    bool sampling = false;
    if (server_cpu) {
        server_cpu->from = wstart;
        server_cpu->to = wend;
        sampling = pthread_create(&sampler, NULL, cpu_sampler_run, server_cpu) == 0;
    }
    memset(sum, 0, sizeof *sum);
    memset(lat, 0, sizeof *lat);
    if (sampling) pthread_join(sampler, NULL);
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(tids[i], NULL);
        struct counters *c = &ws[i].c;
        sum->gets += c->gets; sum->hits += c->hits; sum->misses += c->misses;
        sum->sets += c->sets; sum->stored += c->stored; sum->not_stored += c->not_stored;
        sum->server_errors += c->server_errors; sum->bad_values += c->bad_values;
        sum->unexpected += c->unexpected; sum->abandoned += c->abandoned;
        sum->window_ops += c->window_ops; sum->window_gets += c->window_gets; sum->window_sets += c->window_sets;
        hist_add(lat, ws[i].lat);
    }
    free(tids);
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: loadgen [options]\n"
        "  -s, --server HOST:PORT   target (default 127.0.0.1:11211)\n"
        "  -P, --proto text|meta    get/set or mg/ms (default text)\n"
        "  -c, --conns N            connections (default 50)\n"
        "  -d, --depth N            requests in flight per connection (default 1)\n"
        "  -r, --get-ratio R        share of gets, 0..1; the rest are sets (default 0.9)\n"
        "  -k, --keys N             distinct keys, uniformly chosen (default 100000)\n"
        "  -K, --key-size N         key length in bytes (default 16)\n"
        "  -v, --value-size N       value length in bytes (default 100)\n"
        "  -t, --duration SEC       measured window; 0 = preload only (default 10)\n"
        "  -w, --warmup SEC         load before the window that is not measured (default 1)\n"
        "  -T, --threads N          client threads, connections split among them (default 1)\n"
        "  -L, --preload            set every key once (pipelined) before the run\n"
        "  -S, --no-stats           skip the cross-check against the server's 'stats'\n"
        "      --seed N             rng seed (default 42)\n"
        "      --timeout SEC        hard limit on the whole process (default: run + 120)\n"
        "      --server-pid PID     also report that process's CPU use during the window\n"
        "  -j, --json               print only the JSON line\n"
        "Output: a summary and one line 'JSON {...}'. Exit 0 if every reply was as\n"
        "expected, 1 if not, 2 on usage errors, 3 on the hard timeout.\n");
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        { "server", required_argument, 0, 's' }, { "proto", required_argument, 0, 'P' },
        { "conns", required_argument, 0, 'c' }, { "depth", required_argument, 0, 'd' },
        { "get-ratio", required_argument, 0, 'r' }, { "keys", required_argument, 0, 'k' },
        { "key-size", required_argument, 0, 'K' }, { "value-size", required_argument, 0, 'v' },
        { "duration", required_argument, 0, 't' }, { "warmup", required_argument, 0, 'w' },
        { "threads", required_argument, 0, 'T' }, { "preload", no_argument, 0, 'L' },
        { "no-stats", no_argument, 0, 'S' }, { "seed", required_argument, 0, 1 },
        { "timeout", required_argument, 0, 2 }, { "server-pid", required_argument, 0, 3 }, { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    static char hostbuf[256], portbuf[32];
    int ch;
    while ((ch = getopt_long(argc, argv, "s:P:c:d:r:k:K:v:t:w:T:LSjh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            const char *colon = strrchr(optarg, ':');
            if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof hostbuf) fatal("--server wants HOST:PORT");
            memcpy(hostbuf, optarg, (size_t)(colon - optarg));
            snprintf(portbuf, sizeof portbuf, "%s", colon + 1);
            opt.host = hostbuf;
            opt.port = portbuf;
            break;
        }
        case 'P':
            if (!strcmp(optarg, "text")) opt.proto = PROTO_TEXT;
            else if (!strcmp(optarg, "meta")) opt.proto = PROTO_META;
            else fatal("--proto wants text or meta");
            break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'd': opt.depth = atoi(optarg); break;
        case 'r': opt.get_ratio = atof(optarg); break;
        case 'k': opt.keys = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'K': opt.key_size = atoi(optarg); break;
        case 'v': opt.value_size = atoi(optarg); break;
        case 't': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'T': opt.threads = atoi(optarg); break;
        case 'L': opt.preload = true; break;
        case 'S': opt.check_stats = false; break;
        case 1: opt.seed = strtoull(optarg, NULL, 10); break;
        case 2: opt.timeout = atof(optarg); break;
        case 3: opt.server_pid = atoi(optarg); break;
        case 'j': opt.json_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) { usage(stderr); return 2; }
    if (opt.conns < 1 || opt.depth < 1 || opt.threads < 1 || opt.keys < 1) fatal("--conns, --depth, --threads and --keys must be >= 1");
    if (opt.threads > opt.conns) opt.threads = opt.conns;
    if (opt.get_ratio < 0 || opt.get_ratio > 1) fatal("--get-ratio must be within 0..1");
    if (opt.key_size < 2 || opt.key_size > 250) fatal("--key-size must be within 2..250 (memcached's key limit)");
    if (opt.value_size < opt.key_size) fatal("--value-size must be >= --key-size (values start with their key)");
    if (opt.duration < 0 || opt.warmup < 0) fatal("--duration and --warmup must be >= 0");
    if (opt.duration == 0 && !opt.preload) fatal("nothing to do: --duration 0 without --preload");
    {
        /* the key count must fit in key_size-1 decimal digits */
        double cap = 1;
        for (int i = 1; i < opt.key_size && cap <= 1e10; i++) cap *= 10;
        if ((double)opt.keys > cap) fatal("%u keys do not fit in %d-byte keys", opt.keys, opt.key_size);
    }
    if (opt.duration == 0) opt.warmup = 0;
    double limit = opt.timeout > 0 ? opt.timeout : opt.warmup + opt.duration + opt.drain + 120;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(limit + 1));

    g_filler = malloc((size_t)opt.value_size);
    for (int i = 0; i < opt.value_size; i++) g_filler[i] = (char)('A' + i % 26);

    struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    struct histogram *lat = calloc(1, sizeof *lat);
    if (!conns || !ws || !lat) fatal("out of memory");
    for (int i = 0; i < opt.threads; i++) {
        ws[i].id = i;
        ws[i].epfd = epoll_create1(0);
        ws[i].rng = opt.seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0xD1B54A32D192ED03ull + 1;
        ws[i].lat = calloc(1, sizeof *ws[i].lat);
        if (ws[i].epfd < 0 || !ws[i].lat) fatal("worker setup failed");
    }
    /* connections are handed out in contiguous runs, one run per thread */
    for (int i = 0, t = 0, given = 0; i < opt.conns; i++) {
        int share = opt.conns / opt.threads + (t < opt.conns % opt.threads);
        if (given == share) { t++; given = 0; }
        struct conn *c = &conns[i];
        struct worker *w = &ws[t];
        if (given == 0) w->conns = c;
        w->nconns++;
        given++;
        c->w = w;
        c->fd = dial(true);
        if (c->fd < 0) fatal("cannot connect to %s:%s: %s", opt.host, opt.port, strerror(errno));
        c->ring = calloc((size_t)opt.depth, sizeof *c->ring);
        c->wcap = 16384;
        c->wbuf = malloc(c->wcap);
        c->rcap = 65536;
        c->rbuf = malloc(c->rcap);
        if (!c->ring || !c->wbuf || !c->rbuf) fatal("out of memory");
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev);
    }

    const char *proto = opt.proto == PROTO_META ? "meta" : "text";
    struct counters pre = { 0 }, run = { 0 };
    double preload_s = 0;
    bool clean = true;

    if (!opt.json_only)
        printf("loadgen %s:%s proto=%s conns=%d depth=%d threads=%d keys=%u key_size=%d value_size=%d get_ratio=%.2f\n",
               opt.host, opt.port, proto, opt.conns, opt.depth, opt.threads, opt.keys, opt.key_size, opt.value_size,
               opt.get_ratio);

    if (opt.preload) {
        uint64_t t0 = clock_ns();
        run_workers(ws, MODE_PRELOAD, &pre, lat, NULL);
        preload_s = (double)(clock_ns() - t0) / 1e9;
        clean = pre.stored == opt.keys && pre.unexpected == 0 && pre.server_errors == 0 && pre.abandoned == 0;
        if (!opt.json_only)
            printf("  preload: %" PRIu64 " of %u keys stored in %.2f s (%.0f sets/s)%s\n", pre.stored, opt.keys,
                   preload_s, preload_s > 0 ? (double)pre.sets / preload_s : 0, clean ? "" : "  INCOMPLETE");
    }

    struct server_stats s0 = { 0 }, s1 = { 0 };
    const char *stats_check = "skipped";
    double cpu = 0, window_s = opt.duration, ops_s = 0;
    struct cpu_sampler server_cpu = { .pct = -1, .self_pct = -1 };
    if (opt.duration > 0) {
        if (opt.check_stats) s0 = fetch_stats();
        double cpu0 = cpu_seconds();
        uint64_t t0 = clock_ns();
        run_workers(ws, MODE_MIX, &run, lat, &server_cpu);
        double wall = (double)(clock_ns() - t0) / 1e9;
        /* over the measured window when it could be sampled, else over the whole run */
        cpu = server_cpu.self_pct >= 0 ? server_cpu.self_pct : wall > 0 ? (cpu_seconds() - cpu0) / wall * 100 : 0;
        ops_s = (double)run.window_ops / window_s;
        if (opt.check_stats) {
            s1 = fetch_stats();
            if (!s0.ok || !s1.ok) stats_check = "unavailable";
            else if (s1.cmd_get - s0.cmd_get == (long long)run.gets && s1.get_hits - s0.get_hits == (long long)run.hits &&
                     s1.cmd_set - s0.cmd_set == (long long)run.sets)
                stats_check = "ok";
            else stats_check = "MISMATCH";
        }
        if (run.unexpected || run.server_errors || run.bad_values || run.abandoned || !strcmp(stats_check, "MISMATCH"))
            clean = false;
    }

    double p50 = hist_percentile(lat, 50), p99 = hist_percentile(lat, 99), p999 = hist_percentile(lat, 99.9);
    double mean = lat->count ? (double)lat->sum_ns / (double)lat->count / 1000.0 : 0, max = (double)lat->max_ns / 1000.0;
    if (!opt.json_only && opt.duration > 0) {
        printf("  run: %.2f s window, %" PRIu64 " replies = %.0f ops/s (gets %" PRIu64 ", sets %" PRIu64 ")\n", window_s,
               run.window_ops, ops_s, run.window_gets, run.window_sets);
        printf("  latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n", p50, p99, p999, max, mean);
        printf("  replies: gets %" PRIu64 " (hits %" PRIu64 ", misses %" PRIu64 "), sets %" PRIu64 " (stored %" PRIu64
               ", not stored %" PRIu64 ")\n", run.gets, run.hits, run.misses, run.sets, run.stored, run.not_stored);
        printf("  errors: server %" PRIu64 ", unexpected %" PRIu64 ", wrong values %" PRIu64 ", unanswered %" PRIu64 "\n",
               run.server_errors, run.unexpected, run.bad_values, run.abandoned);
        printf("  client cpu: %.0f%% of one core", cpu);
        if (server_cpu.pct >= 0) printf(", server cpu: %.0f%% of one core", server_cpu.pct);
        for (int i = 0; i < server_cpu.ncores; i++) printf("%s%.0f%%", i ? " " : ", cores busy: ", server_cpu.core_busy[i]);
        printf(";  server stats check: %s", stats_check);
        if (s0.ok && s1.ok)
            printf(" (cmd_get +%lld, get_hits +%lld, cmd_set +%lld, curr_items %lld)", s1.cmd_get - s0.cmd_get,
                   s1.get_hits - s0.get_hits, s1.cmd_set - s0.cmd_set, s1.curr_items);
        printf("\n");
    }
    /* problems of both phases, the first few per thread, in the order they happened */
    for (int i = 0; i < opt.threads && !opt.json_only; i++)
        for (int j = 0; j < ws[i].nproblems; j++) printf("  problem: %s\n", ws[i].problems[j]);
    char busy[MAX_CORES * 8] = "";
    for (int i = 0, off = 0; i < server_cpu.ncores; i++)
        off += snprintf(busy + off, sizeof busy - (size_t)off, "%s%.1f", i ? "," : "", server_cpu.core_busy[i]);
    /* the JSON line is what bench/server.ts reads */
    printf("JSON {\"server\":\"%s:%s\",\"proto\":\"%s\",\"conns\":%d,\"depth\":%d,\"threads\":%d,\"keys\":%u,"
           "\"key_size\":%d,\"value_size\":%d,\"get_ratio\":%.3f,\"preload_seconds\":%.3f,\"preload_stored\":%" PRIu64 ","
           "\"seconds\":%.3f,\"ops\":%" PRIu64 ",\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f,\"mean_us\":%.1f,\"gets\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"sets\":%" PRIu64
           ",\"stored\":%" PRIu64 ",\"not_stored\":%" PRIu64 ",\"server_errors\":%" PRIu64 ",\"unexpected\":%" PRIu64
           ",\"wrong_values\":%" PRIu64 ",\"unanswered\":%" PRIu64 ",\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,\"core_busy_pct\":[%s],"
           "\"stats_check\":\"%s\",\"clean\":%s}\n",
           opt.host, opt.port, proto, opt.conns, opt.depth, opt.threads, opt.keys, opt.key_size, opt.value_size,
           opt.get_ratio, preload_s, pre.stored, opt.duration > 0 ? window_s : 0, run.window_ops, ops_s, p50, p99, p999,
           max, mean, run.gets, run.hits, run.misses, run.sets, run.stored, run.not_stored,
           run.server_errors + pre.server_errors, run.unexpected + pre.unexpected, run.bad_values,
           run.abandoned + pre.abandoned, cpu, server_cpu.pct, busy, stats_check, clean ? "true" : "false");
    fflush(stdout);
    return clean ? 0 : 1;
}
