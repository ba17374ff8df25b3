/*
 * pathinfo.h - PATH_INFO and QUERY_STRING from a request target's path:
 * pure code, no Python, no libev.
 *
 * Owns where the path of a target ends (at '?', or at a '#' that a client
 * sent although it should not) and the percent-decoding of the path into
 * PATH_INFO's bytes, which environ.c turns into a latin-1 str (PEP 3333).
 * reqline.c has already checked the target and split off any scheme and
 * authority (absolute-form).
 */
#ifndef SRV_PATHINFO_H
#define SRV_PATHINFO_H

#include <stddef.h>

typedef struct srv_pathinfo_parts {
    size_t path_len;      /* the path is p[0..path_len) */
    const char *query;    /* what follows '?' (up to any '#'), or NULL */
    size_t query_len;
} srv_pathinfo_parts;

/* Splits the path-and-query p[0..n): a '#' ends it, the first '?' before
 * that ends the path. */
void srv_pathinfo_split(const char *p, size_t n, srv_pathinfo_parts *out);

/* Percent-decodes the path p[0..n) into out, which has room for n bytes,
 * and returns the decoded length.  "%" and two hex digits (either case)
 * become that byte, %00 included; a '%' without two hex digits after it
 * stays as it is; '+' is not a space (that is a query's convention); no
 * byte is decoded twice.  A path without '%' decodes to itself, so callers
 * can skip the copy then. */
size_t srv_pathinfo_decode(const char *p, size_t n, char *out);

#endif
