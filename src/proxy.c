/*
 * proxy.c - trusted proxies, forwarded headers and the PROXY protocol.
 *
 * The allow list is parsed on first use into binary addresses, so the check
 * for each request compares bytes, not strings.  Forwarded-header parsing
 * only finds spans; the caller decides what to do with them.  The PROXY
 * protocol parser accepts exactly the two formats of the specification
 * (v1: one text line of at most 107 bytes; v2: a 16-byte binary header and
 * its address block) and nothing else, so a client that skips the header
 * cannot smuggle a request past it.
 */
#include "srv/proxy.h"
#include "srv/config.h"
#include "srv/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

typedef struct {
    int family;
    unsigned char addr[16];
} allowed_ip;

static allowed_ip *allowed;
static int nallowed;
static int allow_all;
static int parsed;

static void parse_allow_list(void)
{
    parsed = 1;
    const char *list = srv_cfg.forwarded_allow_ips ? srv_cfg.forwarded_allow_ips : "";
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0) {
            allow_all = 1;
            continue;
        }
        allowed_ip ip = {0};
        if (inet_pton(AF_INET, tok, ip.addr) == 1)
            ip.family = AF_INET;
        else if (inet_pton(AF_INET6, tok, ip.addr) == 1)
            ip.family = AF_INET6;
        else {
            srv_warn("--forwarded-allow-ips: ignoring '%s' (not an IP address)", tok);
            continue;
        }
        allowed_ip *p = realloc(allowed, sizeof *p * (size_t)(nallowed + 1));
        if (p == NULL)
            break;
        allowed = p;
        allowed[nallowed++] = ip;
    }
    free(copy);
}

int srv_proxy_trusted(const struct sockaddr_storage *peer)
{
    if (!parsed)
        parse_allow_list();
    if (peer->ss_family == AF_UNIX)
        return 1;
    if (allow_all)
        return 1;
    const unsigned char *a;
    size_t len;
    if (peer->ss_family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
        len = 4;
    } else if (peer->ss_family == AF_INET6) {
        a = (const unsigned char *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
        len = 16;
    } else {
        return 0;
    }
    for (int i = 0; i < nallowed; i++)
        if (allowed[i].family == peer->ss_family && memcmp(allowed[i].addr, a, len) == 0)
            return 1;
    return 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

size_t srv_proxy_xff_last(const char *v, size_t n, const char **out)
{
    const char *comma = NULL;
    for (size_t i = n; i > 0; i--)
        if (v[i - 1] == ',') {
            comma = v + i - 1;
            break;
        }
    const char *p = comma ? comma + 1 : v;
    size_t len = (size_t)(v + n - p);
    trim(&p, &len);
    *out = p;
    return len;
}

/* A Forwarded node: "1.2.3.4", "\"[2001:db8::1]:4711\"", "1.2.3.4:80". */
static void clean_node(const char **p, size_t *n)
{
    if (*n >= 2 && (*p)[0] == '"' && (*p)[*n - 1] == '"') {
        (*p)++;
        *n -= 2;
    }
    if (*n > 0 && (*p)[0] == '[') {
        const char *close = memchr(*p, ']', *n);
        if (close) {
            *n = (size_t)(close - *p - 1);
            (*p)++;
        }
        return;
    }
    const char *colon = memchr(*p, ':', *n);
    if (colon && !memchr(colon + 1, ':', (size_t)(*p + *n - colon - 1)))
        *n = (size_t)(colon - *p);   /* IPv4 with a port */
}

void srv_proxy_forwarded_last(const char *v, size_t n, const char **for_, size_t *for_len,
                              const char **proto, size_t *proto_len)
{
    *for_len = *proto_len = 0;
    const char *elem = v;
    for (size_t i = n; i > 0; i--)
        if (v[i - 1] == ',') {
            elem = v + i;
            break;
        }
    const char *end = v + n, *p = elem;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi ? semi : end;
        const char *pp = p;
        size_t plen = (size_t)(pair_end - p);
        trim(&pp, &plen);
        const char *eq = memchr(pp, '=', plen);
        if (eq) {
            size_t klen = (size_t)(eq - pp);
            const char *val = eq + 1;
            size_t vlen = plen - klen - 1;
            if (klen == 3 && strncasecmp(pp, "for", 3) == 0) {
                clean_node(&val, &vlen);
                *for_ = val;
                *for_len = vlen;
            } else if (klen == 5 && strncasecmp(pp, "proto", 5) == 0) {
                if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
                    val++;
                    vlen -= 2;
                }
                *proto = val;
                *proto_len = vlen;
            }
        }
        p = pair_end + 1;
    }
}

/* ---- PROXY protocol ------------------------------------------------------ */

static const char v2_sig[12] = "\r\n\r\n\0\r\nQUIT\n";

static int parse_v1(const char *p, size_t n, struct sockaddr_storage *peer, socklen_t *peer_len)
{
    const size_t max = 107;
    const char *lf = memchr(p, '\n', n < max ? n : max);
    if (lf == NULL)
        return n >= max ? -1 : 0;
    size_t len = (size_t)(lf - p) + 1;
    if (len < 8 || p[len - 2] != '\r')
        return -1;
    char line[108];
    memcpy(line, p, len - 2);
    line[len - 2] = '\0';
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);          /* "PROXY" */
    char *proto = strtok_r(NULL, " ", &save);
    if (tok == NULL || strcmp(tok, "PROXY") != 0 || proto == NULL)
        return -1;
    if (strcmp(proto, "UNKNOWN") == 0)
        return (int)len;
    int family = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;
    char *src = strtok_r(NULL, " ", &save), *dst = strtok_r(NULL, " ", &save);
    char *sport = strtok_r(NULL, " ", &save), *dport = strtok_r(NULL, " ", &save);
    if (!family || !src || !dst || !sport || !dport || strtok_r(NULL, " ", &save))
        return -1;
    char *end;
    long port = strtol(sport, &end, 10);
    if (*end || port < 0 || port > 65535 || strtol(dport, &end, 10) < 0 || *end)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        struct in_addr tmp;
        if (inet_pton(AF_INET, src, &a->sin_addr) != 1 || inet_pton(AF_INET, dst, &tmp) != 1)
            return -1;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        *peer_len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        struct in6_addr tmp;
        if (inet_pton(AF_INET6, src, &a->sin6_addr) != 1 || inet_pton(AF_INET6, dst, &tmp) != 1)
            return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *peer_len = sizeof *a;
    }
    *peer = ss;
    return (int)len;
}

static int parse_v2(const unsigned char *p, size_t n, struct sockaddr_storage *peer,
                    socklen_t *peer_len)
{
    if (n < 16)
        return 0;
    int version = p[12] >> 4, command = p[12] & 0xf;
    int family = p[13] >> 4, transport = p[13] & 0xf;
    size_t len = 16 + (size_t)((p[14] << 8) | p[15]);
    if (version != 2 || command > 1)
        return -1;
    if (n < len)
        return 0;
    if (command == 0)          /* LOCAL: the balancer's own health check */
        return (int)len;
    if (transport != 1 && transport != 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (family == 1) {         /* AF_INET: src(4) dst(4) sport(2) dport(2) */
        if (len < 16 + 12)
            return -1;
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, p + 16, 4);
        memcpy(&a->sin_port, p + 24, 2);
        *peer = ss;
        *peer_len = sizeof *a;
    } else if (family == 2) {  /* AF_INET6: src(16) dst(16) sport(2) dport(2) */
        if (len < 16 + 36)
            return -1;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, p + 16, 16);
        memcpy(&a->sin6_port, p + 48, 2);
        *peer = ss;
        *peer_len = sizeof *a;
    }
    /* AF_UNSPEC or AF_UNIX: keep the socket's address. */
    return (int)len;
}

int srv_proxy_protocol_parse(const char *p, size_t n, struct sockaddr_storage *peer,
                             socklen_t *peer_len)
{
    if (n == 0)
        return 0;
    size_t k = n < 12 ? n : 12;
    if (memcmp(p, v2_sig, k) == 0)
        return n < 12 ? 0 : parse_v2((const unsigned char *)p, n, peer, peer_len);
    k = n < 6 ? n : 6;
    if (memcmp(p, "PROXY ", k) == 0)
        return n < 6 ? 0 : parse_v1(p, n, peer, peer_len);
    return -1;
}
