/*
 * hdrkey.h - the CGI environ key of an HTTP request header field: pure
 * code, no Python, no libev.
 *
 * Owns the mapping from a field name to its environ key (PEP 3333 and CGI,
 * RFC 3875 4.1.18): "HTTP_" and the name upper-cased with '-' turned into
 * '_', except Content-Type and Content-Length, which become CONTENT_TYPE and
 * CONTENT_LENGTH; the rule that a field whose name holds '_' is dropped from
 * the environ (it could pass for the '-' field of the same key, as nginx
 * also rules); and how repeated fields are joined.  environ.c keeps the
 * cache of interned Python keys made from these bytes; the access log maps
 * its %{Name}i directives with the same function.
 */
#ifndef SRV_HDRKEY_H
#define SRV_HDRKEY_H

#include <stddef.h>

enum srv_hdrkey_kind {
    SRV_HDRKEY_HTTP,            /* HTTP_<NAME> */
    SRV_HDRKEY_CONTENT_TYPE,    /* CONTENT_TYPE */
    SRV_HDRKEY_CONTENT_LENGTH,  /* CONTENT_LENGTH */
    SRV_HDRKEY_DROP,            /* the name holds '_': not in the environ */
};

/* The most bytes the key of an n-byte name takes: "HTTP_" and the name. */
#define SRV_HDRKEY_MAX(n) ((n) + 5)

/* Writes the environ key of the field name[0..n) to out, which has room for
 * SRV_HDRKEY_MAX(n) bytes, and its length to *keylen; returns its kind.  A
 * SRV_HDRKEY_DROP name still gets its HTTP_ key (the access log looks such
 * keys up: the environ may hold them from a '-' field).  Only ASCII letters
 * are upper-cased; other bytes are kept as they are. */
int srv_hdrkey_make(const char *name, size_t n, char *out, size_t *keylen);

/* What joins the values of a repeated field in its environ value: "; " for
 * Cookie (RFC 9113 8.2.3 and what WSGI apps expect of HTTP_COOKIE), ","
 * for every other field (RFC 9110 5.3). */
const char *srv_hdrkey_separator(const char *name, size_t n);

#endif
