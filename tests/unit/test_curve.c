/* test_curve — CURVE certificates and endpoints (tb_curve): files written
 * by keygen load with CZMQ's zcert_load and CZMQ's load here; secret files
 * are 0600 and never overwritten; every malformed certificate is refused
 * with its reason; a secret certificate others may read is refused; which
 * bound endpoints are open to the network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test.h"

#include "tb_curve.h"
#include "tb_err.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[64];

static int s_setup(void **state)
{
    (void)state;
    return tb_test_tmpdir(s_dir, sizeof s_dir, "curve");
}

static int s_teardown(void **state)
{
    (void)state;
    tb_test_rmtree(s_dir);
    return 0;
}

static void s_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", s_dir, name);
}

static void s_write(const char *name, const char *text, mode_t mode)
{
    char path[256];
    s_path(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_keygen_files_and_modes(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    tb_curve_cert_t c, back;
    char path[256], secret[300], err[512];
    assert_int_equal(tb_curve_cert_generate(&c, "edge 1\"x"), 0);
    assert_string_equal(c.name, "edge_1_x"); /* quotes and spaces cannot break the file */
    s_path(path, sizeof path, "edge1");
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(tb_curve_cert_save(&c, path, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644); /* umask 022, set in main */
    /* The secret file is the program's own certificate, the public one a peer's. */
    assert_int_equal(tb_curve_cert_load(secret, 1, &back, err, sizeof err), 0);
    assert_string_equal(back.public_key, c.public_key);
    assert_string_equal(back.secret_key, c.secret_key);
    assert_string_equal(back.name, "edge_1_x");
    assert_int_equal(tb_curve_cert_load(path, 0, &back, err, sizeof err), 0);
    assert_string_equal(back.public_key, c.public_key);
    assert_string_equal(back.secret_key, "");
    assert_int_equal(tb_curve_cert_load(path, 1, &back, err, sizeof err), TB_EPROTO);
    assert_non_null(strstr(err, "holds no secret key"));
    /* Never overwritten, neither file. */
    tb_curve_cert_t other;
    assert_int_equal(tb_curve_cert_generate(&other, "edge1"), 0);
    assert_int_equal(tb_curve_cert_save(&other, path, err, sizeof err), TB_EINVAL);
    assert_non_null(strstr(err, "exists: not overwritten"));
    assert_int_equal(tb_curve_cert_load(secret, 1, &back, err, sizeof err), 0);
    assert_string_equal(back.secret_key, c.secret_key);
    assert_int_equal(unlink(path), 0); /* only the secret one left: still refused */
    assert_int_equal(tb_curve_cert_save(&other, path, err, sizeof err), TB_EINVAL);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_czmq_reads_ours_and_we_read_czmq(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    tb_curve_cert_t c, back;
    char path[256], secret[300], err[512];
    assert_int_equal(tb_curve_cert_generate(&c, "probe7"), 0);
    s_path(path, sizeof path, "ours");
    assert_int_equal(tb_curve_cert_save(&c, path, err, sizeof err), 0);
    /* zcert_load reads NAME_secret when it is there: move it away first to
     * read the public file alone. */
    snprintf(secret, sizeof secret, "%s_secret", path);
    zcert_t *z = zcert_load(secret);
    assert_non_null(z);
    assert_string_equal(zcert_public_txt(z), c.public_key);
    assert_string_equal(zcert_secret_txt(z), c.secret_key);
    assert_string_equal(zcert_meta(z, "name"), "probe7");
    zcert_destroy(&z);
    char moved[256];
    snprintf(moved, sizeof moved, "%s/elsewhere", s_dir);
    assert_int_equal(rename(secret, moved), 0);
    z = zcert_load(path);
    assert_non_null(z);
    assert_string_equal(zcert_public_txt(z), c.public_key);
    zcert_destroy(&z);

    /* The other way: CZMQ writes, we read (with metadata of its own). */
    z = zcert_new();
    zcert_set_meta(z, "name", "%s", "theirs");
    zcert_set_meta(z, "email", "%s", "ops@example.org");
    s_path(path, sizeof path, "theirs");
    assert_int_equal(zcert_save(z, path), 0);
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(tb_curve_cert_load(secret, 1, &back, err, sizeof err), 0);
    assert_string_equal(back.public_key, zcert_public_txt(z));
    assert_string_equal(back.secret_key, zcert_secret_txt(z));
    assert_string_equal(back.name, "theirs");
    assert_int_equal(tb_curve_cert_load(path, 0, &back, err, sizeof err), 0);
    assert_string_equal(back.public_key, zcert_public_txt(z));
    zcert_destroy(&z);
}

#define PUB "pg)ostj45)XK<5Eb:voIcL^6L^n%eAbJFUw!SIM?"
#define SEC "XS*^fx$ZAb1A5y2OM>#7[f@4Z5yU8dY0e}zzjFid"

static void test_parse_forms_and_refusals(void **state)
{
    (void)state;
    tb_curve_cert_t c;
    char err[256];
    /* A key with '#' and '=' in it, quoted; comments; CRLF; single quotes. */
    const char *good = "# comment\r\nmetadata\r\n    name = 'n1'   # trailing\r\n"
                       "curve\r\n    public-key = \"" PUB "\"\r\n"
                       "    secret-key = \"" SEC "\"\r\n";
    if (tb_curve_available()) {
        assert_int_equal(tb_curve_cert_parse(good, strlen(good), &c, err, sizeof err), 0);
        assert_string_equal(c.public_key, PUB);
        assert_string_equal(c.secret_key, SEC);
        assert_string_equal(c.name, "n1");
    }
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"metadata\n", "no public key"},
        {"curve\n    public-key = \"short\"\n", "not a Z85 key"},
        {"curve\n    public-key = \"" PUB "\n", "unterminated quote"},
        {"curve\n   public-key = \"" PUB "\"\n", "multiple of four"},
        {"curve\n    public-key = \"" PUB "\" junk\n", "text after a quoted value"},
        /* A valid Z85 string that is the wrong key for the secret. */
        {"curve\n    public-key = \"" SEC "\"\n    secret-key = \"" SEC "\"\n",
         "does not belong"},
        /* 40 characters, one of them outside Z85. */
        {"curve\n    public-key = \"pg)ostj45)XK<5Eb:voIcL^6L^n%eAbJFUw!SIM\\\"\n",
         "not a Z85 key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(tb_curve_cert_parse(bad[i].text, strlen(bad[i].text), &c, err, sizeof err),
                         TB_EPROTO);
        if (strstr(err, bad[i].why) == NULL) {
            fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].why);
        }
        assert_string_equal(c.secret_key, "");
    }
    /* A key in a section that is not "curve" is not a key. */
    const char *elsewhere = "metadata\n    public-key = \"" PUB "\"\n";
    assert_int_equal(tb_curve_cert_parse(elsewhere, strlen(elsewhere), &c, err, sizeof err),
                     TB_EPROTO);
}

static void test_load_refuses_open_secrets_and_odd_files(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    tb_curve_cert_t c;
    char path[256], err[512];
    const char *text = "curve\n    public-key = \"" PUB "\"\n    secret-key = \"" SEC "\"\n";
    s_write("open_secret", text, 0644);
    s_path(path, sizeof path, "open_secret");
    assert_int_equal(tb_curve_cert_load(path, 1, &c, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "accessible by others (mode 0644): chmod 600"));
    /* As a public certificate it is only read for its public key. */
    assert_int_equal(tb_curve_cert_load(path, 0, &c, err, sizeof err), 0);
    assert_string_equal(c.secret_key, "");
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(tb_curve_cert_load(path, 1, &c, err, sizeof err), 0);
    s_path(path, sizeof path, "missing");
    assert_int_equal(tb_curve_cert_load(path, 0, &c, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(tb_curve_cert_load(s_dir, 0, &c, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "not a regular file"));
    /* Too long to be a certificate. */
    char *big = malloc(TB_CURVE_FILE_MAX + 2);
    assert_non_null(big);
    memset(big, '#', TB_CURVE_FILE_MAX + 1);
    big[TB_CURVE_FILE_MAX + 1] = '\0';
    s_write("big", big, 0644);
    free(big);
    s_path(path, sizeof path, "big");
    assert_int_equal(tb_curve_cert_load(path, 0, &c, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "longer than 64 KiB"));
}

static void test_endpoints_open_to_the_network(void **state)
{
    (void)state;
    static const struct {
        const char *ep;
        int local;
    } cases[] = {
        {"tcp://127.0.0.1:5557", 1},    {"tcp://127.1.2.3:1", 1},
        {"tcp://[::1]:5557", 1},        {"tcp://localhost:5557", 1},
        {"tcp://lo:5557", 1},           {"ipc:///run/tapbus/ctl", 1},
        {"inproc://x", 1},              {"tcp://[::ffff:127.0.0.1]:1", 1},
        {"tcp://*:5557", 0},            {"tcp://0.0.0.0:5557", 0},
        {"tcp://[::]:5557", 0},         {"tcp://192.0.2.7:5557", 0},
        {"tcp://eth0:5557", 0},         {"tcp://collector.example:5557", 0},
        {"tcp://128.0.0.1:5557", 0},    {"pgm://eth0;239.192.1.1:5555", 0},
        {"tcp://", 0},                  {"tcp://:5557", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (tb_curve_endpoint_local(cases[i].ep) != cases[i].local) {
            fail_msg("%s: expected %s", cases[i].ep, cases[i].local ? "local" : "open");
        }
    }
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_files_and_modes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_czmq_reads_ours_and_we_read_czmq, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_parse_forms_and_refusals),
        cmocka_unit_test_setup_teardown(test_load_refuses_open_secrets_and_odd_files, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_endpoints_open_to_the_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
