/*
 * wsload: a WebSocket echo load generator (RFC 6455 client), one epoll loop,
 * no dependencies beyond libc.
 *
 *   cc -O2 -o bench/.build/wsload bench/wsload.c
 *   wsload [-c CONNS] [-d SECONDS] [-w WARMUP] [-s BYTES] [-b] [-C INFLIGHT]
 *          [-t CONNECT_TIMEOUT] [-T ECHO_TIMEOUT] [-p PID[,PID...]] [-j FILE]
 *          [-S] -u ws://HOST:PORT/PATH
 *
 * Opens CONNS connections (default 1000), at most INFLIGHT (default 200)
 * connecting/handshaking at a time, and checks each handshake: status 101,
 * "Upgrade: websocket", "Connection: upgrade" and Sec-WebSocket-Accept
 * (SHA-1 and base64 are computed here). Once every connection is open (or
 * has failed), each one keeps exactly one message in flight: it sends a
 * masked text (or, with -b, binary) frame of BYTES bytes (default 64), waits
 * for the echo, checks it (one complete message, same opcode, same length,
 * same bytes; fragmented echoes are reassembled; pings are answered), and
 * sends the next. Every message has distinct contents (connection id and
 * sequence number), so a reply crossed between connections is caught.
 *
 * After WARMUP seconds (default 1) it measures for SECONDS (default 10): the
 * round trips completed inside that window give messages/s, and their
 * latencies (send of the frame to the end of the echo) a histogram (about
 * 1.6% resolution) for p50/p90/p99/p99.9/max. Then no new messages are
 * sent; every message still in flight must be echoed within ECHO_TIMEOUT
 * (default 5 s), after which each connection sends a close frame (1000) and
 * waits for the server's close frame and EOF.
 *
 * With -p, the utime+stime of the given pids (from /proc/PID/stat) is read
 * at the start and end of the measured window, giving the server's CPU time
 * per message, and their VmRSS is summed at the end of the window (every
 * connection still open). -j FILE writes every number as one JSON object.
 *
 * Exit status: 0 when every connection opened, every echo arrived intact
 * and in time, and nothing failed; 1 when any connection failed (each
 * failure is counted by kind, and the first ones are printed); 2 for bad
 * usage. An unclean close (no close frame back) is reported but only fails
 * the run with -S.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ SHA-1, base64 */

typedef struct {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} sha1_t;

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(sha1_t *s, const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void sha1_init(sha1_t *s)
{
    static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE,
                                   0x10325476, 0xC3D2E1F0};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha1_update(sha1_t *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->len += len;
    while (len) {
        size_t m = 64 - s->n;
        if (m > len)
            m = len;
        memcpy(s->buf + s->n, p, m);
        s->n += m;
        p += m;
        len -= m;
        if (s->n == 64) {
            sha1_block(s, s->buf);
            s->n = 0;
        }
    }
}

static void sha1_final(sha1_t *s, unsigned char out[20])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    int i;
    sha1_update(s, &pad, 1);
    while (s->n != 56)
        sha1_update(s, &zero, 1);
    for (i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(s, lenb, 8);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = '=';
    }
    *out = 0;
}

/* --------------------------------------------------------------- utilities */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define NS 1000000000ull

/* Latency histogram in microseconds: exact below 128 us, then 64 sub-buckets
 * per power of two. */
#define HBUCKETS (64 * 64)
static uint64_t hist[HBUCKETS];
static uint64_t hist_n, hist_max_us, hist_sum_us;

static int hidx(uint64_t us)
{
    int msb, shift, i;
    if (us < 128)
        return (int)us;
    msb = 63 - __builtin_clzll(us);
    shift = msb - 6;
    i = (shift + 1) * 64 + (int)((us >> shift) - 64);
    return i < HBUCKETS ? i : HBUCKETS - 1;
}

static double hval(int i)
{
    int shift;
    uint64_t sub;
    if (i < 128)
        return i;
    shift = i / 64 - 1;
    sub = (uint64_t)(i % 64 + 64);
    return (double)(sub << shift) + (double)((1ull << shift) - 1) / 2.0;
}

static void hist_add(uint64_t us)
{
    hist[hidx(us)]++;
    hist_n++;
    hist_sum_us += us;
    if (us > hist_max_us)
        hist_max_us = us;
}

static double hist_pct(double p)
{
    uint64_t want, acc = 0;
    int i;
    if (!hist_n)
        return 0;
    want = (uint64_t)(p * (double)hist_n + 0.999999);
    if (want < 1)
        want = 1;
    for (i = 0; i < HBUCKETS; i++) {
        acc += hist[i];
        if (acc >= want) {
            double v = hval(i);
            return v > (double)hist_max_us ? (double)hist_max_us : v;
        }
    }
    return (double)hist_max_us;
}

/* ---------------------------------------------------------------- options */

static int o_conns = 1000, o_inflight = 200, o_size = 64, o_binary, o_strict;
static double o_dur = 10, o_warm = 1, o_ctimeout = 10, o_etimeout = 5;
static const char *o_url, *o_json;
static char o_host[256], o_port[16], o_path[2048], o_hosthdr[300];
static int o_pids[64], o_npids;

static void usage(void)
{
    fprintf(stderr,
        "usage: wsload [-c CONNS] [-d SECONDS] [-w WARMUP] [-s BYTES] [-b]\n"
        "              [-C INFLIGHT] [-t CONNECT_TIMEOUT] [-T ECHO_TIMEOUT]\n"
        "              [-p PID[,PID...]] [-j JSON_FILE] [-S] -u ws://HOST:PORT/PATH\n"
        "  -c  connections (1000)            -d  measured seconds (10)\n"
        "  -w  warm-up seconds (1)           -s  message payload bytes (64)\n"
        "  -b  binary frames (default text)  -C  connects/handshakes at a time (200)\n"
        "  -t  connect+handshake timeout s (10)\n"
        "  -T  an echo later than this (s) is an error (5)\n"
        "  -p  server pids: CPU time (utime+stime) over the window, VmRSS at its end\n"
        "  -j  write the results as JSON to this file\n"
        "  -S  an unclean close (no close frame echoed) is an error too\n");
    exit(2);
}

static void parse_url(const char *u)
{
    const char *p, *h, *he, *slash;
    if (strncmp(u, "ws://", 5) != 0) {
        fprintf(stderr, "wsload: only ws:// URLs are supported: %s\n", u);
        exit(2);
    }
    p = u + 5;
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    snprintf(o_path, sizeof o_path, "%s", *slash ? slash : "/");
    snprintf(o_hosthdr, sizeof o_hosthdr, "%.*s", (int)(slash - p), p);
    if (*p == '[') {
        h = p + 1;
        he = memchr(h, ']', (size_t)(slash - h));
        if (!he)
            usage();
        p = he + 1;
    } else {
        h = p;
        he = memchr(p, ':', (size_t)(slash - p));
        if (!he)
            he = slash;
        p = he;
    }
    snprintf(o_host, sizeof o_host, "%.*s", (int)(he - h), h);
    if (*p == ':')
        snprintf(o_port, sizeof o_port, "%.*s", (int)(slash - p - 1), p + 1);
    else
        snprintf(o_port, sizeof o_port, "80");
}

/* -------------------------------------------------------------- connections */

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING, C_DONE, C_FAILED };
enum { E_CONNECT, E_HANDSHAKE, E_PROTOCOL, E_MISMATCH, E_TIMEOUT, E_CLOSED, E_NKINDS };
static const char *ekind_name[E_NKINDS] = {"connect", "handshake", "protocol",
                                           "mismatch", "timeout", "closed"};

typedef struct {
    unsigned char *p;
    size_t len, off, cap;
} buf_t;

typedef struct {
    int fd, id, state, epout, close_got, close_ok;
    char key[32], accept[32];
    buf_t out, in, msg;       /* pending output, raw input, reassembled message */
    int msg_op;               /* opcode of a fragmented message in progress */
    int inflight;             /* a message is out, echo not yet complete */
    uint64_t seq, t_sent, deadline, measured;
    unsigned char *payload;   /* what the message in flight carries */
} conn_t;

static conn_t *conns;
static int epfd;
static uint64_t errors[E_NKINDS], n_failed, n_open_ever, total_msgs, window_msgs;
static uint64_t t_measure, t_end; /* ns; 0 = not yet known */
static int phase;                 /* 0 connect, 1 run, 2 drain, 3 close, 4 end */
static int printed_errors;
static uint64_t close_clean, close_unclean;
static int n_handshaking, n_open, n_next; /* n_open: C_OPEN + C_CLOSING */

/* leave state st: keep the counters right */
static void leave_state(int st)
{
    if (st == C_CONNECTING || st == C_HANDSHAKE)
        n_handshaking--;
    else if (st == C_OPEN || st == C_CLOSING)
        n_open--;
}

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + extra <= b->cap)
        return;
    if (b->off) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return;
    }
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra)
        nc *= 2;
    b->p = realloc(b->p, nc);
    if (!b->p) {
        perror("wsload: realloc");
        exit(1);
    }
    b->cap = nc;
}

static void conn_fail(conn_t *c, int kind, const char *fmt, ...)
{
    va_list ap;
    if (c->state == C_FAILED || c->state == C_DONE)
        return;
    errors[kind]++;
    n_failed++;
    if (printed_errors < 10) {
        char msg[512];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "wsload: connection %d: %s error: %s\n", c->id,
                ekind_name[kind], msg);
        if (++printed_errors == 10)
            fprintf(stderr, "wsload: (further errors only counted)\n");
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    leave_state(c->state);
    c->state = C_FAILED;
    c->inflight = 0;
}

static void conn_finish(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    leave_state(c->state);
    c->state = C_DONE;
}

static void set_events(conn_t *c, int want_out)
{
    struct epoll_event ev;
    if (c->epout == want_out)
        return;
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.u32 = (uint32_t)c->id;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->epout = want_out;
}

/* write what is pending; 0 ok (maybe partially, EPOLLOUT armed), -1 failed */
static int conn_flush(conn_t *c)
{
    while (c->out.off < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (n > 0) {
            c->out.off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return 0;
        }
        conn_fail(c, E_CLOSED, "write: %s", n < 0 ? strerror(errno) : "wrote 0");
        return -1;
    }
    c->out.off = c->out.len = 0;
    set_events(c, 0);
    return 0;
}

/* append one masked client frame */
static void put_frame(conn_t *c, int op, const unsigned char *data, size_t len)
{
    unsigned char *h;
    size_t hl = 2, i;
    uint32_t m = (uint32_t)rnd();
    unsigned char mask[4] = {(unsigned char)m, (unsigned char)(m >> 8),
                             (unsigned char)(m >> 16), (unsigned char)(m >> 24)};
    buf_reserve(&c->out, len + 14);
    h = c->out.p + c->out.len;
    h[0] = (unsigned char)(0x80 | op);
    if (len < 126) {
        h[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, mask, 4);
    hl += 4;
    for (i = 0; i < len; i++)
        h[hl + i] = data[i] ^ mask[i & 3];
    c->out.len += hl + len;
}

static void fill_payload(conn_t *c)
{
    char tag[48];
    int tl, i;
    tl = snprintf(tag, sizeof tag, "c%d m%llu ", c->id, (unsigned long long)c->seq);
    for (i = 0; i < o_size; i++) {
        if (i < tl)
            c->payload[i] = (unsigned char)tag[i];
        else if (o_binary)
            c->payload[i] = (unsigned char)(c->id * 131 + (int)c->seq * 7 + i);
        else
            c->payload[i] = (unsigned char)('a' + (c->id + (int)c->seq + i) % 26);
    }
}

static void send_message(conn_t *c, uint64_t now)
{
    c->seq++;
    fill_payload(c);
    put_frame(c, o_binary ? 2 : 1, c->payload, (size_t)o_size);
    c->inflight = 1;
    (void)now;
    c->t_sent = now_ns(); /* just before the write */
    c->deadline = c->t_sent + (uint64_t)(o_etimeout * NS);
    conn_flush(c);
}

static void send_close(conn_t *c, uint64_t now)
{
    unsigned char code[2] = {0x03, 0xe8}; /* 1000 */
    put_frame(c, 8, code, 2);
    c->state = C_CLOSING;
    c->deadline = now + 2 * NS;
    conn_flush(c);
}

static void on_message(conn_t *c, int op, const unsigned char *data, size_t len,
                       uint64_t now)
{
    uint64_t rtt;
    if (!c->inflight) {
        conn_fail(c, E_PROTOCOL, "a %zu-byte message arrived with none in flight", len);
        return;
    }
    if (op != (o_binary ? 2 : 1)) {
        conn_fail(c, E_MISMATCH, "echo has opcode %d, sent %d", op, o_binary ? 2 : 1);
        return;
    }
    if (len != (size_t)o_size) {
        conn_fail(c, E_MISMATCH, "echo of message %llu is %zu bytes, sent %d",
                  (unsigned long long)c->seq, len, o_size);
        return;
    }
    if (memcmp(data, c->payload, len) != 0) {
        conn_fail(c, E_MISMATCH, "echo of message %llu differs from it (got \"%.*s\")",
                  (unsigned long long)c->seq, (int)(len < 40 ? len : 40), data);
        return;
    }
    c->inflight = 0;
    total_msgs++;
    now = now_ns(); /* not the batch's: reading a big echo takes a while */
    rtt = now - c->t_sent;
    if (t_measure && now >= t_measure && now < t_end) {
        window_msgs++;
        c->measured++;
        hist_add(rtt / 1000);
    }
    if (phase == 1)
        send_message(c, now);
}

/* parse server frames in c->in; returns -1 when the connection is gone */
static int parse_frames(conn_t *c, uint64_t now)
{
    for (;;) {
        unsigned char *p = c->in.p + c->in.off;
        size_t avail = c->in.len - c->in.off, hl = 2, i;
        uint64_t plen;
        int fin, op;
        if (avail < 2)
            break;
        fin = p[0] & 0x80;
        op = p[0] & 0x0f;
        if (p[0] & 0x70) {
            conn_fail(c, E_PROTOCOL, "server frame with RSV bits set (0x%02x)", p[0]);
            return -1;
        }
        if (p[1] & 0x80) {
            conn_fail(c, E_PROTOCOL, "server frame is masked");
            return -1;
        }
        plen = p[1] & 0x7f;
        if (plen == 126) {
            hl = 4;
            if (avail < hl)
                break;
            plen = (uint64_t)p[2] << 8 | p[3];
            if (plen < 126) {
                conn_fail(c, E_PROTOCOL, "non-minimal 16-bit length %llu",
                          (unsigned long long)plen);
                return -1;
            }
        } else if (plen == 127) {
            hl = 10;
            if (avail < hl)
                break;
            plen = 0;
            for (i = 0; i < 8; i++)
                plen = plen << 8 | p[2 + i];
            if (plen < 65536 || (plen >> 63)) {
                conn_fail(c, E_PROTOCOL, "bad 64-bit length %llu",
                          (unsigned long long)plen);
                return -1;
            }
        }
        if (plen > (uint64_t)o_size + (1u << 20)) {
            conn_fail(c, E_PROTOCOL, "frame of %llu bytes (messages are %d)",
                      (unsigned long long)plen, o_size);
            return -1;
        }
        if (avail < hl + plen) {
            buf_reserve(&c->in, (size_t)(hl + plen - avail));
            break;
        }
        p += hl;
        c->in.off += hl + (size_t)plen;
        if (op & 8) { /* control */
            if (!fin || plen > 125) {
                conn_fail(c, E_PROTOCOL, "control frame %d fragmented or too long", op);
                return -1;
            }
            if (op == 9) { /* ping -> pong */
                put_frame(c, 10, p, (size_t)plen);
                if (conn_flush(c) < 0)
                    return -1;
            } else if (op == 10) {
                /* unsolicited pong: ignore */
            } else if (op == 8) {
                int code = plen >= 2 ? (p[0] << 8 | p[1]) : 1005;
                if (c->state == C_CLOSING) {
                    c->close_got = 1;
                    /* an empty close frame (no code) is a valid answer */
                    c->close_ok = (code == 1000 || plen == 0);
                    continue;
                }
                conn_fail(c, E_CLOSED, "server sent close (code %d)%s", code,
                          c->inflight ? " with a message in flight" : "");
                return -1;
            } else {
                conn_fail(c, E_PROTOCOL, "unknown control opcode %d", op);
                return -1;
            }
            continue;
        }
        if (c->state == C_CLOSING) {
            if (c->close_got) {
                conn_fail(c, E_PROTOCOL, "data frame after the close frame");
                return -1;
            }
            continue; /* data racing our close: RFC allows, ignore */
        }
        if (op == 0) {
            if (!c->msg_op) {
                conn_fail(c, E_PROTOCOL, "continuation frame with no message started");
                return -1;
            }
            buf_reserve(&c->msg, (size_t)plen);
            memcpy(c->msg.p + c->msg.len, p, (size_t)plen);
            c->msg.len += (size_t)plen;
            if (fin) {
                int mop = c->msg_op;
                c->msg_op = 0;
                on_message(c, mop, c->msg.p, c->msg.len, now);
                c->msg.len = 0;
                if (c->state == C_FAILED)
                    return -1;
            }
        } else if (op == 1 || op == 2) {
            if (c->msg_op) {
                conn_fail(c, E_PROTOCOL, "new message (opcode %d) inside a fragmented one", op);
                return -1;
            }
            if (fin) {
                on_message(c, op, p, (size_t)plen, now);
                if (c->state == C_FAILED)
                    return -1;
            } else {
                c->msg_op = op;
                c->msg.len = 0;
                buf_reserve(&c->msg, (size_t)plen);
                memcpy(c->msg.p, p, (size_t)plen);
                c->msg.len = (size_t)plen;
            }
        } else {
            conn_fail(c, E_PROTOCOL, "unknown data opcode %d", op);
            return -1;
        }
    }
    if (c->in.off == c->in.len)
        c->in.off = c->in.len = 0;
    return 0;
}

static int hdr_value(const char *head, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p && p[2] != '\r') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > nl && line[nl] == ':' &&
            strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = (size_t)(end - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            snprintf(out, outsz, "%.*s", (int)vl, v);
            return 1;
        }
        p = end;
    }
    return 0;
}

static void conn_opened(conn_t *c)
{
    n_handshaking--;
    c->state = C_OPEN;
    n_open++;
    n_open_ever++;
}

/* the handshake response; -1 when the connection failed */
static int parse_handshake(conn_t *c, uint64_t now)
{
    char *end, val[256];
    size_t headlen;
    buf_reserve(&c->in, 1);
    c->in.p[c->in.len] = 0;
    end = strstr((char *)c->in.p, "\r\n\r\n");
    if (!end) {
        if (c->in.len > 16384) {
            conn_fail(c, E_HANDSHAKE, "response head over 16 KiB");
            return -1;
        }
        return 0;
    }
    end[2] = 0; /* keep the last header's CRLF for hdr_value */
    headlen = (size_t)(end - (char *)c->in.p) + 4;
    if (strncmp((char *)c->in.p, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr((char *)c->in.p, "\r\n");
        conn_fail(c, E_HANDSHAKE, "status line \"%.*s\"",
                  eol ? (int)(eol - (char *)c->in.p) : 60, (char *)c->in.p);
        return -1;
    }
    if (!hdr_value((char *)c->in.p, "Upgrade", val, sizeof val) ||
        strcasecmp(val, "websocket") != 0) {
        conn_fail(c, E_HANDSHAKE, "no \"Upgrade: websocket\" in the 101 response");
        return -1;
    }
    if (!hdr_value((char *)c->in.p, "Connection", val, sizeof val) ||
        !strcasestr(val, "upgrade")) {
        conn_fail(c, E_HANDSHAKE, "no \"Connection: Upgrade\" in the 101 response");
        return -1;
    }
    if (!hdr_value((char *)c->in.p, "Sec-WebSocket-Accept", val, sizeof val)) {
        conn_fail(c, E_HANDSHAKE, "no Sec-WebSocket-Accept in the 101 response");
        return -1;
    }
    if (strcmp(val, c->accept) != 0) {
        conn_fail(c, E_HANDSHAKE, "Sec-WebSocket-Accept is \"%s\", expected \"%s\"",
                  val, c->accept);
        return -1;
    }
    if (hdr_value((char *)c->in.p, "Sec-WebSocket-Extensions", val, sizeof val)) {
        conn_fail(c, E_HANDSHAKE, "server chose extensions \"%s\" nobody asked for", val);
        return -1;
    }
    c->in.off = headlen;
    conn_opened(c);
    /* frames before any message was sent would be a protocol error */
    if (c->in.off < c->in.len)
        return parse_frames(c, now);
    c->in.off = c->in.len = 0;
    return 0;
}

static struct addrinfo *addr;

static void start_connect(conn_t *c, uint64_t now)
{
    struct epoll_event ev;
    unsigned char raw[16], digest[20];
    char cat[128];
    sha1_t s;
    int one = 1, i;
    uint64_t r1 = rnd(), r2 = rnd();

    for (i = 0; i < 8; i++) {
        raw[i] = (unsigned char)(r1 >> (8 * i));
        raw[8 + i] = (unsigned char)(r2 >> (8 * i));
    }
    base64(raw, 16, c->key);
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    sha1_init(&s);
    sha1_update(&s, cat, strlen(cat));
    sha1_final(&s, digest);
    base64(digest, 20, c->accept);

    n_handshaking++;
    c->deadline = now + (uint64_t)(o_ctimeout * NS);
    c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->state = C_CONNECTING;
    if (c->fd < 0) {
        conn_fail(c, E_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
        conn_fail(c, E_CONNECT, "connect: %s", strerror(errno));
        return;
    }
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = (uint32_t)c->id;
    c->epout = 1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(c, E_CONNECT, "epoll_ctl: %s", strerror(errno));
    }
}

static void on_connected(conn_t *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    char req[4096];
    int n;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_fail(c, E_CONNECT, "connect: %s", strerror(err));
        return;
    }
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "User-Agent: wsload\r\n"
                 "\r\n",
                 o_path, o_hosthdr, c->key);
    c->state = C_HANDSHAKE;
    buf_reserve(&c->out, (size_t)n);
    memcpy(c->out.p + c->out.len, req, (size_t)n);
    c->out.len += (size_t)n;
    conn_flush(c);
}

static void on_event(conn_t *c, uint32_t ev, uint64_t now)
{
    if (c->state == C_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    if ((ev & EPOLLOUT) && conn_flush(c) < 0)
        return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int reads;
        /* a few reads per event at most (level-triggered: the rest comes
         * with the next epoll_wait), so one fast connection cannot starve
         * the others or the clock checks */
        for (reads = 0; reads < 8; reads++) {
            ssize_t n;
            buf_reserve(&c->in, c->state == C_HANDSHAKE ? 4096 : (size_t)o_size + 4096);
            n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len -
                     (c->state == C_HANDSHAKE ? 1 : 0));
            if (n > 0) {
                c->in.len += (size_t)n;
                if (c->state == C_HANDSHAKE) {
                    if (parse_handshake(c, now) < 0)
                        return;
                } else if (parse_frames(c, now) < 0) {
                    return;
                }
                if (c->state == C_FAILED || c->state == C_DONE)
                    return;
                if ((size_t)n < 4096)
                    return; /* most likely drained; level-triggered anyway */
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            /* EOF or error */
            if (c->state == C_CLOSING) {
                if (c->close_got && c->close_ok)
                    close_clean++;
                else
                    close_unclean++;
                conn_finish(c);
                return;
            }
            int st = c->state;
            conn_fail(c, st == C_HANDSHAKE ? E_HANDSHAKE : E_CLOSED, "%s%s",
                      n == 0 ? "server closed the connection" : strerror(errno),
                      c->inflight ? " with a message in flight" :
                      st == C_HANDSHAKE ? " during the handshake" : "");
            return;
        }
    }
}

/* ---------------------------------------------------------- server samples */

static int read_pid_cpu(int pid, double *secs)
{
    char path[64], buf[2048], *p;
    unsigned long long ut, st;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    *secs = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static double pids_cpu(void)
{
    double t = 0, s;
    int i;
    for (i = 0; i < o_npids; i++)
        if (read_pid_cpu(o_pids[i], &s) == 0)
            t += s;
    return t;
}

static long pids_rss_kib(void)
{
    long t = 0;
    int i;
    for (i = 0; i < o_npids; i++) {
        char path[64], line[256];
        FILE *f;
        snprintf(path, sizeof path, "/proc/%d/status", o_pids[i]);
        f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "VmRSS:", 6) == 0) {
                t += atol(line + 6);
                break;
            }
        fclose(f);
    }
    return t;
}

/* -------------------------------------------------------------------- main */

static volatile sig_atomic_t stop_now;
static void on_signal(int sig) { (void)sig; stop_now = 1; }

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct addrinfo hints;
    struct epoll_event *evs;
    uint64_t t0, t_connected = 0, t_run = 0, t_drain_end = 0, t_close_end = 0,
             last_scan = 0;
    double cpu0 = 0, cpu1 = 0, window_s = 0;
    long rss_kib = 0;
    int opt, i, rc;

    while ((opt = getopt(argc, argv, "c:d:w:s:bC:t:T:p:j:Su:h")) != -1) {
        switch (opt) {
        case 'c': o_conns = atoi(optarg); break;
        case 'd': o_dur = atof(optarg); break;
        case 'w': o_warm = atof(optarg); break;
        case 's': o_size = atoi(optarg); break;
        case 'b': o_binary = 1; break;
        case 'C': o_inflight = atoi(optarg); break;
        case 't': o_ctimeout = atof(optarg); break;
        case 'T': o_etimeout = atof(optarg); break;
        case 'j': o_json = optarg; break;
        case 'S': o_strict = 1; break;
        case 'u': o_url = optarg; break;
        case 'p': {
            char *s = optarg, *e;
            while (*s && o_npids < 64) {
                long v = strtol(s, &e, 10);
                if (e == s || v <= 0)
                    usage();
                o_pids[o_npids++] = (int)v;
                s = *e == ',' ? e + 1 : e;
            }
            break;
        }
        default: usage();
        }
    }
    if (!o_url || optind != argc || o_conns < 1 || o_size < 0 || o_dur <= 0 ||
        o_warm < 0 || o_inflight < 1 || o_ctimeout <= 0 || o_etimeout <= 0)
        usage();
    parse_url(o_url);

    /* file descriptors: one per connection and some spare */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o_conns + 64) {
        rlim_t want = (rlim_t)o_conns + 64;
        if (rl.rlim_max < want)
            rl.rlim_max = want; /* works as root only */
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
            if (rl.rlim_cur < want) {
                fprintf(stderr, "wsload: RLIMIT_NOFILE is %llu, need %llu (raise ulimit -n)\n",
                        (unsigned long long)rl.rlim_cur, (unsigned long long)want);
                return 1;
            }
        }
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(o_host, o_port, &hints, &addr)) != 0) {
        fprintf(stderr, "wsload: %s:%s: %s\n", o_host, o_port, gai_strerror(rc));
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rng_state = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    if (!rng_state)
        rng_state = 1;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)o_conns, sizeof *conns);
    evs = calloc(1024, sizeof *evs);
    if (epfd < 0 || !conns || !evs) {
        perror("wsload");
        return 1;
    }
    for (i = 0; i < o_conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        conns[i].payload = malloc((size_t)o_size + 1);
        if (!conns[i].payload) {
            perror("wsload");
            return 1;
        }
    }

    printf("wsload: %d connections to %s, %d-byte %s messages, one in flight each\n",
           o_conns, o_url, o_size, o_binary ? "binary" : "text");
    fflush(stdout);

    t0 = now_ns();
    for (;;) {
        uint64_t now = now_ns();
        int timeout_ms = 100, n;

        if (stop_now) {
            fprintf(stderr, "wsload: interrupted\n");
            if (phase == 1 && now > t_measure) {
                t_end = now; /* end the window now; the normal way out follows */
            } else if (phase < 2) {
                break;
            }
            stop_now = 0;
        }

        /* phase changes */
        if (phase == 0) {
            while (n_next < o_conns && n_handshaking < o_inflight)
                start_connect(&conns[n_next++], now);
            if (n_next == o_conns && n_handshaking == 0) {
                t_connected = now;
                printf("connected: %d/%d in %.1f ms\n", n_open, o_conns,
                       (double)(now - t0) / 1e6);
                fflush(stdout);
                if (n_open == 0)
                    break;
                phase = 1;
                t_run = now;
                t_measure = now + (uint64_t)(o_warm * NS);
                t_end = t_measure + (uint64_t)(o_dur * NS);
                if (o_warm == 0)
                    cpu0 = pids_cpu();
                for (i = 0; i < o_conns; i++)
                    if (conns[i].state == C_OPEN)
                        send_message(&conns[i], now);
                now = now_ns();
            }
        }
        if (phase == 1) {
            static int measuring;
            if (!measuring && now >= t_measure) {
                measuring = 1;
                if (o_warm != 0)
                    cpu0 = pids_cpu();
            }
            if (now >= t_end) {
                cpu1 = pids_cpu();
                rss_kib = pids_rss_kib();
                window_s = (double)(now - t_measure) / 1e9;
                phase = 2;
                t_drain_end = now + (uint64_t)(o_etimeout * NS);
            }
        }
        if (phase == 2) {
            int waiting = 0;
            for (i = 0; i < o_conns; i++)
                if (conns[i].state == C_OPEN && conns[i].inflight)
                    waiting++;
            if (!waiting || now >= t_drain_end) {
                for (i = 0; i < o_conns; i++) {
                    conn_t *c = &conns[i];
                    if (c->state != C_OPEN)
                        continue;
                    if (c->inflight) {
                        conn_fail(c, E_TIMEOUT, "no echo of message %llu within %.1f s "
                                  "(after the run)", (unsigned long long)c->seq, o_etimeout);
                        continue;
                    }
                    send_close(c, now);
                }
                phase = 3;
                t_close_end = now + 2 * NS + NS / 2;
            }
        }
        if (phase == 3 && (n_open <= 0 || now >= t_close_end)) {
            for (i = 0; i < o_conns; i++)
                if (conns[i].state == C_CLOSING) {
                    if (conns[i].close_got && conns[i].close_ok)
                        close_clean++; /* close frame back, TCP still open */
                    else
                        close_unclean++;
                    conn_finish(&conns[i]);
                }
            break;
        }

        /* deadlines: connect/handshake, echo, close */
        if (now - last_scan >= 100000000ull) {
            last_scan = now;
            for (i = 0; i < o_conns; i++) {
                conn_t *c = &conns[i];
                if (!c->deadline || now < c->deadline)
                    continue;
                if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
                    int st = c->state;
                    conn_fail(c, st == C_CONNECTING ? E_CONNECT : E_HANDSHAKE,
                              "not %s within %.1f s",
                              st == C_CONNECTING ? "connected" : "upgraded", o_ctimeout);
                } else if (c->state == C_OPEN && c->inflight) {
                    conn_fail(c, E_TIMEOUT, "no echo of message %llu within %.1f s",
                              (unsigned long long)c->seq, o_etimeout);
                } else if (c->state == C_CLOSING) {
                    /* close frame back but no EOF yet still counts as clean */
                    if (c->close_got && c->close_ok)
                        close_clean++;
                    else
                        close_unclean++;
                    conn_finish(c);
                }
            }
        }

        if (phase == 1) {
            uint64_t next = now < t_measure ? t_measure : t_end;
            uint64_t ms = (next - now) / 1000000 + 1;
            if (ms < (uint64_t)timeout_ms)
                timeout_ms = (int)ms;
        }
        n = epoll_wait(epfd, evs, 1024, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("wsload: epoll_wait");
            return 1;
        }
        now = now_ns();
        for (i = 0; i < n; i++) {
            conn_t *c = &conns[evs[i].data.u32];
            if (c->state == C_FAILED || c->state == C_DONE || c->fd < 0)
                continue;
            on_event(c, evs[i].events, now);
        }
    }
    (void)t_connected;
    (void)t_run;

    /* ------------------------------------------------------------ report */
    {
        uint64_t nerr = 0, mn = UINT64_MAX, mx = 0, zero = 0;
        double rate = window_s > 0 ? (double)window_msgs / window_s : 0;
        double cpu = cpu1 - cpu0;
        double p50 = hist_pct(0.50) / 1000, p90 = hist_pct(0.90) / 1000,
               p99 = hist_pct(0.99) / 1000, p999 = hist_pct(0.999) / 1000,
               mean = hist_n ? (double)hist_sum_us / (double)hist_n / 1000 : 0,
               lmax = (double)hist_max_us / 1000;
        int k, ok;
        for (k = 0; k < E_NKINDS; k++)
            nerr += errors[k];
        for (i = 0; i < o_conns; i++) {
            if (conns[i].state == C_FAILED)
                continue;
            if (conns[i].measured < mn)
                mn = conns[i].measured;
            if (conns[i].measured > mx)
                mx = conns[i].measured;
            if (!conns[i].measured)
                zero++;
        }
        if (mn == UINT64_MAX)
            mn = 0;
        ok = nerr == 0 && n_open_ever == (uint64_t)o_conns && window_msgs > 0 &&
             (!o_strict || close_unclean == 0);

        printf("measured: %.2f s after %.1f s warm-up\n", window_s, o_warm);
        printf("messages/s: %.1f (%llu round trips in the window, %llu in all)\n", rate,
               (unsigned long long)window_msgs, (unsigned long long)total_msgs);
        printf("latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
               mean, p50, p90, p99, p999, lmax);
        printf("per connection in the window: min %llu  max %llu  (%llu with none)\n",
               (unsigned long long)mn, (unsigned long long)mx, (unsigned long long)zero);
        printf("errors: %llu", (unsigned long long)nerr);
        for (k = 0; k < E_NKINDS; k++)
            if (errors[k])
                printf("  %s %llu", ekind_name[k], (unsigned long long)errors[k]);
        printf("\nclose: %llu clean, %llu without a close frame back\n",
               (unsigned long long)close_clean, (unsigned long long)close_unclean);
        if (o_npids) {
            printf("server: %.3f s CPU in the window (%.1f%% of a core), %.2f us/message; "
                   "VmRSS %ld KiB at its end\n", cpu,
                   window_s > 0 ? 100 * cpu / window_s : 0,
                   window_msgs ? cpu * 1e6 / (double)window_msgs : 0, rss_kib);
        }
        printf("%s\n", ok ? "OK" : "FAILED");
        fflush(stdout);

        if (o_json) {
            FILE *f = fopen(o_json, "w");
            if (!f) {
                perror(o_json);
                return 1;
            }
            fprintf(f, "{\"url\": \"%s\", \"connections\": %d, \"opened\": %llu, "
                       "\"size\": %d, \"binary\": %s, \"warmup_s\": %.3f, "
                       "\"window_s\": %.4f, \"messages\": %llu, \"messages_total\": %llu, "
                       "\"msgs_per_s\": %.2f, \"lat_ms\": {\"mean\": %.4f, \"p50\": %.4f, "
                       "\"p90\": %.4f, \"p99\": %.4f, \"p999\": %.4f, \"max\": %.4f}, "
                       "\"per_conn_min\": %llu, \"per_conn_max\": %llu, "
                       "\"conns_with_none\": %llu, \"errors\": %llu, \"errors_by_kind\": {",
                    o_url, o_conns, (unsigned long long)n_open_ever, o_size,
                    o_binary ? "true" : "false", o_warm, window_s,
                    (unsigned long long)window_msgs, (unsigned long long)total_msgs, rate,
                    mean, p50, p90, p99, p999, lmax, (unsigned long long)mn,
                    (unsigned long long)mx, (unsigned long long)zero,
                    (unsigned long long)nerr);
            for (k = 0; k < E_NKINDS; k++)
                fprintf(f, "%s\"%s\": %llu", k ? ", " : "", ekind_name[k],
                        (unsigned long long)errors[k]);
            fprintf(f, "}, \"close_clean\": %llu, \"close_unclean\": %llu, ",
                    (unsigned long long)close_clean, (unsigned long long)close_unclean);
            if (o_npids)
                fprintf(f, "\"server_cpu_s\": %.4f, \"server_cpu_us_per_msg\": %.3f, "
                           "\"server_rss_kib\": %ld, ", cpu,
                        window_msgs ? cpu * 1e6 / (double)window_msgs : 0, rss_kib);
            fprintf(f, "\"ok\": %s}\n", ok ? "true" : "false");
            fclose(f);
        }
        return ok ? 0 : 1;
    }
}
