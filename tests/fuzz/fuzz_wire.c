/* libFuzzer target: bus message bodies. Whatever decodes must re-encode and
 * decode to the same message (a batch with the point table it carried). */
#include "tb_err.h"
#include "tb_wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_ITEMS = 4096 };
    static tb_summary_t items[MAX_ITEMS], again[MAX_ITEMS];
    static uint8_t out[TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_POINTS_MAX_BYTES +
                       MAX_ITEMS * TB_WIRE_SUMMARY_MAX_BYTES];
    tb_wire_msg_t m, m2;
    if (tb_wire_decode(data, size, &m, items, MAX_ITEMS) != 0) {
        return 0;
    }
    size_t len = 0;
    int rc;
    switch (m.hdr.type) {
    case TB_MSG_BATCH:
        rc = tb_wire_encode_batch_points(&m.hdr, items, m.count, &m.points, out, sizeof out, &len);
        break;
    case TB_MSG_HEARTBEAT:
        rc = tb_wire_encode_heartbeat(&m.hdr, &m.hb, out, sizeof out, &len);
        break;
    default:
        rc = tb_wire_encode_eos(&m.hdr, &m.eos, out, sizeof out, &len);
        break;
    }
    if (rc != 0 || tb_wire_decode(out, len, &m2, again, MAX_ITEMS) != 0 || m2.count != m.count ||
        memcmp(&m2.hdr, &m.hdr, sizeof m.hdr) != 0) {
        abort();
    }
    for (size_t i = 0; i < m.count; i++) {
        /* The same point, by name (the table sent again may be shorter). */
        uint16_t p = items[i].point;
        if (again[i].point != p ||
            (p != 0 && (strcmp(m.points.p[p - 1].mp, m2.points.p[p - 1].mp) != 0 ||
                        strcmp(m.points.p[p - 1].ci, m2.points.p[p - 1].ci) != 0))) {
            abort();
        }
    }
    return 0;
}
