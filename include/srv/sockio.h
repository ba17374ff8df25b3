/*
 * sockio.h - the two calls that move bytes over a connected socket.
 *
 * Owns nothing but the way srv reads and writes a socket without waiting:
 * EINTR is retried, SIGPIPE is never raised (MSG_NOSIGNAL), and otherwise
 * the system call's answer is returned as it is: n > 0 bytes moved, 0 the
 * peer closed (recv), -1 with errno, where EAGAIN/EWOULDBLOCK means "not
 * now" and anything else means the connection is gone.  Pure: no Python,
 * no event loop, no counting; callers count what they moved.
 */
#ifndef SRV_SOCKIO_H
#define SRV_SOCKIO_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Reads up to len bytes from fd. */
static inline ssize_t srv_sock_recv(int fd, void *buf, size_t len)
{
    ssize_t n;
    do {
        n = recv(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Writes what iov[0..iovcnt) holds (at most IOV_MAX entries of it) to fd;
 * returns how many bytes went, which may be fewer than asked. */
static inline ssize_t srv_sock_send(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {0};
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)(iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
    ssize_t n;
    do {
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

#endif
