/*
 * unit.h - a tiny harness for srv's C unit tests (tests/unit).
 *
 * Each CHECK counts one pass or one failure; a failure prints file:line, the
 * expression and the values.  main() returns unit_report(),
 * which prints "N passed, M failed" and is non-zero if anything failed.
 *
 * KNOWN_BUG(cond, what) is for a real bug in the code under test that is
 * reported and not yet fixed: while cond is false it prints "KNOWN BUG" and
 * counts as neither pass nor failure, so ctest stays green; once the code is
 * fixed it prints "KNOWN BUG FIXED" so that the marker can be turned into a
 * plain CHECK.
 */
#ifndef SRV_UNIT_H
#define SRV_UNIT_H

#include <stdio.h>
#include <string.h>

static unsigned unit_passed, unit_failed, unit_known;

/* Printable form of bytes: C escapes for everything outside 0x20..0x7e. */
static inline const char *unit_esc(const char *p, size_t n)
{
    static char bufs[4][512];
    static int which;
    char *b = bufs[which++ & 3];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof bufs[0] - 8; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            o += (size_t)snprintf(b + o, 8, "\\r");
        else if (c == '\n')
            o += (size_t)snprintf(b + o, 8, "\\n");
        else if (c == '\t')
            o += (size_t)snprintf(b + o, 8, "\\t");
        else if (c == '\\' || c == '"')
            o += (size_t)snprintf(b + o, 8, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(b + o, 8, "\\x%02x", c);
        else
            b[o++] = (char)c;
    }
    if (o >= sizeof bufs[0] - 8)
        o += (size_t)snprintf(b + o, 8, "...");
    b[o] = 0;
    return b;
}

#define UNIT_FAIL_(fmt, ...)                                                  \
    do {                                                                      \
        unit_failed++;                                                        \
        fprintf(stderr, "%s:%d: FAIL: " fmt "\n", __FILE__, __LINE__,         \
                __VA_ARGS__);                                                 \
    } while (0)

/* A condition. */
#define CHECK(cond)                                                           \
    do {                                                                      \
        if (cond)                                                             \
            unit_passed++;                                                    \
        else                                                                  \
            UNIT_FAIL_("%s", #cond);                                          \
    } while (0)

/* Two integers, with a context string printed on failure. */
#define CHECK_INT_CTX(got, want, ctx)                                         \
    do {                                                                      \
        long long g_ = (long long)(got), w_ = (long long)(want);              \
        if (g_ == w_)                                                         \
            unit_passed++;                                                    \
        else                                                                  \
            UNIT_FAIL_("%s == %s: got %lld, want %lld [%s]", #got, #want,     \
                       g_, w_, (ctx));                                        \
    } while (0)

#define CHECK_INT(got, want) CHECK_INT_CTX(got, want, "")

/* Bytes got[0..gn) equal want[0..wn). */
#define CHECK_MEM_CTX(got, gn, want, wn, ctx)                                 \
    do {                                                                      \
        const char *gp_ = (const char *)(got), *wp_ = (const char *)(want);   \
        size_t gn_ = (gn), wn_ = (wn);                                        \
        if (gn_ == wn_ && (gn_ == 0 || memcmp(gp_, wp_, gn_) == 0))           \
            unit_passed++;                                                    \
        else                                                                  \
            UNIT_FAIL_("%s: got \"%s\" (%zu), want \"%s\" (%zu) [%s]", #got,  \
                       unit_esc(gp_, gn_), gn_, unit_esc(wp_, wn_), wn_,      \
                       (ctx));                                                \
    } while (0)

#define CHECK_MEM(got, gn, want, wn) CHECK_MEM_CTX(got, gn, want, wn, "")

/* A reported bug: see the top of this file. */
#define KNOWN_BUG(cond, what)                                                 \
    do {                                                                      \
        if (cond) {                                                           \
            unit_passed++;                                                    \
            fprintf(stderr, "%s:%d: KNOWN BUG FIXED (make it a CHECK): %s\n", \
                    __FILE__, __LINE__, (what));                              \
        } else {                                                              \
            unit_known++;                                                     \
            fprintf(stderr, "%s:%d: KNOWN BUG: %s\n", __FILE__, __LINE__,     \
                    (what));                                                  \
        }                                                                     \
    } while (0)

static inline int unit_report(const char *name)
{
    if (unit_known)
        printf("%s: %u KNOWN BUG check(s) not counted\n", name, unit_known);
    printf("%u passed, %u failed\n", unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif
