/* libFuzzer target: offer bodies (the reserved offer topic, wire format
 * section 5.5). Whatever decodes must re-encode and decode to the same offer. */
#include "tb_err.h"
#include "tb_wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tb_wire_offer_t o, o2;
    static uint8_t
        out[TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_MAX_OFFERS * (TB_STREAM_MAX + TB_KIND_MAX + 8)];
    if (tb_wire_decode_offer(data, size, &o) != 0) {
        return 0;
    }
    size_t len = 0;
    if (tb_wire_encode_offer(&o, out, sizeof out, &len) != 0 ||
        tb_wire_decode_offer(out, len, &o2) != 0 || o2.n != o.n || o2.seq != o.seq ||
        o2.ttl_ms != o.ttl_ms || strcmp(o2.probe_id, o.probe_id) != 0) {
        abort();
    }
    for (size_t i = 0; i < o.n; i++) {
        if (strcmp(o.entries[i].stream, o2.entries[i].stream) != 0 ||
            strcmp(o.entries[i].kind, o2.entries[i].kind) != 0 ||
            o.entries[i].state != o2.entries[i].state) {
            abort();
        }
    }
    return 0;
}
