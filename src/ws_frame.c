/*
 * ws_frame.c - the WebSocket codec (see ws_frame.h).
 *
 * Nothing here keeps state between calls but what the caller passes in:
 * the header parser is told whether a fragmented message is in progress,
 * and the unmasker where in the mask it stands.  SHA-1 is implemented for
 * the one short message the handshake hashes (a key and the GUID).
 */
#include "srv/ws_frame.h"

#include <string.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- SHA-1 and base64, for Sec-WebSocket-Accept -------------------------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
             | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* SHA-1 of a message shorter than 120 bytes (a key and the GUID). */
static void sha1_short(const char *msg, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    uint8_t buf[128] = {0};
    memcpy(buf, msg, n);
    buf[n] = 0x80;
    size_t total = n + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        buf[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64)
        sha1_block(h, buf + off);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_20(const uint8_t in[20], char out[29])
{
    char *o = out;
    for (int i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    uint32_t v = (uint32_t)in[18] << 16 | (uint32_t)in[19] << 8;
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = B64[(v >> 6) & 63];
    *o++ = '=';
    *o = '\0';
}

/* Is key the base64 form of 16 bytes (RFC 6455 4.2.1, item 5)? */
int srv_ws_key_valid(const char *key, size_t n)
{
    if (n != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (key[i] == '\0' || strchr(B64, key[i]) == NULL)
            return 0;
    return 1;
}

void srv_ws_accept(const char *key, char out[29])
{
    char joined[64];
    memcpy(joined, key, 24);
    memcpy(joined + 24, GUID, sizeof GUID - 1);
    uint8_t digest[20];
    sha1_short(joined, 24 + sizeof GUID - 1, digest);
    base64_20(digest, out);
}

/* ---- frames ------------------------------------------------------------ */

size_t srv_ws_frame_header(uint8_t *h, int opcode, uint64_t len)
{
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void srv_ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], unsigned *pos)
{
    unsigned p = *pos;
    uint8_t m8[8];
    for (int k = 0; k < 8; k++)
        m8[k] = mask[(p + (unsigned)k) & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ mask[(p + i) & 3];
    *pos = (unsigned)((p + n) & 3);
}

#define FAIL(c, reason) do { *code = (c); *why = (reason); return -1; } while (0)

/* The first two bytes: RSV bits, the mask bit, the opcode and what it may
 * be at this point of a message, and control frames' limits. */
static int check_start(uint8_t b0, uint8_t b1, int in_message, int *code, const char **why)
{
    int op = b0 & 0x0F, fin = b0 >> 7;
    if (b0 & 0x70)
        FAIL(1002, "reserved bits set without an extension");
    if (!(b1 & 0x80))
        FAIL(1002, "unmasked client frame");
    if (op >= 8) {
        if (op > SRV_WS_OP_PONG)
            FAIL(1002, "reserved opcode");
        if (!fin)
            FAIL(1002, "fragmented control frame");
        if ((b1 & 0x7F) > 125)
            FAIL(1002, "control frame longer than 125 bytes");
    } else if (op == SRV_WS_OP_CONT) {
        if (!in_message)
            FAIL(1002, "continuation frame with no message started");
    } else if (op <= SRV_WS_OP_BINARY) {
        if (in_message)
            FAIL(1002, "new message inside a fragmented one");
    } else {
        FAIL(1002, "reserved opcode");
    }
    return 0;
}

ssize_t srv_ws_parse_header(const uint8_t *p, size_t n, const srv_ws_limits *lim,
                            srv_ws_frame *f, int *code, const char **why)
{
    if (n < 2)
        return 0;
    if (check_start(p[0], p[1], lim->in_message, code, why) < 0)
        return -1;
    uint64_t len = p[1] & 0x7F;
    size_t need = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0) + 4;
    if (n < need)
        return 0;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        at = 4;
    } else if (len == 127) {
        if (p[2] & 0x80)
            FAIL(1002, "64-bit payload length with the top bit set");
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        at = 10;
    }
    int op = p[0] & 0x0F;
    if (op < 8 && (len > lim->max_message || lim->msg_len > lim->max_message - len))
        FAIL(1009, "message larger than --ws-max-message");
    f->opcode = (uint8_t)op;
    f->fin = p[0] >> 7;
    f->len = len;
    memcpy(f->mask, p + at, 4);
    return (ssize_t)need;
}

int srv_ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
        || (code >= 3000 && code <= 4999);
}

/* ---- UTF-8 ------------------------------------------------------------- */

int srv_ws_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;   /* the second byte's range */
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;               /* no overlong forms */
            else if (c == 0xED)
                hi = 0x9F;               /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;               /* nothing above U+10FFFF */
        } else {
            return 0;
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

size_t srv_ws_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}
