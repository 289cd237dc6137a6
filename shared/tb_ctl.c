/* tb_ctl — see tb_ctl.h; the envelope is specified in docs/control-protocol.md.
 *
 * Both envelopes are msgpack maps with string keys, read in any order. Each
 * decoder makes two passes over the top-level map: the first finds "v" so a
 * message of another version is refused as such (whatever else it holds), the
 * second reads the fields. A known key may appear once; unknown keys are
 * skipped. Stateless and thread-safe. */
#include "tb_ctl.h"

#include "tb_text.h"

#include "tb_err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The value "data" stands for when a reply has none. */
static const uint8_t s_nil = 0xc0;

static void s_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t size, const char *fmt, ...)
{
    if (err == NULL || size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

/* Quote untrusted bytes for an error message: printable ASCII is kept, other
 * bytes become '?', and long input is cut with "...". */
static void s_quote(char *dst, size_t size, const char *s, size_t n)
{
    size_t max = TB_STREAM_MAX;
    size_t o = 0;
    for (size_t i = 0; i < n && i < max && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > max) {
        for (int i = 0; i < 3 && o + 1 < size; i++) {
            dst[o++] = '.';
        }
    }
    dst[o] = '\0';
}

static int s_cmd_valid(const char *s, size_t n)
{
    if (n == 0 || n > TB_CTL_CMD_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) {
            return 0;
        }
    }
    return 1;
}

static int s_key_is(const char *k, uint32_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

/* First pass over a map of n pairs (map is positioned after its header and
 * is not moved): count the "v" keys and read the last one's value (0 when it
 * is not an unsigned integer). Returns 0 or the reader error of a malformed
 * map. */
static int s_scan_version(const tb_mp_reader_t *map, uint32_t n, int *nv, uint64_t *version)
{
    tb_mp_reader_t r = *map;
    *nv = 0;
    *version = 0;
    for (uint32_t i = 0; i < n && r.error == 0; i++) {
        uint32_t klen;
        const char *k = tb_mp_read_str(&r, &klen);
        if (r.error == 0 && s_key_is(k, klen, "v")) {
            (*nv)++;
            if (tb_mp_peek(&r) == TB_MP_UINT) {
                *version = tb_mp_read_uint(&r);
            } else {
                *version = 0;
                tb_mp_skip(&r);
            }
        } else {
            tb_mp_skip(&r);
        }
    }
    return r.error;
}

/* Version rule shared by requests and replies: exactly one "v", equal to
 * TB_CTL_VERSION. */
static int s_check_version(const tb_mp_reader_t *map, uint32_t n)
{
    int nv;
    uint64_t version;
    int rc = s_scan_version(map, n, &nv, &version);
    if (rc != 0) {
        return rc;
    }
    if (nv != 1) {
        return TB_EPROTO;
    }
    return version == TB_CTL_VERSION ? 0 : TB_EVERSION;
}

/* ------------------------------------------------------------- requests */

int tb_ctl_request_add_stream(tb_ctl_request_t *req, const char *name)
{
    if (tb_wire_name_valid(name) != 0) {
        return TB_EINVAL;
    }
    for (size_t i = 0; i < req->nstreams; i++) {
        if (strcmp(req->streams[i], name) == 0) {
            return 0;
        }
    }
    if (req->nstreams >= TB_CTL_MAX_STREAMS) {
        return TB_ELIMIT;
    }
    snprintf(req->streams[req->nstreams++], TB_STREAM_MAX + 1, "%s", name);
    return 0;
}

int tb_ctl_request_encode(const tb_ctl_request_t *req, uint8_t *out, size_t cap, size_t *len)
{
    size_t nc = strnlen(req->cmd, sizeof req->cmd);
    if (!s_cmd_valid(req->cmd, nc) || req->nstreams > TB_CTL_MAX_STREAMS ||
        req->nargs > TB_CTL_MAX_ARGS) {
        return TB_EINVAL;
    }
    for (size_t i = 0; i < req->nargs; i++) {
        if (strnlen(req->args[i], sizeof req->args[i]) > TB_CTL_ARG_MAX) {
            return TB_EINVAL;
        }
    }
    for (size_t i = 0; i < req->nstreams; i++) {
        if (tb_wire_name_valid(req->streams[i]) != 0) {
            return TB_EINVAL;
        }
    }
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, out, cap);
    msgpack_pack_map(&pk, 2 + (req->nstreams > 0) + (req->nargs > 0) + (req->timeout_ms > 0));
    tb_mp_pack_cstr(&pk, "v");
    msgpack_pack_uint8(&pk, TB_CTL_VERSION);
    tb_mp_pack_cstr(&pk, "cmd");
    tb_mp_pack_cstr(&pk, req->cmd);
    if (req->nstreams > 0) {
        tb_mp_pack_cstr(&pk, "streams");
        msgpack_pack_array(&pk, req->nstreams);
        for (size_t i = 0; i < req->nstreams; i++) {
            tb_mp_pack_cstr(&pk, req->streams[i]);
        }
    }
    if (req->nargs > 0) {
        tb_mp_pack_cstr(&pk, "args");
        msgpack_pack_array(&pk, req->nargs);
        for (size_t i = 0; i < req->nargs; i++) {
            tb_mp_pack_cstr(&pk, req->args[i]);
        }
    }
    if (req->timeout_ms > 0) {
        tb_mp_pack_cstr(&pk, "timeout_ms");
        msgpack_pack_uint32(&pk, req->timeout_ms);
    }
    if (b.overflow) {
        return TB_ELIMIT;
    }
    *len = b.len;
    return 0;
}

static int s_read_streams(tb_mp_reader_t *r, tb_ctl_request_t *req, char *err, size_t errsize)
{
    if (tb_mp_peek(r) != TB_MP_ARRAY) {
        s_err(err, errsize, "'streams' must be an array of stream names");
        return TB_EPROTO;
    }
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n > TB_CTL_MAX_STREAMS) {
        s_err(err, errsize, "too many streams (%u, at most %d)", (unsigned)n, TB_CTL_MAX_STREAMS);
        return TB_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slen;
        if (tb_mp_peek(r) != TB_MP_STR) {
            s_err(err, errsize, "'streams' must be an array of stream names");
            return r->error ? r->error : TB_EPROTO;
        }
        const char *s = tb_mp_read_str(r, &slen);
        if (r->error) {
            return r->error;
        }
        if (slen == 0 || slen > TB_STREAM_MAX || memchr(s, '\0', slen) != NULL) {
            char q[TB_STREAM_MAX + 4];
            s_quote(q, sizeof q, s, slen);
            s_err(err, errsize, "invalid stream name '%s'", q);
            return TB_EPROTO;
        }
        char name[TB_STREAM_MAX + 1];
        memcpy(name, s, slen);
        name[slen] = '\0';
        /* A name given twice counts once. */
        if (tb_ctl_request_add_stream(req, name) != 0) {
            char q[TB_STREAM_MAX + 4];
            s_quote(q, sizeof q, s, slen);
            s_err(err, errsize, "invalid stream name '%s'", q);
            return TB_EPROTO;
        }
    }
    return 0;
}

static int s_read_args(tb_mp_reader_t *r, tb_ctl_request_t *req, char *err, size_t errsize)
{
    if (tb_mp_peek(r) != TB_MP_ARRAY) {
        s_err(err, errsize, "'args' must be an array of strings");
        return r->error ? r->error : TB_EPROTO;
    }
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n > TB_CTL_MAX_ARGS) {
        s_err(err, errsize, "too many arguments (%u, at most %d)", (unsigned)n, TB_CTL_MAX_ARGS);
        return TB_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slen;
        if (tb_mp_peek(r) != TB_MP_STR) {
            s_err(err, errsize, "'args' must be an array of strings");
            return r->error ? r->error : TB_EPROTO;
        }
        const char *s = tb_mp_read_str(r, &slen);
        if (r->error) {
            return r->error;
        }
        if (slen > TB_CTL_ARG_MAX || memchr(s, '\0', slen) != NULL) {
            s_err(err, errsize, "argument %u is too long or holds a NUL", (unsigned)i + 1);
            return TB_EPROTO;
        }
        memcpy(req->args[i], s, slen);
        req->args[i][slen] = '\0';
    }
    req->nargs = n;
    return 0;
}

/* Fill err from a reader error when no more specific message was given. */
static int s_fail_generic(int rc, const char *what, char *err, size_t errsize)
{
    if (rc == TB_ETRUNC) {
        s_err(err, errsize, "truncated %s", what);
    } else {
        s_err(err, errsize, "malformed %s (%s)", what, tb_strerror(rc));
    }
    return rc;
}

int tb_ctl_request_decode(const uint8_t *buf, size_t len, tb_ctl_request_t *req, char *err,
                          size_t errsize)
{
    enum {
        K_V = 1u << 0,
        K_CMD = 1u << 1,
        K_STREAMS = 1u << 2,
        K_ARGS = 1u << 3,
        K_TIMEOUT = 1u << 4
    };
    tb_mp_reader_t r;
    memset(req, 0, sizeof *req);
    s_err(err, errsize, "%s", "");
    if (len > TB_CTL_MAX_MSG) {
        s_err(err, errsize, "request too large (%zu bytes, at most %u)", len, TB_CTL_MAX_MSG);
        return TB_ELIMIT;
    }
    tb_mp_reader_init(&r, buf, len);
    if (tb_mp_peek(&r) != TB_MP_MAP) {
        s_err(err, errsize, "request is not a msgpack map");
        return len == 0 ? TB_ETRUNC : TB_EPROTO;
    }
    uint32_t n = tb_mp_read_map(&r);
    if (r.error) {
        return s_fail_generic(r.error, "request", err, errsize);
    }
    int nv;
    uint64_t version;
    int rc = s_scan_version(&r, n, &nv, &version);
    if (rc != 0) {
        return s_fail_generic(rc, "request", err, errsize);
    }
    if (nv != 1) {
        s_err(err, errsize, "request needs exactly one 'v' key");
        return TB_EPROTO;
    }
    if (version != TB_CTL_VERSION) {
        s_err(err, errsize, "unsupported control protocol version (this collector speaks %d)",
              TB_CTL_VERSION);
        return TB_EVERSION;
    }

    unsigned seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t klen;
        const char *k = tb_mp_read_str(&r, &klen);
        if (r.error) {
            return s_fail_generic(r.error, "request", err, errsize);
        }
        unsigned key = s_key_is(k, klen, "v")            ? K_V
                       : s_key_is(k, klen, "cmd")        ? K_CMD
                       : s_key_is(k, klen, "streams")    ? K_STREAMS
                       : s_key_is(k, klen, "args")       ? K_ARGS
                       : s_key_is(k, klen, "timeout_ms") ? K_TIMEOUT
                                                         : 0;
        if (key == 0) {
            tb_mp_skip(&r);
            continue;
        }
        if (seen & key) {
            char q[TB_STREAM_MAX + 4];
            s_quote(q, sizeof q, k, klen);
            s_err(err, errsize, "duplicate key '%s'", q);
            return TB_EPROTO;
        }
        seen |= key;
        if (key == K_V) {
            tb_mp_skip(&r); /* checked by the first pass */
        } else if (key == K_CMD) {
            uint32_t clen;
            if (tb_mp_peek(&r) != TB_MP_STR) {
                s_err(err, errsize, "'cmd' must be a string");
                return TB_EPROTO;
            }
            const char *c = tb_mp_read_str(&r, &clen);
            if (r.error) {
                return s_fail_generic(r.error, "request", err, errsize);
            }
            if (!s_cmd_valid(c, clen)) {
                char q[TB_STREAM_MAX + 4];
                s_quote(q, sizeof q, c, clen);
                s_err(err, errsize, "invalid command '%s'", q);
                return TB_EPROTO;
            }
            memcpy(req->cmd, c, clen);
            req->cmd[clen] = '\0';
        } else if (key == K_TIMEOUT) {
            uint64_t t = tb_mp_peek(&r) == TB_MP_UINT ? tb_mp_read_uint(&r) : 0;
            if (r.error) {
                return s_fail_generic(r.error, "request", err, errsize);
            }
            if (t == 0 || t > UINT32_MAX) {
                s_err(err, errsize, "'timeout_ms' must be an integer from 1 to %" PRIu32,
                      UINT32_MAX);
                return TB_EPROTO;
            }
            req->timeout_ms = (uint32_t)t;
        } else {
            rc = key == K_STREAMS ? s_read_streams(&r, req, err, errsize)
                                  : s_read_args(&r, req, err, errsize);
            if (rc != 0) {
                if (err != NULL && errsize > 0 && err[0] == '\0') {
                    s_fail_generic(rc, "request", err, errsize);
                }
                return rc;
            }
        }
        if (r.error) {
            return s_fail_generic(r.error, "request", err, errsize);
        }
    }
    if (!(seen & K_CMD)) {
        s_err(err, errsize, "request has no 'cmd'");
        return TB_EPROTO;
    }
    if (tb_mp_remaining(&r) != 0) {
        s_err(err, errsize, "trailing bytes after the request");
        return TB_EPROTO;
    }
    return 0;
}

/* --------------------------------------------------------------- replies */

void tb_ctl_reply_begin(msgpack_packer *pk, const char *error)
{
    msgpack_pack_map(pk, error != NULL ? 4 : 3);
    tb_mp_pack_cstr(pk, "v");
    msgpack_pack_uint8(pk, TB_CTL_VERSION);
    tb_mp_pack_cstr(pk, "status");
    tb_mp_pack_cstr(pk, error != NULL ? "error" : "ok");
    if (error != NULL) {
        /* Cut an overlong message at a UTF-8 character boundary so that the
         * receiver's limit (TB_CTL_ERROR_MAX) always holds. */
        size_t n = tb_utf8_prefix(error, TB_CTL_ERROR_MAX);
        tb_mp_pack_cstr(pk, "error");
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, error, n);
    }
    tb_mp_pack_cstr(pk, "data");
}

int tb_ctl_reply_decode(const uint8_t *buf, size_t len, int *ok, char *err, size_t errsize,
                        tb_mp_reader_t *data)
{
    enum { K_V = 1u << 0, K_STATUS = 1u << 1, K_ERROR = 1u << 2, K_DATA = 1u << 3 };
    tb_mp_reader_t r;
    *ok = 0;
    s_err(err, errsize, "%s", "");
    tb_mp_reader_init(data, &s_nil, 1);
    if (len > TB_CTL_MAX_REPLY) {
        return TB_ELIMIT;
    }
    tb_mp_reader_init(&r, buf, len);
    uint32_t n = tb_mp_read_map(&r);
    if (r.error) {
        return r.error;
    }
    int rc = s_check_version(&r, n);
    if (rc != 0) {
        return rc;
    }

    unsigned seen = 0;
    int status_ok = 0;
    tb_mp_reader_t value = {0};
    const char *emsg = NULL;
    uint32_t elen = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t klen;
        const char *k = tb_mp_read_str(&r, &klen);
        if (r.error) {
            return r.error;
        }
        unsigned key = s_key_is(k, klen, "v")        ? K_V
                       : s_key_is(k, klen, "status") ? K_STATUS
                       : s_key_is(k, klen, "error")  ? K_ERROR
                       : s_key_is(k, klen, "data")   ? K_DATA
                                                     : 0;
        if (key & seen) {
            return TB_EPROTO;
        }
        seen |= key;
        if (key == K_STATUS) {
            uint32_t slen;
            const char *s = tb_mp_read_str(&r, &slen);
            if (r.error) {
                return r.error;
            }
            if (s_key_is(s, slen, "ok")) {
                status_ok = 1;
            } else if (!s_key_is(s, slen, "error")) {
                return TB_EPROTO;
            }
        } else if (key == K_ERROR) {
            emsg = tb_mp_read_str(&r, &elen);
            if (r.error) {
                return r.error;
            }
            if (elen > TB_CTL_ERROR_MAX) {
                return TB_ELIMIT;
            }
            if (memchr(emsg, '\0', elen) != NULL) {
                return TB_EPROTO;
            }
        } else if (key == K_DATA) {
            /* The caller gets a reader bounded to exactly this value. */
            value.ptr = r.ptr;
            tb_mp_skip(&r);
            value.end = r.ptr;
        } else {
            tb_mp_skip(&r); /* "v" (already checked) or an unknown key */
        }
        if (r.error) {
            return r.error;
        }
    }
    if (tb_mp_remaining(&r) != 0) {
        return TB_EPROTO;
    }
    /* "error" comes with status "error" and only then. */
    if (!(seen & K_STATUS) || status_ok == !!(seen & K_ERROR)) {
        return TB_EPROTO;
    }
    /* Only a valid reply hands anything back. */
    if (emsg != NULL && err != NULL && errsize > 0) {
        size_t c = elen < errsize - 1 ? elen : errsize - 1;
        memcpy(err, emsg, c);
        err[c] = '\0';
    }
    if (seen & K_DATA) {
        *data = value;
    }
    *ok = status_ok;
    return 0;
}
