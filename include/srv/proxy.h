/*
 * proxy.h - running behind proxies and load balancers.
 *
 * Owns which peers are trusted to speak for the client (--forwarded-allow-
 * ips; unix-socket peers always are), reading the client's address and
 * scheme out of X-Forwarded-For, X-Forwarded-Proto and RFC 7239 Forwarded,
 * and the PROXY protocol v1/v2 header a TCP load balancer puts in front of
 * a connection (--proxy-protocol).  Pure parsing: no I/O, no Python.
 */
#ifndef SRV_PROXY_H
#define SRV_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* May this peer set REMOTE_ADDR and wsgi.url_scheme through headers? */
int srv_proxy_trusted(const struct sockaddr_storage *peer);

/* The last (rightmost) entry of an X-Forwarded-For list, trimmed.  Returns
 * its length (0 if none) and sets *out. */
size_t srv_proxy_xff_last(const char *v, size_t n, const char **out);

/* From the last element of a Forwarded header: the for= node (quotes,
 * brackets and port removed) and proto= value, as spans of v (length 0 when
 * absent). */
void srv_proxy_forwarded_last(const char *v, size_t n, const char **for_, size_t *for_len,
                              const char **proto, size_t *proto_len);

/* Parses a PROXY protocol v1 or v2 header at the start of p[0..n).  Returns
 * the header's length, 0 if more bytes are needed, or -1 if p does not start
 * with a valid header.  When the header carries the client's address, it is
 * stored in *peer and *peer_len; otherwise (UNKNOWN, LOCAL) they are left
 * alone. */
int srv_proxy_protocol_parse(const char *p, size_t n, struct sockaddr_storage *peer,
                             socklen_t *peer_len);

#endif
