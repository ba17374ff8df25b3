/*
 * test_clock.c - unit tests for src/clock.c: the HTTP date (IMF-fixdate,
 * RFC 9110 5.6.7) and the access log's date, checked against dates worked
 * out by hand and against the C library in the C locale for every day of
 * several years, whatever LC_TIME the process has.  Linked with
 * src/clock.c only.
 */
#include "srv/clock.h"
#include "unit.h"

#include <locale.h>
#include <string.h>
#include <time.h>

static void test_known_dates(void)
{
    char buf[64];
    size_t n = srv_format_http_date(buf, 784111777);   /* RFC 9110's example */
    CHECK_MEM(buf, n, "Sun, 06 Nov 1994 08:49:37 GMT", 29);
    n = srv_format_http_date(buf, 0);
    CHECK_MEM(buf, n, "Thu, 01 Jan 1970 00:00:00 GMT", 29);
    n = srv_format_http_date(buf, 951782400);           /* a leap day */
    CHECK_MEM(buf, n, "Tue, 29 Feb 2000 00:00:00 GMT", 29);
    n = srv_format_http_date(buf, 4102444799);          /* before 2100 */
    CHECK_MEM(buf, n, "Thu, 31 Dec 2099 23:59:59 GMT", 29);
    n = srv_format_clf_date(buf, 784111777);
    CHECK_MEM(buf, n, "06/Nov/1994:08:49:37 +0000", 26);
    CHECK_INT(SRV_HTTP_DATE_LEN, 29);
    CHECK_INT(SRV_CLF_DATE_LEN, 26);
}

/* Every day, at a changing time of day, against strftime in the C locale. */
static void test_against_strftime(void)
{
    char ours[64], libc[64];
    for (time_t t = 946684800; t < 946684800 + 30L * 366 * 86400; t += 86400 + 3599) {
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = srv_format_http_date(ours, t);
        size_t m = strftime(libc, sizeof libc, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        CHECK_MEM_CTX(ours, n, libc, m, "http date");
        n = srv_format_clf_date(ours, t);
        m = strftime(libc, sizeof libc, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        CHECK_MEM_CTX(ours, n, libc, m, "clf date");
    }
}

/* A process whose LC_TIME names days differently gets the same bytes. */
static void test_locale_independent(void)
{
    char before[64], after[64];
    size_t n = srv_format_http_date(before, 784111777);
    if (setlocale(LC_TIME, "de_DE.UTF-8") == NULL && setlocale(LC_TIME, "C.UTF-8") == NULL) {
        printf("note: no other LC_TIME locale here; checked in C only\n");
    }
    size_t m = srv_format_http_date(after, 784111777);
    CHECK_MEM(after, m, before, n);
    setlocale(LC_TIME, "C");
}

static void test_monotonic(void)
{
    double a = srv_monotonic(), b = srv_monotonic();
    CHECK(a > 0 && b >= a);
}

int main(void)
{
    test_known_dates();
    test_against_strftime();   /* before any setlocale: the C locale */
    test_locale_independent();
    test_monotonic();
    return unit_report("clock");
}
