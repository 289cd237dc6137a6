/* tb_mp_write — the writing half of tb_mp (see tb_mp.h): msgpack-c's packer
 * over a fixed-capacity buffer that never reallocates, and map-entry
 * helpers. A write that does not fit fails and marks the buffer
 * overflowed. Thread-safety: a buffer belongs
 * to one thread. */
#include "tb_mp.h"

#include "tb_err.h"

#include <string.h>

/* msgpack-c's write callback: 0, or -1 when the buffer is full (msgpack-c's
 * convention, which its msgpack_pack_* calls return as they get it; a
 * tb_err_t is what tb_mp_pack_cstr makes of it). Once a write has failed
 * every later write fails too, so a buffer never ends up holding a value
 * with a hole in the middle. */
static int s_buf_write(void *data, const char *buf, size_t len)
{
    tb_mp_buf_t *b = data;
    if (b->overflow || len > b->cap - b->len) {
        b->overflow = 1;
        return -1;
    }
    /* Most writes are one to nine bytes: a plain loop beats a call. */
    uint8_t *dst = b->data + b->len;
    if (len <= 16) {
        for (size_t i = 0; i < len; i++) {
            dst[i] = (uint8_t)buf[i];
        }
    } else {
        memcpy(dst, buf, len);
    }
    b->len += len;
    return 0;
}

void tb_mp_buf_init(tb_mp_buf_t *b, msgpack_packer *pk, void *storage, size_t cap)
{
    b->data = storage;
    b->len = 0;
    b->cap = storage ? cap : 0;
    b->overflow = 0;
    msgpack_packer_init(pk, b, s_buf_write);
}

int tb_mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        return TB_EINVAL;
    }
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        return TB_ELIMIT;
    }
    /* Any packer's failed write (a full tb_mp_buf_t, msgpack-c's sbuffer out
     * of memory) is a write that did not fit. */
    if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0) {
        return TB_ENOMEM;
    }
    return 0;
}

void tb_mp_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    tb_mp_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

void tb_mp_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
    tb_mp_pack_cstr(pk, key);
    tb_mp_pack_cstr(pk, v);
}

void tb_mp_kv_double(msgpack_packer *pk, const char *key, double v)
{
    tb_mp_pack_cstr(pk, key);
    msgpack_pack_double(pk, v);
}

void tb_mp_kv_bool(msgpack_packer *pk, const char *key, int v)
{
    tb_mp_pack_cstr(pk, key);
    if (v) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
}
