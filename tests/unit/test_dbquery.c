/* test_dbquery — `tapbusctl db`'s queries and the parsing of InfluxDB's
 * answers (collector/db/dbquery_codec.c), without a server: the InfluxQL
 * and Flux built for each request, names escaped so that they never end
 * their string; CSV split by RFC 4180; 1.x JSON and 2.x annotated CSV
 * answers turned into {"query", "columns", "rows"} with typed values, the
 * database's errors into error replies, and answers without rows told
 * apart. (The e2e_influx tests ask a real influxd.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dbquery.h"
#include "tb_ctl.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

static tb_ctl_request_t s_req(const char *a0, const char *a1, const char *a2, const char *stream)
{
    tb_ctl_request_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.cmd, sizeof r.cmd, "db");
    const char *args[3] = {a0, a1, a2};
    for (int i = 0; i < 3 && args[i] != NULL; i++) {
        snprintf(r.args[r.nargs++], sizeof r.args[0], "%s", args[i]);
    }
    if (stream != NULL) {
        snprintf(r.streams[r.nstreams++], sizeof r.streams[0], "%s", stream);
    }
    return r;
}

static void test_influxql(void **state)
{
    (void)state;
    char q[1024];
    tb_ctl_request_t r = s_req("measurements", NULL, NULL, NULL);
    tb_dbquery_build(0, "", "", &r, q, sizeof q);
    assert_string_equal(q, "SHOW MEASUREMENTS");
    r = s_req("points", "tapbus_traffic", "5", NULL);
    tb_dbquery_build(0, "", "", &r, q, sizeof q);
    assert_string_equal(q, "SELECT * FROM \"tapbus_traffic\" ORDER BY time DESC LIMIT 5");
    r = s_req("points", "tapbus_traffic", "20", "01::10:01");
    tb_dbquery_build(0, "", "week", &r, q, sizeof q);
    assert_string_equal(q, "SELECT * FROM \"week\".\"tapbus_traffic\" WHERE \"stream\" = "
                           "'01::10:01' ORDER BY time DESC LIMIT 20");
    /* A quote in a name is escaped, never the end of the string. */
    r = s_req("points", "m\"x", "1", "a'b\\");
    tb_dbquery_build(0, "", "", &r, q, sizeof q);
    assert_string_equal(q, "SELECT * FROM \"m\\\"x\" WHERE \"stream\" = 'a\\'b\\\\' ORDER BY "
                           "time DESC LIMIT 1");
}

static void test_flux(void **state)
{
    (void)state;
    char q[1024];
    tb_ctl_request_t r = s_req("measurements", NULL, NULL, NULL);
    tb_dbquery_build(1, "tap\"bus", "", &r, q, sizeof q);
    assert_string_equal(q, "import \"influxdata/influxdb/schema\"\n"
                           "schema.measurements(bucket: \"tap\\\"bus\")");
    r = s_req("points", "tapbus_loss", "3", "s${x}");
    tb_dbquery_build(1, "b", "", &r, q, sizeof q);
    assert_non_null(strstr(q, "from(bucket: \"b\")"));
    assert_non_null(strstr(q, "r._measurement == \"tapbus_loss\" and r.stream == \"s\\${x}\""));
    assert_non_null(strstr(q, "|> limit(n: 3)"));
}

static void test_csv_split(void **state)
{
    (void)state;
    char line[] = "a,\"b,c\",\"d\"\"e\",,\"f\"x,";
    char *f[8];
    size_t n = tb_dbquery_csv_split(line, f, 8);
    assert_int_equal(n, 6);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "b,c");
    assert_string_equal(f[2], "d\"e");
    assert_string_equal(f[3], "");
    assert_string_equal(f[4], "f");
    assert_string_equal(f[5], "");
    char few[] = "1,2,3,4";
    assert_int_equal(tb_dbquery_csv_split(few, f, 2), 2);
    char open[] = "\"never closed";
    assert_int_equal(tb_dbquery_csv_split(open, f, 8), 1);
    assert_string_equal(f[0], "never closed");
}

/* Unpack a reply: the data map (NULL for an error reply, whose message
 * goes to err). */
static msgpack_object *s_data(msgpack_unpacked *u, const msgpack_sbuffer *sb, char *err)
{
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_object *data = NULL;
    err[0] = '\0';
    for (uint32_t i = 0; i < u->data.via.map.size; i++) {
        msgpack_object_kv *kv = &u->data.via.map.ptr[i];
        if (kv->key.via.str.size == 4 && memcmp(kv->key.via.str.ptr, "data", 4) == 0) {
            data = &kv->val;
        } else if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "error", 5) == 0) {
            snprintf(err, 256, "%.*s", (int)kv->val.via.str.size, kv->val.via.str.ptr);
        }
    }
    return err[0] != '\0' ? NULL : data;
}

static msgpack_object *s_get(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0) {
            return &kv->val;
        }
    }
    fail_msg("no key %s", key);
    return NULL;
}

static void test_v1_answers(void **state)
{
    (void)state;
    static const char body[] =
        "{\"results\":[{\"statement_id\":0,\"series\":["
        "{\"name\":\"m\",\"columns\":[\"time\",\"packets\",\"stream\"],"
        "\"values\":[[\"2026-01-01T00:00:01Z\",5,\"a\"],[\"2026-01-01T00:00:00Z\",2.5,\"a\"]]},"
        "{\"name\":\"m\",\"columns\":[\"time\",\"packets\",\"stream\"],"
        "\"values\":[[\"2026-01-01T00:00:00Z\",1,\"b\"]]}]}]}";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tb_dbquery_pack_v1(&pk, "Q", body, sizeof body - 1);
    msgpack_unpacked u;
    char err[256];
    msgpack_object *d = s_data(&u, &sb, err);
    assert_non_null(d);
    assert_int_equal(s_get(d, "columns")->via.array.size, 3);
    msgpack_object *rows = s_get(d, "rows");
    assert_int_equal(rows->via.array.size, 3); /* both series */
    assert_int_equal(rows->via.array.ptr[0].via.array.ptr[1].via.u64, 5);
    assert_true(rows->via.array.ptr[1].via.array.ptr[1].type == MSGPACK_OBJECT_FLOAT64);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(&sb);
    static const char failed[] = "{\"results\":[{\"statement_id\":0,\"error\":\"boom\"}]}";
    tb_dbquery_pack_v1(&pk, "Q", failed, sizeof failed - 1);
    assert_null(s_data(&u, &sb, err));
    assert_string_equal(err, "database: boom");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(&sb);
    tb_dbquery_pack_v1(&pk, "Q", "<html>", 6);
    assert_null(s_data(&u, &sb, err));
    assert_non_null(strstr(err, "not a query result"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static void test_v2_annotated_csv(void **state)
{
    (void)state;
    char body[] = "#group,false,false,true,false,false,false\r\n"
                  "#datatype,string,long,dateTime:RFC3339,long,double,string\r\n"
                  "#default,_result,,,,,\r\n"
                  ",result,table,_time,packets,ratio,stream\r\n"
                  ",,0,2026-01-01T00:00:01Z,7,0.5,\"a,b\"\r\n"
                  ",,0,2026-01-01T00:00:00Z,,1.25,c\r\n"
                  "\r\n";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tb_dbquery_pack_v2(&pk, "Q", body);
    msgpack_unpacked u;
    char err[256];
    msgpack_object *d = s_data(&u, &sb, err);
    assert_non_null(d);
    msgpack_object *cols = s_get(d, "columns");
    assert_int_equal(cols->via.array.size, 4); /* result and table left out */
    assert_memory_equal(cols->via.array.ptr[0].via.str.ptr, "_time", 5);
    msgpack_object *rows = s_get(d, "rows");
    assert_int_equal(rows->via.array.size, 2);
    msgpack_object *r0 = rows->via.array.ptr[0].via.array.ptr;
    assert_int_equal(r0[1].via.i64, 7);
    assert_true(r0[2].type == MSGPACK_OBJECT_FLOAT64 && r0[2].via.f64 == 0.5);
    assert_int_equal(r0[3].via.str.size, 3); /* "a,b": a quoted comma */
    msgpack_object *r1 = rows->via.array.ptr[1].via.array.ptr;
    assert_true(r1[1].type == MSGPACK_OBJECT_NIL); /* an empty value */
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* An answer with no data row, told apart from one with rows: what makes a
 * "points" request for a name the database does not hold an error; and the
 * error reply that carries it. */
static void test_no_rows_and_error_reply(void **state)
{
    (void)state;
    static const char v1_empty[] = "{\"results\":[{\"statement_id\":0}]}";
    static const char v1_rows[] = "{\"results\":[{\"statement_id\":0,\"series\":["
                                  "{\"name\":\"m\",\"columns\":[\"time\"],"
                                  "\"values\":[[\"2026-01-01T00:00:00Z\"]]}]}]}";
    assert_true(tb_dbquery_no_rows(0, v1_empty, sizeof v1_empty - 1));
    assert_false(tb_dbquery_no_rows(0, v1_rows, sizeof v1_rows - 1));
    assert_false(tb_dbquery_no_rows(0, "<html>", 6)); /* not an answer: not "empty" */
    static const char v2_empty[] = "#datatype,string,long\r\n,result,table\r\n\r\n";
    static const char v2_rows[] = "#datatype,string,long\r\n,result,table\r\n,,0\r\n";
    assert_true(tb_dbquery_no_rows(1, v2_empty, sizeof v2_empty - 1));
    assert_false(tb_dbquery_no_rows(1, v2_rows, sizeof v2_rows - 1));
    assert_true(tb_dbquery_no_rows(1, "", 0));

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tb_dbquery_pack_error(&pk, "unknown measurement 'x'");
    msgpack_unpacked u;
    char err[256];
    assert_null(s_data(&u, &sb, err));
    assert_string_equal(err, "unknown measurement 'x'");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_influxql),         cmocka_unit_test(test_flux),
        cmocka_unit_test(test_csv_split),        cmocka_unit_test(test_v1_answers),
        cmocka_unit_test(test_v2_annotated_csv), cmocka_unit_test(test_no_rows_and_error_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
