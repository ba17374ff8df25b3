/*
 * fuzz_ws_frame.c - libFuzzer target for src/ws_frame.c, the WebSocket codec.
 *
 * Byte 0 picks the limits (a message in progress or not, and a small or
 * large message limit); the rest is a stream of client frames, parsed the
 * way ws.c parses them: header, then payload unmasked in two pieces.  Each
 * header must be refused or accepted the same way whatever prefix of it is
 * offered first, and an accepted one must obey the rules it was checked
 * against.  The UTF-8 validator must agree with a cut at any point: a
 * valid string cut by srv_ws_utf8_cut stays valid.
 */
#include "srv/ws_frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    srv_ws_limits lim = {data[0] & 1, 0, (data[0] & 2) ? 64 : 1 << 20};
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    while (n > 0) {
        srv_ws_frame f;
        int code = 0;
        const char *why = NULL;
        ssize_t h = srv_ws_parse_header(p, n, &lim, &f, &code, &why);
        for (size_t k = 0; k < n && k < 14; k++) {
            srv_ws_frame f2;
            int c2 = 0;
            ssize_t h2 = srv_ws_parse_header(p, k, &lim, &f2, &c2, &why);
            if (h2 > 0 && (h2 != h || f2.len != f.len))
                abort();   /* a prefix parsed differently from the whole */
            if (h2 < 0 && h != -1)
                abort();   /* refused on a prefix, accepted whole */
        }
        if (h <= 0) {
            if (h < 0 && code != 1002 && code != 1009)
                abort();
            break;
        }
        if ((size_t)h > n || f.opcode > 0xA || (f.opcode >= 8 && (!f.fin || f.len > 125)))
            abort();
        if (f.opcode < 8 && f.len > lim.max_message - lim.msg_len)
            abort();
        p += h;
        n -= (size_t)h;
        size_t take = f.len < n ? (size_t)f.len : n;
        unsigned pos = 0;
        srv_ws_unmask(buf, p, take / 2, f.mask, &pos);
        srv_ws_unmask(buf + take / 2, p + take / 2, take - take / 2, f.mask, &pos);
        if (srv_ws_utf8_valid(buf, take)) {
            size_t cut = srv_ws_utf8_cut((const char *)buf, take, take / 3);
            if (cut > take / 3 || !srv_ws_utf8_valid(buf, cut))
                abort();
        }
        p += take;
        n -= take;
        if (f.opcode < 8) {
            lim.in_message = !f.fin;
            lim.msg_len = f.fin ? 0 : lim.msg_len + f.len;
        }
    }
    free(buf);
    return 0;
}
