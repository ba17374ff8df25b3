/*
 * http.h - HTTP/1.x parsing and framing, apart from any I/O.
 *
 * Owns the request state machine (llhttp in strict mode, fed incrementally
 * from a connection's read buffer), the limits on a request head, the mapping
 * of parse errors to status codes, the decoded request body, and the bytes of
 * what srv writes: error responses, the cached Date header, chunk framing.
 * Header spans are kept as offsets into the read buffer, so the buffer may
 * move between reads; they stay valid until srv_http_release_head().
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stdint.h>
#include <stddef.h>
#include <strings.h>

#include <llhttp.h>

#include "srv/buffer.h"
#include "srv/chunked.h"

typedef struct srv_span {
    uint32_t off;
    uint32_t len;
} srv_span;

typedef struct srv_header {
    srv_span name;
    srv_span value;
} srv_header;

/* method_id of a method llhttp does not know: passed to the app as sent. */
#define SRV_METHOD_OTHER 255

typedef struct srv_request {
    llhttp_t parser;
    const char *base;         /* the read buffer's data during a feed */
    /* The head: offsets into the connection's read buffer. */
    uint32_t msg_start;
    srv_span method;
    srv_span url;             /* the whole request target */
    srv_span path;            /* path and query of the target */
    srv_span authority;       /* absolute- or authority-form, else empty */
    uint8_t target_form;      /* enum srv_target_form (reqline.h) */
    srv_header *headers;
    int nheaders;
    int headers_cap;
    int last_cb;              /* which span the parser fed last */
    size_t head_bytes;        /* size of the head so far, for 431 */
    unsigned head_live:1;     /* spans above point at live bytes */
    unsigned headers_done:1;
    unsigned message_done:1;
    unsigned keep_alive:1;    /* llhttp_should_keep_alive() at head end */
    unsigned expect_continue:1;
    unsigned chunked:1;
    unsigned has_body:1;
    unsigned upgrade:1;       /* the head asked for an Upgrade (see ws_handshake.c) */
    unsigned line_done:1;     /* the request line has been parsed */
    unsigned in_chunked:1;    /* srv's own decoder is reading the body */
    uint8_t http_minor;
    uint8_t method_id;        /* llhttp_method_t; kept here because an
                                 upgrade resets the parser */
    /* Line-ending check of the head (llhttp 8.1 takes a bare LF). */
    unsigned eol_prev_cr:1;
    unsigned eol_line_empty:1;
    unsigned eol_seen_line:1;
    unsigned eol_done:1;
    int error_status;         /* status to answer a parse error with */
    const char *error_reason; /* for the log */
    uint64_t body_seen;       /* body bytes decoded so far */
    srv_chunked chunked_body; /* the decoder of a chunked body */
    srv_buf body;             /* decoded body bytes not yet read by the app */
    size_t body_pos;          /* read position in body */
} srv_request;

enum srv_parse_result {
    SRV_PARSE_MORE,           /* need more bytes */
    SRV_PARSE_HEAD_DONE,      /* a request head is complete */
    SRV_PARSE_ERROR,          /* answer with req->error_status and close */
};

void srv_http_init(void);
void srv_request_init(srv_request *req);
void srv_request_free(srv_request *req);

/* Prepares for the next request on the same connection. */
void srv_request_next(srv_request *req);

/* Feeds the unparsed bytes rbuf[*pos..len) to the parser and advances *pos.
 * Stops after a complete head (once per request) and at the end of a message.
 * Body bytes are appended to req->body. */
int srv_http_feed(srv_request *req, srv_buf *rbuf, size_t *pos);

/* The head's spans are no longer needed (the environ has been built). */
static inline void srv_http_release_head(srv_request *req) { req->head_live = 0; }

/* Bytes of rbuf before this offset are no longer needed by the request. */
size_t srv_http_keep_from(const srv_request *req, size_t pos);

/* rbuf lost its first `delta` bytes: adjust the spans. */
void srv_http_shift(srv_request *req, uint32_t delta);

/* Writes a complete plain-text error response for `status` into buf and
 * returns its length.  With keep_alive zero it says "Connection: close". */
size_t srv_http_error_response(char *buf, size_t size, int status, int keep_alive,
                               double now);

/* The same with more header lines (whole "Name: value\r\n" lines, or "")
 * and a body of `text` plus a newline (NULL: "<status> <reason>"). */
size_t srv_http_error_response_with(char *buf, size_t size, int status, int keep_alive,
                                    double now, const char *extra_headers, const char *text);

/* "Date: ...\r\n" for the current second, cached; `now` is epoch seconds. */
const char *srv_http_date_header(double now, size_t *len);

/* Writes "%zx\r\n" for a chunk of n bytes into buf (at least 20 bytes);
 * returns the length. */
size_t srv_http_chunk_header(char *buf, size_t n);

/* Is the field name name[0..n) `lower` (a lower-case string literal),
 * compared as field names are, without case? */
#define SRV_FIELD_NAME_IS(name, n, lower) \
    ((size_t)(n) == sizeof(lower) - 1 && strncasecmp((name), (lower), sizeof(lower) - 1) == 0)

/* The reason phrase for a status code (RFC 9110 and the registered
 * extensions, as Python's http.HTTPStatus has them), or "Unknown". */
const char *srv_http_reason(int status);

#endif
