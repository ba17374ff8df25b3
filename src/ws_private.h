/*
 * ws_private.h - what the WebSocket modules share, and nobody else sees.
 *
 * ws.c was one file; it is three now, around one object:
 *   ws_conn.c       the connection's side: output, input (frames through
 *                   ws_frame.c), waiting and waking, the srv_conn_handler
 *   ws_handshake.c  srv_ws_offer(), the 101, srv_ws_end()
 *   ws_object.c     the Python type (gevent-websocket's API) and the
 *                   WebSocketError class
 * Only these include this header.
 */
#ifndef SRV_WS_PRIVATE_H
#define SRV_WS_PRIVATE_H

#include "srv/conn.h"
#include "srv/hub.h"
#include "srv/ws.h"

#include <stdint.h>

#define WRITE_HIGH (64 * 1024)    /* send() waits above this many pending bytes */
#define WRITE_LOW (16 * 1024)     /* ... until the buffer drains below this */
#define MSG_KEEP (64 * 1024)      /* a bigger reassembly buffer is freed after its message */
#define CLOSE_REPLY_WAIT 5.0      /* how long messages read before a close may hold its reply */

extern PyObject *WebSocketError;   /* ws_object.c */

typedef struct ws_msg {
    struct ws_msg *next;
    PyObject *data;                /* owned: str or bytes */
    size_t size;
} ws_msg;

typedef struct WebSocketObject {
    PyObject_HEAD
    srv_conn *conn;                /* borrowed; NULL once the connection ended */
    PyObject *environ;             /* owned until the connection ends */
    PyObject *protocol;            /* owned str: the subprotocol app_protocol chose */
    char accept[32];               /* Sec-WebSocket-Accept */
    unsigned opened:1;             /* the 101 went out */
    unsigned refused:1;            /* the app answered with a normal response */
    unsigned close_sent:1;         /* no more frames after our close */
    unsigned close_received:1;
    unsigned read_done:1;          /* nothing more will be read */
    unsigned failed:1;             /* the socket failed or stalled */
    unsigned local_close:1;        /* the app or the server closed: no more messages */
    unsigned eof_given:1;          /* receive() has returned None once */
    unsigned paused:1;             /* reading stopped: the queue is full */
    unsigned out_paused:1;         /* reading stopped: the client does not read our pongs */
    unsigned shut:1;               /* our side of the TCP connection is shut */
    unsigned close_pending:1;      /* their close is in, our reply waits for the app */
    int close_code;                /* the code our reply carries */
    double close_at;               /* when their close came in */
    /* The frame being read. */
    unsigned in_frame:1;
    uint8_t frame_op;
    uint8_t frame_fin;
    uint8_t mask[4];
    unsigned mask_pos;
    uint64_t frame_left;
    /* The message being reassembled. */
    uint8_t msg_op;                /* SRV_WS_OP_TEXT, SRV_WS_OP_BINARY, or 0 between messages */
    char *msg;
    size_t msg_len, msg_cap;
    uint8_t ctl[125];              /* a control frame's payload */
    size_t ctl_len;
    /* Whole messages not yet received by the app. */
    ws_msg *qhead, *qtail;
    size_t qbytes;
    /* Frames not yet written. */
    char *out;
    size_t out_len, out_off, out_cap;
    double out_since;              /* last write progress while output is pending */
    /* Greenlets waiting, owned while they wait. */
    PyGreenlet *receiver;
    PyGreenlet **writers;
    int nwriters, cap_writers;
    ev_timer kick;                 /* resumes waiters from the loop; holds a reference */
    /* Sends the 101 on the app's first receive() or send(): ws_handshake.c's,
     * given at creation (the object never calls the handshake itself). */
    int (*open)(struct WebSocketObject *ws);
} WebSocketObject;

extern PyTypeObject WebSocketType;   /* ws_object.c */

/* ws_conn.c */
extern const srv_conn_handler ws_handler;
size_t ws_pending(const WebSocketObject *ws);
int ws_out_append(WebSocketObject *ws, const void *p, size_t n);
void ws_shut_if_done(WebSocketObject *ws);
int ws_flush_out(WebSocketObject *ws);
int ws_write_frame(WebSocketObject *ws, int opcode, const void *data, size_t len);
int ws_send_close(WebSocketObject *ws, int code, const char *reason, size_t rlen);
void ws_reply_to_close(WebSocketObject *ws);
void ws_start_kick(WebSocketObject *ws);
void ws_kick_init(WebSocketObject *ws);
int ws_wait_as_receiver(WebSocketObject *ws);
int ws_wait_for_output(WebSocketObject *ws, int all);
void ws_discard_queue(WebSocketObject *ws);
void ws_detach(srv_conn *c);


/* ws_object.c */
void ws_rebase_error(void);

#endif
