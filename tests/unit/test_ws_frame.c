/*
 * test_ws_frame.c - unit tests for src/ws_frame.c, the WebSocket codec.
 *
 * Every RFC 6455 framing rule a server checks on client frames (RSV bits,
 * masking, opcodes, control frames, the order of fragments, the three length
 * encodings, the top bit of a 64-bit length, the message limit), that a
 * header is never accepted before all its bytes are there, unmasking across
 * calls, server frame headers, close codes, UTF-8 validation against
 * Python-independent cases, reason cutting, and the handshake's key check
 * and accept value (RFC 6455's own example).  Linked with src/ws_frame.c only.
 */
#include "srv/ws_frame.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#define S(lit) (lit), (sizeof(lit) - 1)

static const srv_ws_limits fresh = {0, 0, 1 << 20};
static const srv_ws_limits mid_message = {1, 10, 1 << 20};

/* Builds a masked client frame header into h; returns its length. */
static size_t client_header(uint8_t *h, int b0, uint64_t len, int masked)
{
    size_t n = 0;
    h[n++] = (uint8_t)b0;
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        h[n++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        h[n++] = m | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = m | 127;
        for (int i = 0; i < 8; i++)
            h[n++] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(h + n, "\x11\x22\x33\x44", 4);
        n += 4;
    }
    return n;
}

/* Parses h whole and checks that every shorter prefix asks for more. */
static ssize_t parse(const uint8_t *h, size_t n, const srv_ws_limits *lim, srv_ws_frame *f,
                     int *code)
{
    const char *why = NULL;
    *code = 0;
    ssize_t r = srv_ws_parse_header(h, n, lim, f, code, &why);
    for (size_t k = 0; k < n && r > 0; k++) {
        int c2 = 0;
        srv_ws_frame f2;
        ssize_t p = srv_ws_parse_header(h, k, lim, &f2, &c2, &why);
        CHECK_INT_CTX(p, 0, "prefix of a valid header");
    }
    if (r < 0)
        CHECK(why != NULL);
    return r;
}

static void test_valid_headers(void)
{
    uint8_t h[16];
    srv_ws_frame f;
    int code;
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1 << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = client_header(h, 0x81, lens[i], 1);
        CHECK_INT_CTX(parse(h, n, &fresh, &f, &code), (long)n, "text frame");
        CHECK_INT(f.opcode, SRV_WS_OP_TEXT);
        CHECK_INT(f.fin, 1);
        CHECK_INT((long)f.len, (long)lens[i]);
        CHECK_MEM(f.mask, 4, "\x11\x22\x33\x44", 4);
    }
    size_t n = client_header(h, 0x02, 10, 1);          /* binary, not final */
    CHECK_INT(parse(h, n, &fresh, &f, &code), (long)n);
    CHECK_INT(f.fin, 0);
    n = client_header(h, 0x80, 10, 1);                 /* final continuation */
    CHECK_INT(parse(h, n, &mid_message, &f, &code), (long)n);
    CHECK_INT(f.opcode, SRV_WS_OP_CONT);
    for (int op = 0x8; op <= 0xA; op++) {              /* controls, also mid-message */
        n = client_header(h, 0x80 | op, 125, 1);
        CHECK_INT(parse(h, n, &fresh, &f, &code), (long)n);
        CHECK_INT(parse(h, n, &mid_message, &f, &code), (long)n);
    }
}

static void expect_error(int b0, uint64_t len, int masked, const srv_ws_limits *lim,
                         int want_code, const char *what)
{
    uint8_t h[16];
    srv_ws_frame f;
    int code;
    size_t n = client_header(h, b0, len, masked);
    CHECK_INT_CTX(parse(h, n, lim, &f, &code), -1, what);
    CHECK_INT_CTX(code, want_code, what);
}

static void test_rule_violations(void)
{
    expect_error(0x81, 5, 0, &fresh, 1002, "unmasked client frame");
    for (int rsv = 0x10; rsv <= 0x40; rsv <<= 1)
        expect_error(0x81 | rsv, 5, 1, &fresh, 1002, "RSV bit");
    for (int op = 3; op <= 7; op++)
        expect_error(0x80 | op, 5, 1, &fresh, 1002, "reserved data opcode");
    for (int op = 0xB; op <= 0xF; op++)
        expect_error(0x80 | op, 5, 1, &fresh, 1002, "reserved control opcode");
    expect_error(0x09, 5, 1, &fresh, 1002, "fragmented ping");
    expect_error(0x08, 2, 1, &fresh, 1002, "fragmented close");
    expect_error(0x89, 126, 1, &fresh, 1002, "ping longer than 125");
    expect_error(0x80, 5, 1, &fresh, 1002, "continuation with no message");
    expect_error(0x81, 5, 1, &mid_message, 1002, "text inside a fragmented message");
    expect_error(0x02, 5, 1, &mid_message, 1002, "binary inside a fragmented message");
    srv_ws_limits small = {0, 0, 100};
    expect_error(0x82, 101, 1, &small, 1009, "message over the limit");
    srv_ws_limits half = {1, 60, 100};
    expect_error(0x80, 41, 1, &half, 1009, "fragments adding up over the limit");
    uint8_t h[16];
    srv_ws_frame f;
    int code;
    CHECK_INT(parse(h, client_header(h, 0x80, 40, 1), &half, &f, &code), 6);
    CHECK_INT(parse(h, client_header(h, 0x89, 125, 1), &small, &f, &code), 6);   /* controls: no limit */
    size_t n = client_header(h, 0x82, 1, 1);
    h[1] = 0x80 | 127;                                  /* 64-bit length, top bit set */
    memcpy(h + 2, "\x80\0\0\0\0\0\0\x01" "\x11\x22\x33\x44", 12);
    n = 14;
    const char *why = NULL;
    CHECK_INT(srv_ws_parse_header(h, n, &fresh, &f, &code, &why), -1);
    CHECK_INT(code, 1002);
    srv_ws_limits huge = {1, UINT64_MAX - 5, UINT64_MAX - 1};
    expect_error(0x80, 1 << 20, 1, &huge, 1009, "no overflow in msg_len + len");
}

static void test_unmask(void)
{
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t masked[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};   /* RFC 6455 5.7 "Hello" */
    uint8_t out[5];
    for (size_t split = 0; split <= sizeof masked; split++) {
        unsigned pos = 0;
        srv_ws_unmask(out, masked, split, mask, &pos);
        srv_ws_unmask(out + split, masked + split, sizeof masked - split, mask, &pos);
        CHECK_MEM_CTX(out, 5, "Hello", 5, "split unmask");
    }
    uint8_t big[100], clear[100], back[100];
    for (int i = 0; i < 100; i++)
        clear[i] = (uint8_t)(i * 7);
    unsigned pos = 0;
    srv_ws_unmask(big, clear, 100, mask, &pos);
    for (size_t a = 0; a <= 100; a += 13) {
        unsigned p2 = 0;
        srv_ws_unmask(back, big, a, mask, &p2);
        srv_ws_unmask(back + a, big + a, 100 - a, mask, &p2);
        CHECK_MEM_CTX(back, 100, clear, 100, "round trip");
    }
}

static void test_server_headers(void)
{
    uint8_t h[10];
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_TEXT, 5), 2);
    CHECK_MEM(h, 2, "\x81\x05", 2);
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_BINARY, 256), 4);
    CHECK_MEM(h, 4, "\x82\x7e\x01\x00", 4);
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_BINARY, 65536), 10);
    CHECK_MEM(h, 10, "\x82\x7f\0\0\0\0\0\x01\0\0", 10);
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_CLOSE, 125), 2);   /* minimal encodings */
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_PONG, 126), 4);
    CHECK_INT(srv_ws_frame_header(h, SRV_WS_OP_PONG, 65535), 4);
}

static void test_close_codes(void)
{
    static const int ok[] = {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999};
    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, -1};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK_INT_CTX(srv_ws_close_code_valid(ok[i]), 1, "valid close code");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_CTX(srv_ws_close_code_valid(bad[i]), 0, "invalid close code");
}

static void test_utf8(void)
{
    static const struct { const char *s; size_t n; int ok; } cases[] = {
        {S(""), 1}, {S("hello"), 1}, {S("caf\xc3\xa9"), 1}, {S("\xe2\x82\xac"), 1},
        {S("\xf0\x9f\x98\x80"), 1}, {S("\xf4\x8f\xbf\xbf"), 1}, {S("\xed\x9f\xbf"), 1},
        {S("\xc0\xaf"), 0}, {S("\xc1\xbf"), 0}, {S("\xe0\x80\xaf"), 0},     /* overlong */
        {S("\xf0\x80\x80\xaf"), 0}, {S("\xed\xa0\x80"), 0}, {S("\xed\xbf\xbf"), 0},  /* surrogates */
        {S("\xf4\x90\x80\x80"), 0}, {S("\xf5\x80\x80\x80"), 0}, {S("\xff"), 0},
        {S("\x80"), 0}, {S("\xc3"), 0}, {S("\xe2\x82"), 0}, {S("\xc3\x28"), 0},
        {S("\xe2\x28\xa1"), 0}, {S("\xf0\x9f\x98"), 0}, {S("a\0b"), 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT_CTX(srv_ws_utf8_valid((const uint8_t *)cases[i].s, cases[i].n), cases[i].ok,
                      unit_esc(cases[i].s, cases[i].n));
}

static void test_utf8_cut(void)
{
    char s[140];
    for (int i = 0; i < 70; i++)
        memcpy(s + 2 * i, "\xc3\xa9", 2);
    CHECK_INT(srv_ws_utf8_cut(s, 140, 123), 122);
    CHECK_INT(srv_ws_utf8_cut(s, 140, 124), 124);
    CHECK_INT(srv_ws_utf8_cut(s, 100, 123), 100);
    CHECK_INT(srv_ws_utf8_cut(S("\xf0\x9f\x98\x80" "abc"), 3), 0);
    CHECK_INT(srv_ws_utf8_cut(S("ab\xf0\x9f\x98\x80"), 5), 2);
    for (size_t max = 0; max <= 140; max++) {
        size_t cut = srv_ws_utf8_cut(s, 140, max);
        CHECK(cut <= max && cut + 1 >= max && srv_ws_utf8_valid((const uint8_t *)s, cut));
    }
}

static void test_handshake(void)
{
    char out[29];
    CHECK_INT(srv_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ==")), 1);
    srv_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);      /* RFC 6455 1.3 */
    CHECK_MEM(out, strlen(out), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28);
    CHECK_INT(srv_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ=")), 0);
    CHECK_INT(srv_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ=A")), 0);
    CHECK_INT(srv_ws_key_valid(S("dGhlIHNhbXBsZSBub25j!Q==")), 0);
    CHECK_INT(srv_ws_key_valid("dGhlIHNhbXBs\0SBub25jZQ==", 24), 0);
    CHECK_INT(srv_ws_key_valid(S("")), 0);
}

int main(void)
{
    test_valid_headers();
    test_rule_violations();
    test_unmask();
    test_server_headers();
    test_close_codes();
    test_utf8();
    test_utf8_cut();
    test_handshake();
    return unit_report("ws_frame");
}
