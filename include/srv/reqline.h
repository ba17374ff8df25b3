/*
 * reqline.h - the HTTP/1.x request line, its request target and the Host
 * field value, apart from any I/O: pure code, no Python, no libev.
 *
 * Owns the grammar of RFC 9112 section 3 ("method SP request-target SP
 * HTTP-version"), the four forms of request target of section 3.2 and which
 * method each is allowed with, and the syntax of a Host value (RFC 9110
 * 7.2 and RFC 3986 3.2.2).  srv parses the request line itself rather than
 * through llhttp so that any token is a method (PEP 3333 leaves methods to
 * the app) and raw non-ASCII bytes in a target are taken as nginx and
 * gunicorn take them; llhttp still parses the header fields and the framing.
 */
#ifndef SRV_REQLINE_H
#define SRV_REQLINE_H

#include <stddef.h>
#include <stdint.h>

enum srv_target_form {
    SRV_TARGET_ORIGIN,     /* /path?query */
    SRV_TARGET_ABSOLUTE,   /* http://authority/path?query */
    SRV_TARGET_AUTHORITY,  /* host:port, CONNECT only */
    SRV_TARGET_ASTERISK,   /* *, OPTIONS only */
};

/* Offsets are relative to the start of the request line. */
typedef struct srv_reqline {
    size_t method_len;        /* the method starts at 0 */
    size_t target_off, target_len;
    size_t path_off, path_len;            /* path and query, no authority */
    size_t authority_off, authority_len;  /* absolute- and authority-form */
    int form;                 /* enum srv_target_form */
    int http_minor;           /* 0 or 1 (the major is always 1) */
    size_t line_len;          /* up to and including the CRLF */
} srv_reqline;

/* Limits the caller sets; a line that exceeds them is refused early. */
typedef struct srv_reqline_limits {
    size_t max_target;        /* longer targets get 414 */
    size_t max_method;        /* longer methods get 501 */
} srv_reqline_limits;

enum {
    SRV_REQLINE_MORE = 0,     /* no complete line yet, nothing wrong so far */
    SRV_REQLINE_DONE = 1,     /* *out describes a valid line */
};

/* Parses the request line at p[0..n), which may be incomplete.  Returns
 * SRV_REQLINE_DONE, SRV_REQLINE_MORE, or an HTTP status (400, 414, 501, 505)
 * with *why saying what was wrong.  Leading empty lines (CRLF) must already
 * have been skipped (srv_reqline_skip_empty). */
int srv_reqline_parse(const char *p, size_t n, const srv_reqline_limits *lim,
                      srv_reqline *out, const char **why);

/* Counts the bytes of CRLF pairs at the start of p[0..n) that RFC 9112 2.2
 * lets a server skip before a request line.  Returns -1 at a bare LF. */
long srv_reqline_skip_empty(const char *p, size_t n);

/* Is v[0..n) a valid Host field value: uri-host [ ":" port ], or empty? */
int srv_host_valid(const char *v, size_t n);

/* The length of the host part of an authority (without ":port"). */
size_t srv_authority_host_len(const char *a, size_t n);

/* Is c a token character (RFC 9110 5.6.2)? */
int srv_is_tchar(unsigned char c);

#endif
