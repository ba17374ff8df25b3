/*
 * test_proxy.c - unit tests for src/proxy.c: the PROXY protocol v1 and v2
 * parser (every prefix of a valid header asks for more; malformed headers
 * are refused; addresses land in the peer), X-Forwarded-For and RFC 7239
 * Forwarded parsing, and --forwarded-allow-ips.  Linked with src/proxy.c
 * only: srv_cfg and srv_log() are this file's (the log counts warnings).
 */
#include "srv/config.h"
#include "srv/log.h"
#include "srv/proxy.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/un.h>

#define S(lit) (lit), (sizeof(lit) - 1)

srv_config srv_cfg;
int srv_log_level;
static int warnings;

void srv_log(int level, const char *fmt, ...)
{
    (void)fmt;
    if (level >= SRV_LOG_WARNING)
        warnings++;
}

/* Parses p whole, then every prefix: a prefix of a valid header is "more". */
static int parse(const char *p, size_t n, struct sockaddr_storage *ss, socklen_t *len)
{
    int r = srv_proxy_protocol_parse(p, n, ss, len);
    for (size_t k = 0; r > 0 && k < (size_t)r; k++) {
        struct sockaddr_storage s2;
        socklen_t l2 = sizeof s2;
        int p2 = srv_proxy_protocol_parse(p, k, &s2, &l2);
        CHECK_INT_CTX(p2, 0, unit_esc(p, k));
    }
    return r;
}

static void check_v4(const struct sockaddr_storage *ss, const char *ip, int port)
{
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    char buf[64];
    CHECK_INT(a->sin_family, AF_INET);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    CHECK_MEM(buf, strlen(buf), ip, strlen(ip));
    CHECK_INT(ntohs(a->sin_port), port);
}

static void test_v1(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    const char ok4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
    CHECK_INT(parse(ok4, sizeof ok4 - 1, &ss, &len), (int)(strchr(ok4, '\n') + 1 - ok4));
    check_v4(&ss, "192.0.2.1", 56324);
    const char ok6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n";
    memset(&ss, 0, sizeof ss);
    CHECK_INT(parse(S(ok6), &ss, &len), (int)sizeof ok6 - 1);
    CHECK_INT(((struct sockaddr_in6 *)&ss)->sin6_family, AF_INET6);
    CHECK_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 1234);
    memset(&ss, 0x55, sizeof ss);
    CHECK_INT(parse(S("PROXY UNKNOWN\r\n"), &ss, &len), 15);   /* peer left alone */
    CHECK_INT(((unsigned char *)&ss)[0], 0x55);
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",          /* bare LF */
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",            /* a field missing */
        "PROXY TCP4 192.0.2.999 198.51.100.2 1 2\r\n",            /* bad address */
        "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",            /* v6 in TCP4 */
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",          /* port range */
        "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "GET / HTTP/1.1\r\n",                                     /* no header at all */
        "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = sizeof ss;
        CHECK_INT_CTX(srv_proxy_protocol_parse(bad[i], strlen(bad[i]), &ss, &len), -1, bad[i]);
    }
    char longline[200];   /* v1 headers are at most 107 bytes */
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "PROXY TCP4 ", 11);
    CHECK_INT(srv_proxy_protocol_parse(longline, sizeof longline, &ss, &len), -1);
}

static const char SIG[] = "\r\n\r\n\0\r\nQUIT\n";

static size_t v2(char *out, int cmd, int fam, const void *addr, size_t alen)
{
    memcpy(out, SIG, 12);
    out[12] = (char)(0x20 | cmd);
    out[13] = (char)fam;
    out[14] = (char)(alen >> 8);
    out[15] = (char)alen;
    memcpy(out + 16, addr, alen);
    return 16 + alen;
}

static void test_v2(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char h[256];
    unsigned char a4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
    size_t n = v2(h, 1, 0x11, a4, sizeof a4);          /* PROXY, TCP over IPv4 */
    CHECK_INT(parse(h, n, &ss, &len), (int)n);
    check_v4(&ss, "192.0.2.1", 0xdc04);
    unsigned char a4tlv[12 + 7];                       /* with a TLV after the addresses */
    memcpy(a4tlv, a4, 12);
    memcpy(a4tlv + 12, "\x04\x00\x04" "abcd", 7);
    n = v2(h, 1, 0x11, a4tlv, sizeof a4tlv);
    CHECK_INT(parse(h, n, &ss, &len), (int)n);
    memset(&ss, 0x55, sizeof ss);
    n = v2(h, 0, 0x00, "", 0);                         /* LOCAL: peer left alone */
    CHECK_INT(parse(h, n, &ss, &len), 16);
    CHECK_INT(((unsigned char *)&ss)[0], 0x55);
    unsigned char a6[36] = {0x20, 0x01, 0x0d, 0xb8};
    a6[15] = 1;
    a6[32] = 0x30;
    a6[33] = 0x39;
    n = v2(h, 1, 0x21, a6, sizeof a6);                 /* TCP over IPv6 */
    CHECK_INT(parse(h, n, &ss, &len), (int)n);
    CHECK_INT(((struct sockaddr_in6 *)&ss)->sin6_family, AF_INET6);
    CHECK_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 12345);
    n = v2(h, 1, 0x11, a4, 8);                         /* too short for IPv4 */
    CHECK_INT(srv_proxy_protocol_parse(h, n, &ss, &len), -1);
    n = v2(h, 1, 0x11, a4, sizeof a4);
    h[12] = 0x31;                                      /* version 3 */
    CHECK_INT(srv_proxy_protocol_parse(h, n, &ss, &len), -1);
    n = v2(h, 1, 0x11, a4, sizeof a4);
    h[12] = 0x2F;                                      /* command 15 */
    CHECK_INT(srv_proxy_protocol_parse(h, n, &ss, &len), -1);
}

static void test_forwarded_headers(void)
{
    const char *out;
    size_t n = srv_proxy_xff_last(S("203.0.113.7, 198.51.100.9 , 192.0.2.4 "), &out);
    CHECK_MEM(out, n, "192.0.2.4", 9);
    n = srv_proxy_xff_last(S("  "), &out);
    CHECK_INT(n, 0);
    const char *f, *proto;
    size_t flen, plen;
    srv_proxy_forwarded_last(S("for=192.0.2.1;proto=http, for=\"[2001:db8::1]:4711\";proto=https"),
                             &f, &flen, &proto, &plen);
    CHECK_MEM(f, flen, "2001:db8::1", 11);
    CHECK_MEM(proto, plen, "https", 5);
    srv_proxy_forwarded_last(S("by=10.0.0.1"), &f, &flen, &proto, &plen);
    CHECK_INT(flen, 0);
    CHECK_INT(plen, 0);
}

/* The allow list is parsed once, on first use. */
static void test_trusted(void)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    srv_cfg.forwarded_allow_ips = "127.0.0.1, 10.1.2.3,not-an-ip";
    inet_pton(AF_INET, "10.1.2.3", &a->sin_addr);
    CHECK_INT(srv_proxy_trusted(&ss), 1);
    CHECK_INT(warnings, 1);                               /* "not-an-ip" ignored */
    inet_pton(AF_INET, "10.1.2.4", &a->sin_addr);
    CHECK_INT(srv_proxy_trusted(&ss), 0);
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    CHECK_INT(srv_proxy_trusted(&ss), 1);                 /* unix peers always */
}

int main(void)
{
    test_v1();
    test_v2();
    test_forwarded_headers();
    test_trusted();
    return unit_report("proxy");
}
