/* test_ctl — the control protocol envelope: requests (round trip, names,
 * limits, unknown keys, version) and replies (with and without error, the
 * data reader, malformed replies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb_ctl.h"
#include "tb_err.h"
#include "tb_mp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static tb_ctl_request_t s_req(const char *cmd, size_t n, const char *const *streams)
{
    tb_ctl_request_t r;
    memset(&r, 0, sizeof r);
    strcpy(r.cmd, cmd);
    r.nstreams = n;
    for (size_t i = 0; i < n; i++) {
        strcpy(r.streams[i], streams[i]);
    }
    return r;
}

static void test_request_roundtrip(void **state)
{
    (void)state;
    static const char *const streams[] = {"01::10:01", "eth0", "file:/a.pcap"};
    static const char *const cmds[] = {"start", "stop", "forget", "status", "stats", "x_y"};
    uint8_t buf[1024];
    size_t len;
    char err[128];
    for (size_t c = 0; c < N(cmds); c++) {
        for (size_t n = 0; n <= N(streams); n++) {
            tb_ctl_request_t in = s_req(cmds[c], n, streams), out;
            assert_int_equal(tb_ctl_request_encode(&in, buf, sizeof buf, &len), 0);
            assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), 0);
            assert_string_equal(err, "");
            assert_string_equal(out.cmd, cmds[c]);
            assert_int_equal(out.nstreams, n);
            for (size_t i = 0; i < n; i++) {
                assert_string_equal(out.streams[i], streams[i]);
            }
        }
    }
    /* The exact bytes of a small request: {"v":1,"cmd":"stop"}. */
    tb_ctl_request_t stop = s_req("stop", 0, NULL);
    assert_int_equal(tb_ctl_request_encode(&stop, buf, sizeof buf, &len), 0);
    static const uint8_t want[] = {0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm',
                                   'd',  0xa4, 's', 't',  'o',  'p'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    /* The largest request fits TB_CTL_MAX_MSG by far and round-trips. */
    tb_ctl_request_t big;
    memset(&big, 0, sizeof big);
    strcpy(big.cmd, "abcdefghijklmnop"); /* TB_CTL_CMD_MAX letters */
    big.nstreams = TB_CTL_MAX_STREAMS;
    for (size_t i = 0; i < TB_CTL_MAX_STREAMS; i++) {
        memset(big.streams[i], 'a' + (int)(i % 26), TB_STREAM_MAX);
        big.streams[i][0] = (char)('0' + i / 10); /* distinct names */
        big.streams[i][1] = (char)('0' + i % 10);
    }
    uint8_t large[8192];
    assert_int_equal(tb_ctl_request_encode(&big, large, sizeof large, &len), 0);
    tb_ctl_request_t back;
    assert_int_equal(tb_ctl_request_decode(large, len, &back, err, sizeof err), 0);
    assert_int_equal(back.nstreams, TB_CTL_MAX_STREAMS);
    assert_string_equal(back.streams[63], big.streams[63]);
    /* Too small an output buffer. */
    assert_int_equal(tb_ctl_request_encode(&big, large, len - 1, &len), TB_ELIMIT);
}

static void test_request_encode_invalid(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len;
    static const char *const bad_stream[] = {"a b"};
    tb_ctl_request_t r = s_req("start", 1, bad_stream);
    assert_int_equal(tb_ctl_request_encode(&r, buf, sizeof buf, &len), TB_EINVAL);
    r = s_req("Start", 0, NULL);
    assert_int_equal(tb_ctl_request_encode(&r, buf, sizeof buf, &len), TB_EINVAL);
    r = s_req("", 0, NULL);
    assert_int_equal(tb_ctl_request_encode(&r, buf, sizeof buf, &len), TB_EINVAL);
    r = s_req("stop", 0, NULL);
    r.nstreams = TB_CTL_MAX_STREAMS + 1;
    assert_int_equal(tb_ctl_request_encode(&r, buf, sizeof buf, &len), TB_EINVAL);
}

/* Pack a request map by hand: `extra` adds an unknown key first. */
typedef struct {
    int version;     /* -1: no "v" */
    const char *cmd; /* NULL: no "cmd" */
    int nstreams;    /* -1: no "streams" */
    const char *const *streams;
    int unknown; /* unknown keys to add */
} raw_req_t;

static size_t s_pack_req(uint8_t *buf, size_t cap, const raw_req_t *q)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, cap);
    size_t n = (q->version >= 0) + (q->cmd != NULL) + (q->nstreams >= 0) + (size_t)q->unknown;
    msgpack_pack_map(&pk, n);
    for (int i = 0; i < q->unknown; i++) {
        tb_mp_pack_cstr(&pk, i % 2 ? "timeout" : "client");
        if (i % 2) {
            msgpack_pack_map(&pk, 1);
            tb_mp_pack_cstr(&pk, "ms");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_uint16(&pk, 5000);
        } else {
            tb_mp_pack_cstr(&pk, "tapbusctl 0.1");
        }
    }
    if (q->cmd) {
        tb_mp_pack_cstr(&pk, "cmd");
        tb_mp_pack_cstr(&pk, q->cmd);
    }
    if (q->nstreams >= 0) {
        tb_mp_pack_cstr(&pk, "streams");
        msgpack_pack_array(&pk, (size_t)q->nstreams);
        for (int i = 0; i < q->nstreams; i++) {
            tb_mp_pack_cstr(&pk, q->streams[i]);
        }
    }
    if (q->version >= 0) { /* last: order does not matter */
        tb_mp_pack_cstr(&pk, "v");
        msgpack_pack_uint64(&pk, (uint64_t)q->version);
    }
    assert_false(b.overflow);
    return b.len;
}

/* {"v": 1, "cmd": "db", "timeout_ms": <what pack_value packs>} (twice: the key given twice). */
static size_t s_pack_timeout(uint8_t *buf, size_t cap, int kind, int twice)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, cap);
    msgpack_pack_map(&pk, twice ? 4 : 3);
    tb_mp_pack_cstr(&pk, "v");
    msgpack_pack_uint8(&pk, 1);
    tb_mp_pack_cstr(&pk, "cmd");
    tb_mp_pack_cstr(&pk, "db");
    for (int i = 0; i <= twice; i++) {
        tb_mp_pack_cstr(&pk, "timeout_ms");
        switch (kind) {
        case 0:
            msgpack_pack_uint64(&pk, 2500);
            break;
        case 1:
            msgpack_pack_uint64(&pk, 0);
            break;
        case 2:
            msgpack_pack_int64(&pk, -5);
            break;
        case 3:
            msgpack_pack_uint64(&pk, 1ull << 32);
            break;
        case 4:
            tb_mp_pack_cstr(&pk, "2500");
            break;
        default:
            msgpack_pack_double(&pk, 2.5);
            break;
        }
    }
    assert_false(b.overflow);
    return b.len;
}

static void test_request_timeout(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len;
    char err[160];
    tb_ctl_request_t in = s_req("db", 0, NULL), out;
    in.timeout_ms = 60000;
    assert_int_equal(tb_ctl_request_encode(&in, buf, sizeof buf, &len), 0);
    assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), 0);
    assert_int_equal(out.timeout_ms, 60000);
    /* Not said: absent on the wire, 0 once decoded. */
    in.timeout_ms = 0;
    assert_int_equal(tb_ctl_request_encode(&in, buf, sizeof buf, &len), 0);
    assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), 0);
    assert_int_equal(out.timeout_ms, 0);
    len = s_pack_timeout(buf, sizeof buf, 0, 0);
    assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), 0);
    assert_int_equal(out.timeout_ms, 2500);
    for (int kind = 1; kind <= 5; kind++) {
        len = s_pack_timeout(buf, sizeof buf, kind, 0);
        assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), TB_EPROTO);
        assert_non_null(strstr(err, "'timeout_ms' must be an integer from 1 to 4294967295"));
    }
    len = s_pack_timeout(buf, sizeof buf, 0, 1);
    assert_int_equal(tb_ctl_request_decode(buf, len, &out, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "duplicate key 'timeout_ms'");
}

static void test_request_decode_rules(void **state)
{
    (void)state;
    uint8_t buf[8192];
    char err[160];
    tb_ctl_request_t r;
    static const char *const good[] = {"a", "01::10:01"};

    /* Unknown keys skipped, "v" last, unknown command accepted. */
    raw_req_t q = {1, "frobnicate", 2, good, 3};
    size_t len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), 0);
    assert_string_equal(r.cmd, "frobnicate");
    assert_int_equal(r.nstreams, 2);
    assert_string_equal(r.streams[1], "01::10:01");

    /* A name given twice counts once, in the order first given. */
    static const char *const twice[] = {"b", "a", "b", "a"};
    q = (raw_req_t){1, "start", 4, twice, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), 0);
    assert_int_equal(r.nstreams, 2);
    assert_string_equal(r.streams[0], "b");
    assert_string_equal(r.streams[1], "a");

    /* An empty "streams" means the same as none. */
    q = (raw_req_t){1, "stop", 0, NULL, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), 0);
    assert_int_equal(r.nstreams, 0);

    /* Invalid stream names, quoted in the message. */
    static const char *const bad1[] = {"ok", "a b"};
    q = (raw_req_t){1, "start", 2, bad1, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "invalid stream name 'a b'");
    static const char *const bad2[] = {""};
    q = (raw_req_t){1, "start", 1, bad2, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "invalid stream name ''");
    static const char *const bad3[] = {"tab\there\x01"};
    q = (raw_req_t){1, "start", 1, bad3, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "invalid stream name 'tab?here?'");
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad4[] = {longname};
    q = (raw_req_t){1, "start", 1, bad4, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    assert_non_null(strstr(err, "xxx...'"));
    assert_true(strlen(err) < 100);

    /* Too many streams. */
    const char *many[TB_CTL_MAX_STREAMS + 1];
    for (size_t i = 0; i < N(many); i++) {
        many[i] = "s";
    }
    q = (raw_req_t){1, "start", TB_CTL_MAX_STREAMS, many, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), 0);
    q.nstreams = TB_CTL_MAX_STREAMS + 1;
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_ELIMIT);
    assert_string_equal(err, "too many streams (65, at most 64)");

    /* Commands: [a-z_]{1,16}. */
    static const char *const bad_cmds[] = {"", "Start", "st art", "abcdefghijklmnopq", "a1"};
    for (size_t i = 0; i < N(bad_cmds); i++) {
        q = (raw_req_t){1, bad_cmds[i], -1, NULL, 0};
        len = s_pack_req(buf, sizeof buf, &q);
        assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
        assert_non_null(strstr(err, "invalid command"));
    }
    q = (raw_req_t){1, "abcdefghijklmnop", -1, NULL, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), 0);

    /* Missing pieces and versions. */
    q = (raw_req_t){1, NULL, -1, NULL, 1};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "request has no 'cmd'");
    q = (raw_req_t){-1, "stop", -1, NULL, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EPROTO);
    q = (raw_req_t){2, "stop", -1, NULL, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EVERSION);
    assert_non_null(strstr(err, "version"));
    /* A version-2 request with a command this version would refuse: the
     * version is what gets reported. */
    q = (raw_req_t){2, "Bad Cmd", -1, NULL, 0};
    len = s_pack_req(buf, sizeof buf, &q);
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, err, sizeof err), TB_EVERSION);

    /* NULL err is allowed. */
    assert_int_equal(tb_ctl_request_decode(buf, len, &r, NULL, 0), TB_EVERSION);
}

static void test_request_add_stream(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(tb_ctl_request_add_stream(&r, "01::10:01"), 0);
    assert_int_equal(tb_ctl_request_add_stream(&r, "01::10:01"), 0);
    assert_int_equal(r.nstreams, 1);
    assert_int_equal(tb_ctl_request_add_stream(&r, "a b"), TB_EINVAL);
    assert_int_equal(tb_ctl_request_add_stream(&r, ""), TB_EINVAL);
    assert_int_equal(r.nstreams, 1);
    char name[16];
    for (int i = 1; i < TB_CTL_MAX_STREAMS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(tb_ctl_request_add_stream(&r, name), 0);
    }
    assert_int_equal(r.nstreams, TB_CTL_MAX_STREAMS);
    assert_int_equal(tb_ctl_request_add_stream(&r, "one-more"), TB_ELIMIT);
    assert_int_equal(tb_ctl_request_add_stream(&r, "s1"), 0); /* already there */
    assert_int_equal(r.nstreams, TB_CTL_MAX_STREAMS);
}

static void test_request_malformed(void **state)
{
    (void)state;
    char err[160];
    tb_ctl_request_t r;
    static const uint8_t not_map[] = {0x92, 0x01, 0x02};
    assert_int_equal(tb_ctl_request_decode(not_map, sizeof not_map, &r, err, sizeof err),
                     TB_EPROTO);
    assert_string_equal(err, "request is not a msgpack map");
    assert_int_equal(tb_ctl_request_decode(NULL, 0, &r, err, sizeof err), TB_ETRUNC);

    /* {"v":1,"cmd":"stop"} and every prefix of it. */
    static const uint8_t ok[] = {0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm',
                                 'd',  0xa4, 's', 't',  'o',  'p'};
    for (size_t k = 0; k < sizeof ok; k++) {
        uint8_t *p = malloc(k ? k : 1);
        assert_non_null(p);
        memcpy(p, ok, k);
        assert_int_equal(tb_ctl_request_decode(p, k, &r, err, sizeof err), TB_ETRUNC);
        assert_true(err[0] != '\0');
        free(p);
    }
    /* Trailing bytes. */
    uint8_t tail[sizeof ok + 1];
    memcpy(tail, ok, sizeof ok);
    tail[sizeof ok] = 0xc0;
    assert_int_equal(tb_ctl_request_decode(tail, sizeof tail, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "trailing bytes after the request");

    /* Duplicate "cmd". */
    static const uint8_t dup[] = {0x83, 0xa1, 'v',  0x01, 0xa3, 'c', 'm',  'd',
                                  0xa1, 'a',  0xa3, 'c',  'm',  'd', 0xa1, 'b'};
    assert_int_equal(tb_ctl_request_decode(dup, sizeof dup, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "duplicate key 'cmd'");
    /* Two "v". */
    static const uint8_t dupv[] = {0x83, 0xa1, 'v', 0x01, 0xa1, 'v', 0x01,
                                   0xa3, 'c',  'm', 'd',  0xa1, 'a'};
    assert_int_equal(tb_ctl_request_decode(dupv, sizeof dupv, &r, err, sizeof err), TB_EPROTO);
    /* A non-string key. */
    static const uint8_t intkey[] = {0x82, 0xa1, 'v', 0x01, 0x07, 0x01};
    assert_int_equal(tb_ctl_request_decode(intkey, sizeof intkey, &r, err, sizeof err), TB_EPROTO);
    assert_true(err[0] != '\0');
    /* "cmd" not a string; "streams" not an array; a stream not a string. */
    static const uint8_t cmdint[] = {0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0x05};
    assert_int_equal(tb_ctl_request_decode(cmdint, sizeof cmdint, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "'cmd' must be a string");
    static const uint8_t strs[] = {0x83, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa1, 'a',
                                   0xa7, 's',  't', 'r',  'e',  'a', 'm', 's', 0xa1, 'x'};
    assert_int_equal(tb_ctl_request_decode(strs, sizeof strs, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "'streams' must be an array of stream names");
    static const uint8_t strs2[] = {0x83, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa1, 'a',
                                    0xa7, 's',  't', 'r',  'e',  'a', 'm', 's', 0x91, 0x01};
    assert_int_equal(tb_ctl_request_decode(strs2, sizeof strs2, &r, err, sizeof err), TB_EPROTO);
    /* A stream name with an embedded NUL. */
    static const uint8_t nul[] = {0x83, 0xa1, 'v',  0x01, 0xa3, 'c', 'm', 'd',
                                  0xa1, 'a',  0xa7, 's',  't',  'r', 'e', 'a',
                                  'm',  's',  0x91, 0xa3, 'a',  0,   'b'};
    assert_int_equal(tb_ctl_request_decode(nul, sizeof nul, &r, err, sizeof err), TB_EPROTO);
    assert_string_equal(err, "invalid stream name 'a?b'");
    /* A map claiming four billion pairs. */
    static const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01};
    assert_int_equal(tb_ctl_request_decode(huge, sizeof huge, &r, err, sizeof err), TB_ETRUNC);
    /* Larger than TB_CTL_MAX_MSG. */
    uint8_t *big = calloc(1, TB_CTL_MAX_MSG + 1);
    assert_non_null(big);
    memcpy(big, ok, sizeof ok);
    assert_int_equal(tb_ctl_request_decode(big, TB_CTL_MAX_MSG + 1, &r, err, sizeof err),
                     TB_ELIMIT);
    free(big);
}

/* ---------------------------------------------------------------- replies */

static void test_reply_ok(void **state)
{
    (void)state;
    uint8_t buf[256];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    tb_ctl_reply_begin(&pk, NULL);
    msgpack_pack_map(&pk, 1);
    tb_mp_pack_cstr(&pk, "streams");
    msgpack_pack_uint8(&pk, 3);
    assert_false(b.overflow);

    /* {"v":1,"status":"ok","data":{"streams":3}} */
    static const uint8_t want[] = {0x83, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u',
                                   's',  0xa2, 'o', 'k',  0xa4, 'd', 'a', 't', 'a', 0x81,
                                   0xa7, 's',  't', 'r',  'e',  'a', 'm', 's', 0x03};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    int ok = -1;
    char err[64] = "junk";
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(buf, b.len, &ok, err, sizeof err, &data), 0);
    assert_int_equal(ok, 1);
    assert_string_equal(err, "");
    /* data is positioned on the value and bounded to it. */
    assert_int_equal(tb_mp_peek(&data), TB_MP_MAP);
    assert_int_equal(tb_mp_remaining(&data), 10);
    assert_int_equal(tb_mp_read_map(&data), 1);
    assert_true(tb_mp_next_str_is(&data, "streams"));
    assert_true(tb_mp_read_uint(&data) == 3);
    assert_int_equal(data.error, 0);
    assert_int_equal(tb_mp_remaining(&data), 0);
}

static void test_reply_error(void **state)
{
    (void)state;
    uint8_t buf[1024];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    tb_ctl_reply_begin(&pk, "unknown command 'x'");
    msgpack_pack_nil(&pk);
    assert_false(b.overflow);
    int ok = -1;
    char err[64];
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(buf, b.len, &ok, err, sizeof err, &data), 0);
    assert_int_equal(ok, 0);
    assert_string_equal(err, "unknown command 'x'");
    assert_int_equal(tb_mp_peek(&data), TB_MP_NIL);
    assert_int_equal(tb_mp_remaining(&data), 1);

    /* A small err buffer gets a truncated message. */
    char small[8];
    assert_int_equal(tb_ctl_reply_decode(buf, b.len, &ok, small, sizeof small, &data), 0);
    assert_string_equal(small, "unknown");

    /* An overlong message is cut to TB_CTL_ERROR_MAX at a UTF-8 boundary. */
    char longmsg[400];
    memset(longmsg, 'e', sizeof longmsg);
    longmsg[TB_CTL_ERROR_MAX - 1] = '\xc3'; /* a 2-byte character across the limit */
    longmsg[TB_CTL_ERROR_MAX] = '\xa9';
    longmsg[sizeof longmsg - 1] = '\0';
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    tb_ctl_reply_begin(&pk, longmsg);
    msgpack_pack_nil(&pk);
    char big[512];
    assert_int_equal(tb_ctl_reply_decode(buf, b.len, &ok, big, sizeof big, &data), 0);
    assert_int_equal(strlen(big), TB_CTL_ERROR_MAX - 1);
    assert_int_equal(ok, 0);
}

/* Pack a reply map from parts; a part with key NULL is left out. */
typedef struct {
    const char *key;
    int kind; /* 0 uint, 1 str, 2 nil, 3 array [1,2] */
    uint64_t u;
    const char *s;
} part_t;

static size_t s_pack_reply(uint8_t *buf, size_t cap, const part_t *parts, size_t n)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, cap);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        tb_mp_pack_cstr(&pk, parts[i].key);
        switch (parts[i].kind) {
        case 0:
            msgpack_pack_uint64(&pk, parts[i].u);
            break;
        case 1:
            tb_mp_pack_cstr(&pk, parts[i].s);
            break;
        case 2:
            msgpack_pack_nil(&pk);
            break;
        default:
            msgpack_pack_array(&pk, 2);
            msgpack_pack_uint8(&pk, 1);
            msgpack_pack_uint8(&pk, 2);
            break;
        }
    }
    assert_false(b.overflow);
    return b.len;
}

static void test_reply_order_and_unknown(void **state)
{
    (void)state;
    uint8_t buf[256];
    int ok;
    char err[64];
    tb_mp_reader_t data;
    /* data first, an unknown key in the middle, v last. */
    const part_t p[] = {{"data", 3, 0, NULL},
                        {"server", 1, 0, "tapbus-collector"},
                        {"status", 1, 0, "ok"},
                        {"v", 0, 1, NULL}};
    size_t len = s_pack_reply(buf, sizeof buf, p, N(p));
    assert_int_equal(tb_ctl_reply_decode(buf, len, &ok, err, sizeof err, &data), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(tb_mp_read_array(&data), 2);
    assert_true(tb_mp_read_uint(&data) == 1);
    assert_true(tb_mp_read_uint(&data) == 2);
    assert_int_equal(tb_mp_remaining(&data), 0); /* does not run into "server" */
    assert_int_equal(data.error, 0);

    /* No "data": a reader over one nil. */
    const part_t q[] = {{"status", 1, 0, "ok"}, {"v", 0, 1, NULL}};
    len = s_pack_reply(buf, sizeof buf, q, N(q));
    assert_int_equal(tb_ctl_reply_decode(buf, len, &ok, err, sizeof err, &data), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(tb_mp_remaining(&data), 1);
    tb_mp_read_nil(&data);
    assert_int_equal(data.error, 0);
}

static void test_reply_malformed(void **state)
{
    (void)state;
    uint8_t buf[512];
    int ok;
    char err[64];
    tb_mp_reader_t data;
    struct {
        part_t p[5];
        size_t n;
        int want;
    } cases[] = {
        /* no status */
        {{{"v", 0, 1, NULL}, {"data", 2, 0, NULL}}, 2, TB_EPROTO},
        /* unknown status */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "fine"}}, 2, TB_EPROTO},
        /* status not a string */
        {{{"v", 0, 1, NULL}, {"status", 0, 1, NULL}}, 2, TB_EPROTO},
        /* error status without message */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "error"}}, 2, TB_EPROTO},
        /* ok status with a message */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "ok"}, {"error", 1, 0, "x"}}, 3, TB_EPROTO},
        /* error not a string */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "error"}, {"error", 0, 5, NULL}}, 3, TB_EPROTO},
        /* no v */
        {{{"status", 1, 0, "ok"}}, 1, TB_EPROTO},
        /* v 2 */
        {{{"v", 0, 2, NULL}, {"status", 1, 0, "ok"}}, 2, TB_EVERSION},
        /* v 2 with an otherwise broken envelope */
        {{{"status", 1, 0, "whatever"}, {"v", 0, 2, NULL}}, 2, TB_EVERSION},
        /* v as a string */
        {{{"v", 1, 0, "1"}, {"status", 1, 0, "ok"}}, 2, TB_EVERSION},
        /* duplicate data */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "ok"}, {"data", 2, 0, NULL}, {"data", 2, 0, NULL}},
         4,
         TB_EPROTO},
        /* duplicate status */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "ok"}, {"status", 1, 0, "ok"}}, 3, TB_EPROTO},
        /* a message, then a fault: nothing handed back */
        {{{"v", 0, 1, NULL},
          {"status", 1, 0, "error"},
          {"error", 1, 0, "boom"},
          {"data", 2, 0, NULL},
          {"data", 2, 0, NULL}},
         5,
         TB_EPROTO},
        /* fine */
        {{{"v", 0, 1, NULL}, {"status", 1, 0, "error"}, {"error", 1, 0, "boom"}}, 3, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        size_t len = s_pack_reply(buf, sizeof buf, cases[i].p, cases[i].n);
        ok = -1;
        int rc = tb_ctl_reply_decode(buf, len, &ok, err, sizeof err, &data);
        assert_int_equal(rc, cases[i].want);
        if (rc != 0) {
            assert_int_equal(ok, 0);
            assert_string_equal(err, "");
            /* data is always a usable reader. */
            tb_mp_read_nil(&data);
            assert_int_equal(data.error, 0);
        }
    }

    /* Overlong error message. */
    char longmsg[TB_CTL_ERROR_MAX + 2];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    const part_t lp[] = {{"v", 0, 1, NULL}, {"status", 1, 0, "error"}, {"error", 1, 0, longmsg}};
    size_t len = s_pack_reply(buf, sizeof buf, lp, N(lp));
    assert_int_equal(tb_ctl_reply_decode(buf, len, &ok, err, sizeof err, &data), TB_ELIMIT);

    /* Every prefix of a valid reply is a truncation; trailing bytes and
     * non-maps are refused. */
    const part_t gp[] = {{"v", 0, 1, NULL}, {"status", 1, 0, "ok"}, {"data", 3, 0, NULL}};
    len = s_pack_reply(buf, sizeof buf, gp, N(gp));
    for (size_t k = 0; k < len; k++) {
        uint8_t *p = malloc(k ? k : 1);
        assert_non_null(p);
        memcpy(p, buf, k);
        assert_int_equal(tb_ctl_reply_decode(p, k, &ok, err, sizeof err, &data), TB_ETRUNC);
        free(p);
    }
    buf[len] = 0xc0;
    assert_int_equal(tb_ctl_reply_decode(buf, len + 1, &ok, err, sizeof err, &data), TB_EPROTO);
    static const uint8_t arr[] = {0x90};
    assert_int_equal(tb_ctl_reply_decode(arr, 1, &ok, err, sizeof err, &data), TB_EPROTO);
    static const uint8_t c1[] = {0x81, 0xa1, 'v', 0xc1};
    assert_int_equal(tb_ctl_reply_decode(c1, sizeof c1, &ok, err, sizeof err, &data),
                     TB_EPROTO); /* not msgpack at all */
    static const uint8_t c1data[] = {0x83, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u',
                                     's',  0xa2, 'o', 'k',  0xa4, 'd', 'a', 't', 'a', 0xc1};
    assert_int_equal(tb_ctl_reply_decode(c1data, sizeof c1data, &ok, err, sizeof err, &data),
                     TB_EPROTO);
    /* A data value nested too deep for tb_mp_skip. */
    uint8_t deep[64];
    static const uint8_t head[] = {0x83, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u',
                                   's',  0xa2, 'o', 'k',  0xa4, 'd', 'a', 't', 'a'};
    memcpy(deep, head, sizeof head);
    memset(deep + sizeof head, 0x91, 30);
    deep[sizeof head + 30] = 0xc0;
    assert_int_equal(tb_ctl_reply_decode(deep, sizeof head + 31, &ok, err, sizeof err, &data),
                     TB_ELIMIT);
}

/* Random single-byte mutations of a valid request and reply never crash and
 * never leave the outputs undefined. */
static void test_mutations(void **state)
{
    (void)state;
    static const char *const streams[] = {"01::10:01", "eth0"};
    tb_ctl_request_t in = s_req("start", 2, streams), out;
    uint8_t req[256], rep[256], m[256];
    size_t rlen, plen;
    assert_int_equal(tb_ctl_request_encode(&in, req, sizeof req, &rlen), 0);
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, rep, sizeof rep);
    tb_ctl_reply_begin(&pk, "no such stream 'x'");
    msgpack_pack_array(&pk, 2);
    tb_mp_pack_cstr(&pk, "a");
    msgpack_pack_uint8(&pk, 200);
    plen = b.len;

    uint64_t x = 0x243f6a8885a308d3ull;
    for (int iter = 0; iter < 50000; iter++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545f4914f6cdd1dull;
        int is_req = iter % 2;
        size_t n = is_req ? rlen : plen;
        memcpy(m, is_req ? req : rep, n);
        m[(v >> 8) % n] = (uint8_t)v;
        char err[TB_CTL_ERROR_MAX + 1];
        if (is_req) {
            int rc = tb_ctl_request_decode(m, n, &out, err, sizeof err);
            assert_true(strlen(err) < sizeof err);
            if (rc == 0) {
                for (size_t i = 0; i < out.nstreams; i++) {
                    assert_int_equal(tb_wire_name_valid(out.streams[i]), 0);
                }
            } else {
                assert_true(err[0] != '\0');
            }
        } else {
            int ok;
            tb_mp_reader_t data;
            int rc = tb_ctl_reply_decode(m, n, &ok, err, sizeof err, &data);
            if (rc == 0) {
                tb_mp_skip(&data);
                assert_int_equal(data.error, 0);
                assert_int_equal(tb_mp_remaining(&data), 0);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_request_encode_invalid),
        cmocka_unit_test(test_request_decode_rules),
        cmocka_unit_test(test_request_add_stream),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_order_and_unknown),
        cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
