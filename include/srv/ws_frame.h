/*
 * ws_frame.h - the WebSocket (RFC 6455) codec, apart from any I/O: pure
 * code, no Python, no libev.
 *
 * Owns the rules a server applies to client frames (section 5): the header
 * checks (mask, RSV bits, opcodes, control frames, the order of fragments,
 * length encodings, the message size limit), unmasking, the headers of the
 * frames srv sends, close codes and reasons, UTF-8 validation, and the
 * handshake's Sec-WebSocket-Key check and Sec-WebSocket-Accept value.  It
 * returns errors (a close code and a reason); the caller acts on them.
 */
#ifndef SRV_WS_FRAME_H
#define SRV_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    SRV_WS_OP_CONT = 0x0, SRV_WS_OP_TEXT = 0x1, SRV_WS_OP_BINARY = 0x2,
    SRV_WS_OP_CLOSE = 0x8, SRV_WS_OP_PING = 0x9, SRV_WS_OP_PONG = 0xA,
};

/* A client frame's header, parsed. */
typedef struct srv_ws_frame {
    uint8_t opcode;
    uint8_t fin;
    uint8_t mask[4];
    uint64_t len;            /* payload bytes */
} srv_ws_frame;

/* What a frame header is checked against: whether a fragmented message is
 * in progress, how many bytes it has so far, and the largest message. */
typedef struct srv_ws_limits {
    int in_message;
    uint64_t msg_len;
    uint64_t max_message;
} srv_ws_limits;

/* Parses the client frame header at p[0..n).  Returns the header's size,
 * 0 when more bytes are needed, or -1 with *code (1002, or 1009 for a
 * message over the limit) and *why set. */
ssize_t srv_ws_parse_header(const uint8_t *p, size_t n, const srv_ws_limits *lim,
                            srv_ws_frame *f, int *code, const char **why);

/* XORs n payload bytes from src into dst; *pos is the offset in the 4-byte
 * mask, carried from one call to the next. */
void srv_ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                   unsigned *pos);

/* Writes the header of an unmasked final frame (what a server sends) into h
 * (at least 10 bytes); returns its size. */
size_t srv_ws_frame_header(uint8_t *h, int opcode, uint64_t len);

/* May an endpoint send this close code (1000-1003, 1007-1014, 3000-4999)? */
int srv_ws_close_code_valid(int code);

/* Is p[0..n) well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF)? */
int srv_ws_utf8_valid(const uint8_t *p, size_t n);

/* The length of the longest prefix of s[0..n), at most max bytes, that
 * does not end inside a UTF-8 character. */
size_t srv_ws_utf8_cut(const char *s, size_t n, size_t max);

/* Is key the base64 form of 16 bytes (RFC 6455 4.2.1, item 5)? */
int srv_ws_key_valid(const char *key, size_t n);

/* Sec-WebSocket-Accept for a valid 24-byte key: 28 characters and a NUL. */
void srv_ws_accept(const char *key, char out[29]);

#endif
