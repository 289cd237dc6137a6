/* mpjson — see mpjson.h. */
#include "mpjson.h"

#include "tb_err.h"

#include <stdio.h>

/* A string that is not valid UTF-8 (a probe's free text may be anything):
 * shown with every non-ASCII byte replaced by '?', rather than refused. */
static json_t *s_sanitized(const char *s, uint32_t len)
{
    char buf[1024];
    uint32_t n = len < sizeof buf ? len : (uint32_t)sizeof buf;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x80 || c == 0) ? '?' : (char)c;
    }
    return json_stringn(buf, n);
}

static json_t *s_read(tb_mp_reader_t *r, int depth)
{
    if (depth > TB_MP_MAX_DEPTH) {
        r->error = TB_ELIMIT;
        return NULL;
    }
    uint32_t len = 0;
    switch (tb_mp_peek(r)) {
    case TB_MP_NIL:
        tb_mp_read_nil(r);
        return json_null();
    case TB_MP_BOOL:
        return json_boolean(tb_mp_read_bool(r));
    case TB_MP_UINT: {
        uint64_t v = tb_mp_read_uint(r);
        return v > (uint64_t)INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v);
    }
    case TB_MP_INT:
        return json_integer((json_int_t)tb_mp_read_int(r));
    case TB_MP_FLOAT:
        return json_real(tb_mp_read_float(r));
    case TB_MP_STR: {
        const char *s = tb_mp_read_str(r, &len);
        if (s == NULL) {
            return NULL;
        }
        json_t *j = json_stringn(s, len);
        return j != NULL ? j : s_sanitized(s, len);
    }
    case TB_MP_BIN: {
        const uint8_t *b = tb_mp_read_bin(r, &len);
        if (b == NULL) {
            return NULL;
        }
        char hex[2 * 256 + 1];
        uint32_t n = len < 256 ? len : 256;
        for (uint32_t i = 0; i < n; i++) {
            snprintf(hex + 2 * i, 3, "%02x", b[i]);
        }
        return json_stringn(hex, 2 * n);
    }
    case TB_MP_ARRAY: {
        uint32_t n = tb_mp_read_array(r);
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < n && r->error == 0; i++) {
            json_t *v = s_read(r, depth + 1);
            if (v == NULL || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        if (r->error != 0) {
            json_decref(a);
            return NULL;
        }
        return a;
    }
    case TB_MP_MAP: {
        uint32_t n = tb_mp_read_map(r);
        json_t *o = json_object();
        for (uint32_t i = 0; o != NULL && i < n && r->error == 0; i++) {
            char key[256];
            tb_mp_read_str_copy(r, key, sizeof key);
            json_t *v = r->error == 0 ? s_read(r, depth + 1) : NULL;
            if (v == NULL || json_object_set_new(o, key, v) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        if (r->error != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    case TB_MP_EXT:
        tb_mp_skip(r);
        return r->error == 0 ? json_null() : NULL;
    default:
        if (r->error == 0) {
            r->error = TB_EPROTO;
        }
        return NULL;
    }
}

json_t *tb_mpjson_read(tb_mp_reader_t *r)
{
    json_t *v = s_read(r, 0);
    if (r->error != 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}
