/*
 * http.c - the HTTP/1.x request state machine, on llhttp in strict mode.
 *
 * llhttp calls back with spans of the bytes it was given.  A span may arrive
 * in several pieces when the bytes came in several reads; since the read
 * buffer only ever grows while a head is being read, the pieces are adjacent
 * and we keep one (offset, length) pair per span.  Offsets rather than
 * pointers let the connection reallocate or compact its buffer between reads
 * (srv_http_shift).
 *
 * Parsing pauses at the end of every message, so a pipelined request is
 * never looked at before the response to the one ahead of it is complete,
 * and bytes of a body the app never read can be drained or refused instead of
 * being taken for a request.  Body bytes are decoded (de-chunked) into
 * req->body, where wsgi.input reads them.
 *
 * Limits are enforced in the callbacks, as the bytes arrive, so an oversized
 * head is refused before it is buffered whole.
 *
 * Two parts of a request are not llhttp's.  The request line is parsed by
 * reqline.c (any token is a method, raw non-ASCII bytes in a target are
 * taken, and each form of target is checked against its method); llhttp is
 * then fed a stand-in line of the same version, so that it parses the
 * header fields and the framing as always.  A chunked body is decoded by
 * chunked.c (chunk extensions with whitespace and quoted values, a bound on
 * them, and the fields a trailer must not carry): llhttp is told the message
 * has no body, and the decoder takes the bytes after the head.
 */
#include "srv/http.h"
#include "srv/clock.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/reqline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { CB_NONE, CB_FIELD, CB_VALUE };

/* Bytes of chunk extensions (with the size) on one line: more get 400. */
#define CHUNK_EXT_MAX 4096
/* A method longer than this gets 501. */
#define METHOD_MAX 64

static llhttp_settings_t settings;

static inline srv_request *req_of(llhttp_t *p)
{
    return (srv_request *)p;   /* parser is the first member */
}

static void eol_reset(srv_request *req);

static int fail(srv_request *req, int status, const char *why)
{
    req->error_status = status;
    req->error_reason = why;
    return HPE_USER;
}

/* Grows a span.  Pieces of one span arrive adjacent in the buffer; a piece
 * that is not adjacent means llhttp skipped bytes inside the span, which it
 * does for obs-fold (a header value continued on the next line).  RFC 9112
 * lets a server reject that, and srv does: a folded Content-Length or
 * Transfer-Encoding is a classic desync with front ends that do not unfold. */
static int extend(srv_request *req, srv_span *span, const char *at, size_t len)
{
    uint32_t off = (uint32_t)(at - req->base);
    if (span->len == 0)
        span->off = off;
    else if (off != span->off + span->len)
        return fail(req, 400, "obs-fold or a split field");
    span->len += (uint32_t)len;
    return 0;
}

static int grow_head(srv_request *req, size_t len)
{
    req->head_bytes += len;
    if (req->head_bytes > srv_cfg.max_header_size)
        return fail(req, 431, "request head too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    srv_request *req = req_of(p);
    req->method = (srv_span){0, 0};
    req->url = (srv_span){0, 0};
    req->nheaders = 0;
    req->last_cb = CB_NONE;
    req->head_bytes = 0;
    req->head_live = 1;
    req->headers_done = 0;
    req->message_done = 0;
    req->expect_continue = 0;
    req->chunked = 0;
    req->has_body = 0;
    req->error_status = 0;
    req->error_reason = NULL;
    req->body_seen = 0;
    req->msg_start = UINT32_MAX;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    srv_request *req = req_of(p);
    if (req->headers_done)
        return grow_head(req, len);   /* a chunked trailer: counted, never used */
    if (req->last_cb != CB_FIELD) {
        if (req->nheaders >= srv_cfg.max_headers)
            return fail(req, 431, "too many header fields");
        if (req->nheaders == req->headers_cap) {
            int cap = req->headers_cap ? req->headers_cap * 2 : 16;
            srv_header *h = realloc(req->headers, sizeof *h * (size_t)cap);
            if (h == NULL)
                return fail(req, 503, "out of memory");
            req->headers = h;
            req->headers_cap = cap;
        }
        req->headers[req->nheaders++] = (srv_header){{0, 0}, {0, 0}};
        req->last_cb = CB_FIELD;
    }
    if (extend(req, &req->headers[req->nheaders - 1].name, at, len))
        return HPE_USER;
    return grow_head(req, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    srv_request *req = req_of(p);
    /* llhttp hands an obs-folded value over with its CR LF inside. */
    if (memchr(at, '\n', len) || memchr(at, '\r', len))
        return fail(req, 400, "obs-fold in a field value");
    if (req->headers_done)
        return grow_head(req, len);   /* a chunked trailer: counted, never used */
    if (req->nheaders == 0 || req->last_cb == CB_NONE)
        return fail(req, 400, "header value without a name");
    req->last_cb = CB_VALUE;
    if (extend(req, &req->headers[req->nheaders - 1].value, at, len))
        return HPE_USER;
    return grow_head(req, len);
}

static int name_is(const srv_request *req, const srv_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name.len == n && strncasecmp(req->base + h->name.off, name, n) == 0;
}

/* Every coding listed in Transfer-Encoding must be "chunked": srv decodes no
 * other.  (llhttp has already checked that chunked comes last.) */
static int codings_supported(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > start && !(i - start == 7 && strncasecmp(v + start, "chunked", 7) == 0))
            return 0;
    }
    return 1;
}

static size_t trimmed_len(const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n;
}

static int check_head(srv_request *req, int http_minor)
{
    int hosts = 0;
    for (int i = 0; i < req->nheaders; i++) {
        const srv_header *h = &req->headers[i];
        const char *v = req->base + h->value.off;
        if (h->name.len == 0)
            return fail(req, 400, "empty header name");
        if (name_is(req, h, "transfer-encoding")) {
            if (http_minor == 0)
                return fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
            if (trimmed_len(v, h->value.len) == 0)
                return fail(req, 400, "empty Transfer-Encoding");
            if (!codings_supported(v, h->value.len))
                return fail(req, 501, "unsupported transfer coding");
        } else if (name_is(req, h, "host")) {
            if (++hosts > 1)
                return fail(req, 400, "more than one Host header");
            if (!srv_host_valid(v, trimmed_len(v, h->value.len)))
                return fail(req, 400, "invalid Host header");
        } else if (name_is(req, h, "expect")) {
            if (http_minor == 0)
                continue;   /* RFC 9110: ignored for HTTP/1.0 */
            size_t n = trimmed_len(v, h->value.len);
            if (n == 12 && strncasecmp(v, "100-continue", 12) == 0)
                req->expect_continue = 1;
            else
                return fail(req, 417, "unsupported expectation");
        }
    }
    if (http_minor == 1 && hosts == 0)
        return fail(req, 400, "HTTP/1.1 request without Host");
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    srv_request *req = req_of(p);
    /* The version was checked with the request line (reqline.c, 505), and
     * req->http_minor set there; llhttp saw a stand-in line of it. */
    if (check_head(req, req->http_minor))
        return -1;
    req->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
    req->chunked = (p->flags & F_CHUNKED) ? 1 : 0;
    /* What follows a CONNECT is tunnel data, never another request. */
    if (p->method == HTTP_CONNECT)
        req->keep_alive = 0;
    if (p->flags & F_CONTENT_LENGTH) {
        if (p->content_length > srv_cfg.max_body) {
            fail(req, 413, "request body too large");
            return -1;
        }
        req->has_body = p->content_length > 0;
    }
    req->upgrade = p->upgrade && p->method != HTTP_CONNECT;
    req->headers_done = 1;
    if (req->chunked) {
        /* The body is chunked.c's: llhttp sees a message without one. */
        req->has_body = 1;
        req->in_chunked = 1;
        srv_chunked_init(&req->chunked_body, srv_cfg.max_body, CHUNK_EXT_MAX,
                         srv_cfg.max_header_size, (unsigned)srv_cfg.max_headers);
        return 1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    srv_request *req = req_of(p);
    req->body_seen += len;
    if (req->body_seen > srv_cfg.max_body)
        return fail(req, 413, "request body too large");
    if (srv_buf_append(&req->body, at, len) < 0)
        return fail(req, 503, "out of memory");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    srv_request *req = req_of(p);
    if (!req->in_chunked)
        req->message_done = 1;   /* else it ends with the decoder */
    return HPE_PAUSED;
}

/* Reason phrases of RFC 9110 and the registered extensions (the same as
 * Python's http.HTTPStatus, which apps use). */
static const char *const reasons[600] = {
    [100] = "Continue",
    [101] = "Switching Protocols",
    [102] = "Processing",
    [103] = "Early Hints",
    [200] = "OK",
    [201] = "Created",
    [202] = "Accepted",
    [203] = "Non-Authoritative Information",
    [204] = "No Content",
    [205] = "Reset Content",
    [206] = "Partial Content",
    [207] = "Multi-Status",
    [208] = "Already Reported",
    [226] = "IM Used",
    [300] = "Multiple Choices",
    [301] = "Moved Permanently",
    [302] = "Found",
    [303] = "See Other",
    [304] = "Not Modified",
    [305] = "Use Proxy",
    [307] = "Temporary Redirect",
    [308] = "Permanent Redirect",
    [400] = "Bad Request",
    [401] = "Unauthorized",
    [402] = "Payment Required",
    [403] = "Forbidden",
    [404] = "Not Found",
    [405] = "Method Not Allowed",
    [406] = "Not Acceptable",
    [407] = "Proxy Authentication Required",
    [408] = "Request Timeout",
    [409] = "Conflict",
    [410] = "Gone",
    [411] = "Length Required",
    [412] = "Precondition Failed",
    [413] = "Request Entity Too Large",
    [414] = "Request-URI Too Long",
    [415] = "Unsupported Media Type",
    [416] = "Requested Range Not Satisfiable",
    [417] = "Expectation Failed",
    [418] = "I'm a Teapot",
    [421] = "Misdirected Request",
    [422] = "Unprocessable Entity",
    [423] = "Locked",
    [424] = "Failed Dependency",
    [425] = "Too Early",
    [426] = "Upgrade Required",
    [428] = "Precondition Required",
    [429] = "Too Many Requests",
    [431] = "Request Header Fields Too Large",
    [451] = "Unavailable For Legal Reasons",
    [500] = "Internal Server Error",
    [501] = "Not Implemented",
    [502] = "Bad Gateway",
    [503] = "Service Unavailable",
    [504] = "Gateway Timeout",
    [505] = "HTTP Version Not Supported",
    [506] = "Variant Also Negotiates",
    [507] = "Insufficient Storage",
    [508] = "Loop Detected",
    [510] = "Not Extended",
    [511] = "Network Authentication Required",
};

void srv_http_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

const char *srv_http_reason(int status)
{
    if (status >= 100 && status < 600 && reasons[status])
        return reasons[status];
    return "Unknown";
}

void srv_request_init(srv_request *req)
{
    memset(req, 0, sizeof *req);
    llhttp_init(&req->parser, HTTP_REQUEST, &settings);
    eol_reset(req);
}

void srv_request_free(srv_request *req)
{
    free(req->headers);
    req->headers = NULL;
    req->headers_cap = 0;
    srv_buf_release(&req->body);
}

void srv_request_next(srv_request *req)
{
    eol_reset(req);
    req->line_done = 0;
    req->in_chunked = 0;
    req->headers_done = 0;
    req->message_done = 0;
    req->head_live = 0;
    req->upgrade = 0;
    req->body_pos = 0;
    srv_buf_release(&req->body);   /* back to the pool */
}

static void eol_reset(srv_request *req)
{
    req->eol_prev_cr = 0;
    req->eol_line_empty = 1;
    req->eol_seen_line = 0;
    req->eol_done = 0;
}

/* Every line of a request head must end in CRLF (RFC 9112 2.2 lets a server
 * take a bare LF; srv does not, since a proxy in front may split lines
 * differently), and no header line may begin with whitespace (obs-fold,
 * which llhttp 8.1 accepts).  Scans p[0..n) until the empty line that ends
 * the head; returns -1 at a bare LF or a fold. */
static int check_line_endings(srv_request *req, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !req->eol_done) {
        /* At the start of a line: whitespace there is a fold. */
        if (req->eol_line_empty && !req->eol_prev_cr && req->eol_seen_line
            && (p[i] == ' ' || p[i] == '\t'))
            return -1;
        const char *lf = memchr(p + i, '\n', n - i);
        if (lf == NULL) {
            /* The line goes on in the next read. */
            for (size_t k = i; k < n && req->eol_line_empty; k++)
                if (p[k] != '\r')
                    req->eol_line_empty = 0;
            req->eol_prev_cr = p[n - 1] == '\r';
            return 0;
        }
        size_t j = (size_t)(lf - p);
        int cr = j > i ? p[j - 1] == '\r' : req->eol_prev_cr;
        if (!cr)
            return -1;   /* a bare LF */
        int empty = req->eol_line_empty && (j - i <= 1);
        if (empty && req->eol_seen_line)
            req->eol_done = 1;   /* the empty line: the body may follow */
        if (!empty)
            req->eol_seen_line = 1;
        req->eol_line_empty = 1;
        req->eol_prev_cr = 0;
        i = j + 1;
    }
    return 0;
}

/* Feeds rbuf[*pos..] to llhttp: header fields, and a Content-Length body. */
static int feed_llhttp(srv_request *req, srv_buf *rbuf, size_t *pos)
{
    const char *start = rbuf->data + *pos;
    if (!req->eol_done && check_line_endings(req, start, rbuf->len - *pos) < 0) {
        req->error_status = 400;
        req->error_reason = "bare LF or obs-fold in the request head";
        return SRV_PARSE_ERROR;
    }
    llhttp_errno_t err = llhttp_execute(&req->parser, start, rbuf->len - *pos);
    if (err == HPE_OK) {
        *pos = rbuf->len;
    } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        *pos += (size_t)(llhttp_get_error_pos(&req->parser) - start);
        /* After a request asking for an Upgrade srv does not perform, llhttp
         * would take what follows for the new protocol; srv answers such a
         * request as a plain one, so HTTP/1.1 goes on after it.  (CONNECT
         * never gets here with the connection kept: see
         * on_headers_complete.) */
        if (err == HPE_PAUSED_UPGRADE || llhttp_get_upgrade(&req->parser))
            llhttp_reset(&req->parser);
        else
            llhttp_resume(&req->parser);
    } else {
        if (err == HPE_INVALID_VERSION)
            req->error_status = 505;
        else if (err == HPE_INVALID_TRANSFER_ENCODING)
            req->error_status = 501;
        else if (req->error_status == 0 || (err != HPE_USER && err != HPE_CB_HEADERS_COMPLETE))
            req->error_status = 400;
        if (req->error_reason == NULL || (err != HPE_USER && err != HPE_CB_HEADERS_COMPLETE))
            req->error_reason = llhttp_get_error_reason(&req->parser);
        return SRV_PARSE_ERROR;
    }
    return SRV_PARSE_MORE;
}

/* The llhttp method number of a method name, or SRV_METHOD_OTHER. */
static uint8_t method_id_of(const char *m, size_t len)
{
#define SRV_METHOD_MATCH(num, name, string) \
    if (len == sizeof #string - 1 && memcmp(m, #string, len) == 0) \
        return (uint8_t)(num);
    HTTP_METHOD_MAP(SRV_METHOD_MATCH)
#undef SRV_METHOD_MATCH
    return SRV_METHOD_OTHER;
}

static void set_span(srv_span *span, size_t base, size_t off, size_t len)
{
    span->off = (uint32_t)(base + off);
    span->len = (uint32_t)len;
}

/* Parses the request line at rbuf[*pos..], then feeds llhttp a stand-in
 * line of the same version (CONNECT keeps its own semantics there).
 * Returns 1 once the line is done, 0 for more bytes, -1 on error. */
static int feed_request_line(srv_request *req, srv_buf *rbuf, size_t *pos)
{
    long skip = srv_reqline_skip_empty(rbuf->data + *pos, rbuf->len - *pos);
    if (skip < 0) {
        fail(req, 400, "bare LF before the request line");
        return -1;
    }
    *pos += (size_t)skip;
    const char *line = rbuf->data + *pos;
    srv_reqline rl;
    const srv_reqline_limits lim = {srv_cfg.max_uri, METHOD_MAX};
    const char *why = NULL;
    int r = srv_reqline_parse(line, rbuf->len - *pos, &lim, &rl, &why);
    if (r == SRV_REQLINE_MORE)
        return 0;
    if (r != SRV_REQLINE_DONE) {
        fail(req, r, why);
        return -1;
    }
    uint8_t method = method_id_of(line, rl.method_len);
    static const char *const stand_in[2][2] = {
        {"GET / HTTP/1.0\r\n", "GET / HTTP/1.1\r\n"},
        {"CONNECT a:1 HTTP/1.0\r\n", "CONNECT a:1 HTTP/1.1\r\n"},
    };
    const char *sl = stand_in[method == HTTP_CONNECT][rl.http_minor];
    if (llhttp_execute(&req->parser, sl, strlen(sl)) != HPE_OK) {
        fail(req, 400, "request after the end of the connection");
        return -1;
    }
    /* on_message_begin has run: the head starts here. */
    req->method_id = method;
    req->http_minor = (uint8_t)rl.http_minor;
    req->target_form = (uint8_t)rl.form;
    req->msg_start = (uint32_t)*pos;
    set_span(&req->method, *pos, 0, rl.method_len);
    set_span(&req->url, *pos, rl.target_off, rl.target_len);
    set_span(&req->path, *pos, rl.path_off, rl.path_len);
    set_span(&req->authority, *pos, rl.authority_off, rl.authority_len);
    req->line_done = 1;
    *pos += rl.line_len;
    /* The next byte starts a header line. */
    req->eol_seen_line = 1;
    return grow_head(req, rl.line_len) ? -1 : 1;
}

static int body_sink(void *ctx, const char *p, size_t n)
{
    srv_request *req = ctx;
    req->body_seen += n;
    return srv_buf_append(&req->body, p, n) < 0 ? 503 : 0;
}

/* Decodes chunked body bytes at rbuf[*pos..]. */
static int feed_chunked(srv_request *req, srv_buf *rbuf, size_t *pos)
{
    size_t used = 0;
    const char *why = NULL;
    int r = srv_chunked_decode(&req->chunked_body, rbuf->data + *pos, rbuf->len - *pos,
                               &used, body_sink, req, &why);
    *pos += used;
    if (r == SRV_CHUNKED_DONE) {
        req->in_chunked = 0;
        req->message_done = 1;
    } else if (r != SRV_CHUNKED_MORE) {
        fail(req, r, r == 503 ? "out of memory" : why);
        return SRV_PARSE_ERROR;
    }
    return SRV_PARSE_MORE;
}

int srv_http_feed(srv_request *req, srv_buf *rbuf, size_t *pos)
{
    if (*pos >= rbuf->len || req->message_done)
        return SRV_PARSE_MORE;
    int head_was_done = req->headers_done;
    req->base = rbuf->data;
    if (!req->line_done) {
        int r = feed_request_line(req, rbuf, pos);
        if (r <= 0)
            return r < 0 ? SRV_PARSE_ERROR : SRV_PARSE_MORE;
    }
    if (!req->in_chunked && *pos < rbuf->len) {
        int r = feed_llhttp(req, rbuf, pos);
        if (r != SRV_PARSE_MORE)
            return r;
    }
    if (req->in_chunked && *pos < rbuf->len && feed_chunked(req, rbuf, pos) != SRV_PARSE_MORE)
        return SRV_PARSE_ERROR;
    if (!head_was_done && req->headers_done)
        return SRV_PARSE_HEAD_DONE;
    return SRV_PARSE_MORE;
}

size_t srv_http_keep_from(const srv_request *req, size_t pos)
{
    if (req->head_live && req->msg_start < pos)
        return req->msg_start;
    return pos;
}

void srv_http_shift(srv_request *req, uint32_t delta)
{
    if (!req->head_live)
        return;
    if (req->msg_start != UINT32_MAX)
        req->msg_start -= delta;
    if (req->method.len)
        req->method.off -= delta;
    if (req->url.len)
        req->url.off -= delta;
    if (req->path.len)
        req->path.off -= delta;
    if (req->authority.len)
        req->authority.off -= delta;
    for (int i = 0; i < req->nheaders; i++) {
        if (req->headers[i].name.len)
            req->headers[i].name.off -= delta;
        if (req->headers[i].value.len)
            req->headers[i].value.off -= delta;
    }
}

size_t srv_http_error_response(char *buf, size_t size, int status, int keep_alive, double now)
{
    return srv_http_error_response_with(buf, size, status, keep_alive, now, "", NULL);
}

size_t srv_http_error_response_with(char *buf, size_t size, int status, int keep_alive,
                                    double now, const char *extra_headers, const char *text)
{
    size_t dlen;
    const char *date = srv_http_date_header(now, &dlen);
    const char *reason = srv_http_reason(status);
    char body[256];
    int blen = text ? snprintf(body, sizeof body, "%s\n", text)
                    : snprintf(body, sizeof body, "%d %s\n", status, reason);
    if (blen < 0 || (size_t)blen >= sizeof body)
        blen = (int)strlen(body);
    int n = snprintf(buf, size,
                     "HTTP/1.1 %d %s\r\n"
                     "%.*s"
                     "%s"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %d\r\n"
                     "%s"
                     "%s"
                     "\r\n"
                     "%s",
                     status, reason, (int)dlen, date,
                     srv_cfg.server_header ? "Server: srv\r\n" : "",
                     blen, extra_headers, keep_alive ? "" : "Connection: close\r\n", body);
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

const char *srv_http_date_header(double now, size_t *len)
{
    static time_t cached_sec = -1;
    static char cached[64];
    static size_t cached_len;
    time_t sec = (time_t)now;
    if (sec != cached_sec) {
        memcpy(cached, "Date: ", 6);
        size_t n = 6 + srv_format_http_date(cached + 6, sec);
        memcpy(cached + n, "\r\n", 2);
        cached_len = n + 2;
        cached_sec = sec;
    }
    *len = cached_len;
    return cached;
}

size_t srv_http_chunk_header(char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[20];
    size_t i = 0;
    do {
        tmp[i++] = hex[n & 15];
        n >>= 4;
    } while (n);
    size_t len = 0;
    while (i)
        buf[len++] = tmp[--i];
    buf[len++] = '\r';
    buf[len++] = '\n';
    return len;
}
