/*
 * clock.h - time: the monotonic clock and locale-free date formats.
 *
 * Owns how srv reads monotonic time and how it writes dates: the HTTP date
 * of RFC 9110 5.6.7 (IMF-fixdate) and the access log's common log format.
 * Day and month names are English whatever LC_TIME says (an app may call
 * setlocale()); strftime's %a and %b are never used.  Pure code: no Python,
 * no libev.
 */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

#include <stddef.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
double srv_monotonic(void);

/* Length of what the formatters below write, without a terminating NUL. */
#define SRV_HTTP_DATE_LEN 29   /* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define SRV_CLF_DATE_LEN 26    /* "06/Nov/1994:08:49:37 +0000" */

/* Writes t (UTC) as an IMF-fixdate into buf, which has room for at least
 * SRV_HTTP_DATE_LEN bytes; returns SRV_HTTP_DATE_LEN. */
size_t srv_format_http_date(char *buf, time_t t);

/* Writes t (UTC) in the common log format's date form; returns
 * SRV_CLF_DATE_LEN. */
size_t srv_format_clf_date(char *buf, time_t t);

#endif
