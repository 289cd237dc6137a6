/* tb_mp — strict, allocation-free msgpack reading and bounded msgpack writing.
 *
 * Reading: a cursor {ptr, end, error} over a borrowed buffer. Every reader
 * checks the type and the bytes remaining; the first failure is stored in
 * r->error (sticky) and later reads return 0/NULL, so a caller decodes a whole
 * structure and checks r->error once. Declared counts are checked against the
 * bytes remaining (each element needs at least one byte) before anyone can act
 * on them, and nesting is limited by TB_MP_MAX_DEPTH, so a hostile message can
 * neither make a reader allocate nor recurse without bound. Strings and bins
 * are returned as pointers into the buffer (not NUL-terminated).
 *
 * Writing: msgpack-c's packer over a fixed-capacity tb_mp_buf_t. A write past
 * the capacity fails and sets buf->overflow; nothing is ever reallocated.
 *
 * Reading is tb_mp.c, writing tb_mp_write.c. */
#ifndef TB_MP_H
#define TB_MP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define TB_MP_MAX_DEPTH 16

typedef enum {
    TB_MP_INVALID = 0, /* end of buffer, reserved byte, or reader in error */
    TB_MP_NIL,
    TB_MP_BOOL,
    TB_MP_UINT, /* non-negative integer */
    TB_MP_INT,  /* negative integer */
    TB_MP_FLOAT,
    TB_MP_STR,
    TB_MP_BIN,
    TB_MP_ARRAY,
    TB_MP_MAP,
    TB_MP_EXT,
} tb_mp_type_t;

typedef struct {
    const uint8_t *ptr; /* next byte to read */
    const uint8_t *end; /* one past the last byte */
    int error;          /* 0, or the first tb_err_t met (sticky) */
} tb_mp_reader_t;

/* Start reading `len` bytes at `buf` (borrowed; must outlive the reader). */
void tb_mp_reader_init(tb_mp_reader_t *r, const void *buf, size_t len);

/* Bytes not yet consumed. */
size_t tb_mp_remaining(const tb_mp_reader_t *r);

/* Type of the next value without consuming it; TB_MP_INVALID at the end or
 * after an error (peeking never sets an error). */
tb_mp_type_t tb_mp_peek(const tb_mp_reader_t *r);

/* Typed readers. A value of another type, a truncated value or an integer out
 * of range sets r->error (TB_EPROTO / TB_ETRUNC / TB_ELIMIT) and returns 0. */
uint64_t tb_mp_read_uint(tb_mp_reader_t *r);
int64_t tb_mp_read_int(tb_mp_reader_t *r); /* accepts uint up to INT64_MAX */
int tb_mp_read_bool(tb_mp_reader_t *r);
double tb_mp_read_float(tb_mp_reader_t *r); /* float32/64 and integers */
void tb_mp_read_nil(tb_mp_reader_t *r);
const char *tb_mp_read_str(tb_mp_reader_t *r, uint32_t *len);
const uint8_t *tb_mp_read_bin(tb_mp_reader_t *r, uint32_t *len);
uint32_t tb_mp_read_array(tb_mp_reader_t *r); /* element count */
uint32_t tb_mp_read_map(tb_mp_reader_t *r);   /* pair count */

/* Copy a string into dst (NUL-terminated). A string of size or more bytes, or
 * one containing a NUL byte, sets TB_ELIMIT / TB_EPROTO. Returns its length. */
size_t tb_mp_read_str_copy(tb_mp_reader_t *r, char *dst, size_t size);

/* True (and consumes it) if the next value is a string equal to `s`. Used to
 * match map keys; a non-string or different string is not consumed. */
int tb_mp_next_str_is(tb_mp_reader_t *r, const char *s);

/* Skip one value of any type, including nested containers (depth-limited). */
void tb_mp_skip(tb_mp_reader_t *r);

/* Fixed-capacity output buffer for msgpack-c's packer. */
typedef struct {
    uint8_t *data; /* borrowed storage */
    size_t len;    /* bytes written */
    size_t cap;    /* capacity of data */
    int overflow;  /* set when a write did not fit */
} tb_mp_buf_t;

/* Point `b` at caller-owned storage and make `pk` write into it. */
void tb_mp_buf_init(tb_mp_buf_t *b, msgpack_packer *pk, void *storage, size_t cap);

/* Pack a NUL-terminated string (convenience over msgpack_pack_str/_body).
 * Returns 0, TB_EINVAL for NULL, TB_ELIMIT past 4 GiB, or TB_ENOMEM when the
 * packer's write failed (a full tb_mp_buf_t). */
int tb_mp_pack_cstr(msgpack_packer *pk, const char *s);

/* Map entries: a string key and its value. */
void tb_mp_kv_u64(msgpack_packer *pk, const char *key, uint64_t v);
void tb_mp_kv_str(msgpack_packer *pk, const char *key, const char *v);
void tb_mp_kv_double(msgpack_packer *pk, const char *key, double v);
void tb_mp_kv_bool(msgpack_packer *pk, const char *key, int v);

#endif
