/*
 * clock.c - monotonic time and dates written without the locale.
 *
 * gmtime_r() gives the fields; the names come from two tables here, and
 * the digits are written by hand, so the output depends on nothing but t.
 */
#include "srv/clock.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

double srv_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *put2(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

static char *put3(char *p, const char *s)
{
    *p++ = s[0];
    *p++ = s[1];
    *p++ = s[2];
    return p;
}

static char *put_year(char *p, int year)
{
    p = put2(p, year / 100);
    return put2(p, year % 100);
}

static char *put_hms(char *p, const struct tm *tm)
{
    p = put2(p, tm->tm_hour);
    *p++ = ':';
    p = put2(p, tm->tm_min);
    *p++ = ':';
    return put2(p, tm->tm_sec);
}

size_t srv_format_http_date(char *buf, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = put3(buf, days[tm.tm_wday % 7]);
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, tm.tm_mday);
    *p++ = ' ';
    p = put3(p, months[tm.tm_mon % 12]);
    *p++ = ' ';
    p = put_year(p, tm.tm_year + 1900);
    *p++ = ' ';
    p = put_hms(p, &tm);
    p = put3(p, " GM");
    *p++ = 'T';
    return (size_t)(p - buf);
}

size_t srv_format_clf_date(char *buf, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = put2(buf, tm.tm_mday);
    *p++ = '/';
    p = put3(p, months[tm.tm_mon % 12]);
    *p++ = '/';
    p = put_year(p, tm.tm_year + 1900);
    *p++ = ':';
    p = put_hms(p, &tm);
    p = put3(p, " +0");
    p = put3(p, "000");
    return (size_t)(p - buf);
}
