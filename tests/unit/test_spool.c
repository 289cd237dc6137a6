/* Unit tests for the writer's bounded on-disk spool (collector/db/spool.h):
 * first-in first-out reading with byte-exact contents, points and creation
 * times; the info counters; replay after a restart and sequence numbers that
 * keep increasing; the limit on disk space, files counted by the blocks they
 * take and the directory included (oldest batches dropped and counted, an
 * oversized batch refused and counted, many tiny batches within the limit);
 * trimming the head, also across a restart; leftover temporary files and
 * foreign files; unreadable batch files; directories that cannot be used.
 * Each test works in its own temporary directory under /tmp, removed
 * afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test.h"

#include "spool.h"
#include "tb_err.h"
#include "tb_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define LIMIT (1ull << 20) /* a byte limit that the tests never reach */

/* Per test: a fresh directory (`dir`, not yet created: the spool makes it)
 * inside a temporary parent (`base`). */
typedef struct {
    char base[64];
    char dir[96];
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    if (tb_test_tmpdir(f->base, sizeof f->base, "spool") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/spool", f->base);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    tb_test_rmtree(f->base);
    free(f);
    return 0;
}

static tb_spool_t *s_open(const fixture_t *f, uint64_t max_bytes)
{
    char err[256] = "";
    tb_spool_t *s = tb_spool_open(f->dir, max_bytes, err, sizeof err);
    if (s == NULL) {
        fail_msg("tb_spool_open(%s): %s", f->dir, err);
    }
    return s;
}

/* A batch's text: `points` lines, distinct for each tag. */
static char *s_batch(unsigned tag, unsigned points)
{
    size_t cap = 64 + 48 * (size_t)points;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t used = 0;
    for (unsigned i = 0; i < points; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "cpu,batch=%u,line=%u value=%ui %u\n", tag,
                                 i, tag * 100 + i, 1000000 + tag);
    }
    return buf;
}

/* Read the head and check it is exactly `want` with its metadata. */
static void s_expect_head(tb_spool_t *s, const char *want, size_t want_len, uint64_t points,
                          uint64_t created)
{
    char *data = NULL;
    size_t len = 0;
    uint64_t p = 0, c = 0;
    assert_int_equal(tb_spool_head(s, &data, &len, &p, &c), 0);
    assert_non_null(data);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, want_len);
    assert_int_equal(data[len], '\0'); /* documented convenience: NUL-terminated */
    assert_int_equal(p, points);
    assert_int_equal(c, created);
    free(data);
}

static void s_expect_empty(tb_spool_t *s)
{
    char *data = NULL;
    size_t len = 0;
    uint64_t p = 0, c = 0;
    assert_int_equal(tb_spool_head(s, &data, &len, &p, &c), TB_ENOENT);
    assert_null(data);
}

/* Batch files (tb-*.lp) in the directory: count, bytes, and the sequence
 * numbers in directory order (at most `max`). */
static size_t s_files(const fixture_t *f, uint64_t *bytes, uint64_t *seqs, size_t max)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    size_t n = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq, points, created;
        int used = 0;
        if (sscanf(de->d_name, "tb-%" SCNu64 "-%" SCNu64 "-%" SCNu64 ".lp%n", &seq, &points,
                   &created, &used) != 3 ||
            used == 0 || de->d_name[used] != '\0') {
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        total += (uint64_t)sb.st_size;
        if (n < max) {
            seqs[n] = seq;
        }
        n++;
    }
    closedir(d);
    if (bytes != NULL) {
        *bytes = total;
    }
    return n;
}

/* The path of the batch file with sequence number seq. */
static void s_file_of(const fixture_t *f, uint64_t seq, char *path, size_t size)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    path[0] = '\0';
    while ((de = readdir(d)) != NULL) {
        uint64_t s, p, c;
        if (sscanf(de->d_name, "tb-%" SCNu64 "-%" SCNu64 "-%" SCNu64 ".lp", &s, &p, &c) == 3 &&
            s == seq) {
            snprintf(path, size, "%s/%s", f->dir, de->d_name);
        }
    }
    closedir(d);
    if (path[0] == '\0') {
        fail_msg("no batch file with sequence %" PRIu64, seq);
    }
}

static uint64_t s_max_seq(const fixture_t *f)
{
    uint64_t seqs[64], max = 0;
    size_t n = s_files(f, NULL, seqs, 64);
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        max = seqs[i] > max ? seqs[i] : max;
    }
    return max;
}

/* The filesystem's allocation unit under the fixture. */
static uint64_t s_unit(const fixture_t *f)
{
    struct statvfs vfs;
    assert_int_equal(statvfs(f->base, &vfs), 0);
    return vfs.f_frsize >= 512 ? (uint64_t)vfs.f_frsize : 4096;
}

/* What an empty spool counts against its limit (its directory and the room
 * to grow it); the directory stays, empty. */
static uint64_t s_overhead(const fixture_t *f)
{
    tb_spool_t *s = s_open(f, LIMIT);
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 0);
    tb_spool_close(&s);
    return info.disk_bytes;
}

/* The disk space the spool directory really takes: its own blocks and every
 * file's (st_blocks, in 512-byte units). */
static uint64_t s_allocated(const fixture_t *f)
{
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), 0);
    uint64_t total = (uint64_t)sb.st_blocks * 512;
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
        if (lstat(path, &sb) == 0) {
            total += (uint64_t)sb.st_blocks * 512;
        }
    }
    closedir(d);
    return total;
}

static void s_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* A new, an empty, and a foreign-only directory open as empty spools (under
 * UBSan this also guards against sorting an index that was never allocated). */
static void test_open_empty_directory(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT); /* created */
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 0);
    assert_int_equal(info.bytes, 0);
    assert_int_equal(info.points, 0);
    assert_int_equal(info.oldest_ns, 0);
    assert_int_equal(info.dropped, 0);
    s_expect_empty(s);
    tb_spool_close(&s);
    s = s_open(f, LIMIT); /* exists, empty */
    s_expect_empty(s);
    tb_spool_close(&s);
    char path[512];
    snprintf(path, sizeof path, "%s/README", f->dir);
    s_write_file(path, "not a batch\n");
    s = s_open(f, LIMIT); /* foreign files only */
    s_expect_empty(s);
    assert_int_equal(tb_spool_push(s, "a 1\n", 4, 1, 9), 0);
    s_expect_head(s, "a 1\n", 4, 1, 9);
    tb_spool_close(&s);
}

static void test_fifo_and_info(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 0);
    assert_int_equal(info.bytes, 0);
    assert_int_equal(info.points, 0);
    assert_int_equal(info.oldest_ns, 0);
    assert_int_equal(info.dropped, 0);
    s_expect_empty(s);

    static const unsigned pts[3] = {3, 1, 5};
    static const uint64_t created[3] = {1700000000000000001ull, 1700000000000000002ull,
                                        1600000000000000000ull}; /* not monotonic: kept as is */
    char *b[3];
    uint64_t bytes = 0;
    for (int i = 0; i < 3; i++) {
        b[i] = s_batch((unsigned)i + 1, pts[i]);
        assert_int_equal(tb_spool_push(s, b[i], strlen(b[i]), pts[i], created[i]), 0);
        bytes += strlen(b[i]);
    }
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 3);
    assert_int_equal(info.bytes, bytes);
    assert_int_equal(info.points, 9);
    assert_int_equal(info.oldest_ns, created[0]);
    assert_int_equal(info.dropped, 0);
    uint64_t disk = 0, seqs[8];
    assert_int_equal(s_files(f, &disk, seqs, 8), 3);
    assert_int_equal(disk, bytes);

    /* Reading does not consume. */
    s_expect_head(s, b[0], strlen(b[0]), pts[0], created[0]);
    s_expect_head(s, b[0], strlen(b[0]), pts[0], created[0]);
    for (int i = 0; i < 3; i++) {
        s_expect_head(s, b[i], strlen(b[i]), pts[i], created[i]);
        tb_spool_pop(s);
        bytes -= strlen(b[i]);
        tb_spool_info(s, &info);
        assert_int_equal(info.batches, 2 - i);
        assert_int_equal(info.bytes, bytes);
        assert_int_equal(info.oldest_ns, i < 2 ? created[i + 1] : 0);
        assert_int_equal(s_files(f, NULL, seqs, 8), (size_t)(2 - i));
    }
    tb_spool_info(s, &info);
    assert_int_equal(info.points, 0);
    s_expect_empty(s);
    tb_spool_pop(s); /* popping an empty spool is harmless */
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 0);
    tb_spool_close(&s);
    assert_null(s);
    tb_spool_close(&s); /* NULL is accepted */
    for (int i = 0; i < 3; i++) {
        free(b[i]);
    }
}

/* Binary-safe contents: NUL bytes and no trailing newline survive. */
static void test_binary_contents(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    static const char data[] = {'a', '\0', 'b', '\n', '\xff', 'c'};
    assert_int_equal(tb_spool_push(s, data, sizeof data, 2, 42), 0);
    s_expect_head(s, data, sizeof data, 2, 42);
    tb_spool_close(&s);
    s = s_open(f, LIMIT);
    s_expect_head(s, data, sizeof data, 2, 42);
    tb_spool_close(&s);
}

/* Many batches with interleaved pops (the index compacts itself): strict
 * first-in first-out. */
static void test_many_batches_fifo(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    unsigned next_push = 0, next_pop = 0;
    for (int round = 0; round < 40; round++) {
        for (int k = 0; k < 7; k++) {
            char *b = s_batch(next_push, 1 + next_push % 3);
            assert_int_equal(tb_spool_push(s, b, strlen(b), 1 + next_push % 3, next_push), 0);
            free(b);
            next_push++;
        }
        for (int k = 0; k < 5; k++) {
            char *b = s_batch(next_pop, 1 + next_pop % 3);
            s_expect_head(s, b, strlen(b), 1 + next_pop % 3, next_pop);
            free(b);
            tb_spool_pop(s);
            next_pop++;
        }
    }
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, next_push - next_pop);
    assert_int_equal(info.oldest_ns, next_pop);
    tb_spool_close(&s);
    /* And the same order after a restart. */
    s = s_open(f, LIMIT);
    while (next_pop < next_push) {
        char *b = s_batch(next_pop, 1 + next_pop % 3);
        s_expect_head(s, b, strlen(b), 1 + next_pop % 3, next_pop);
        free(b);
        tb_spool_pop(s);
        next_pop++;
    }
    s_expect_empty(s);
    tb_spool_close(&s);
}

static void test_reopen_keeps_order_and_sequence(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    char *b[6];
    for (unsigned i = 0; i < 6; i++) {
        b[i] = s_batch(i + 10, i + 1);
    }
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(tb_spool_push(s, b[i], strlen(b[i]), i + 1, 100 + i), 0);
    }
    uint64_t before = s_max_seq(f);
    tb_spool_close(&s);

    /* Restart: the same batches, in the same order, with the same info. */
    s = s_open(f, LIMIT);
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 3);
    assert_int_equal(info.points, 1 + 2 + 3);
    assert_int_equal(info.bytes, strlen(b[0]) + strlen(b[1]) + strlen(b[2]));
    assert_int_equal(info.oldest_ns, 100);
    assert_int_equal(info.dropped, 0);
    /* A new push goes after them, with a higher sequence number. */
    assert_int_equal(tb_spool_push(s, b[3], strlen(b[3]), 4, 103), 0);
    assert_true(s_max_seq(f) > before);
    s_expect_head(s, b[0], strlen(b[0]), 1, 100);
    tb_spool_pop(s);
    tb_spool_close(&s);

    /* Restart after a pop: the rest, then a push, in order. */
    s = s_open(f, LIMIT);
    before = s_max_seq(f);
    assert_int_equal(tb_spool_push(s, b[4], strlen(b[4]), 5, 104), 0);
    assert_true(s_max_seq(f) > before);
    tb_spool_close(&s);
    s = s_open(f, LIMIT);
    assert_int_equal(tb_spool_push(s, b[5], strlen(b[5]), 6, 105), 0);
    for (unsigned i = 1; i < 6; i++) {
        s_expect_head(s, b[i], strlen(b[i]), i + 1, 100 + i);
        tb_spool_pop(s);
    }
    s_expect_empty(s);
    tb_spool_close(&s);
    for (unsigned i = 0; i < 6; i++) {
        free(b[i]);
    }
}

/* The limit is on disk space: batches of one to three allocation units
 * (36 bytes to 9 KB), a limit of ten units beyond the directory's share. */
static void test_byte_limit_drops_oldest(void **state)
{
    fixture_t *f = *state;
    const uint64_t unit = s_unit(f), limit = s_overhead(f) + 10 * unit;
    tb_spool_t *s = s_open(f, limit);
    uint64_t pushed_points = 0, seqs[64];
    unsigned first_alive = 0;
    for (unsigned i = 0; i < 40; i++) {
        unsigned pts = 1 + (i * 37) % 250;
        char *b = s_batch(i, pts);
        assert_int_equal(tb_spool_push(s, b, strlen(b), pts, 1000 + i), 0);
        free(b);
        pushed_points += pts;
        tb_spool_info_t info;
        tb_spool_info(s, &info);
        uint64_t bytes = 0;
        size_t files = s_files(f, &bytes, seqs, 64);
        assert_true(info.disk_bytes <= limit);
        assert_true(s_allocated(f) <= limit);
        assert_int_equal(bytes, info.bytes);
        assert_int_equal(files, info.batches);
        /* Every point is either still spooled or counted as dropped. */
        assert_int_equal(info.points + info.dropped, pushed_points);
        /* The newest batch is always kept (it fits), and what remains is a
         * contiguous run of the newest batches. */
        assert_true(info.batches >= 1);
        assert_int_equal(info.oldest_ns, 1000 + (i + 1 - info.batches));
        assert_true(i + 1 - info.batches >= first_alive); /* only the oldest go */
        first_alive = i + 1 - (unsigned)info.batches;
    }
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_true(info.dropped > 0);
    /* What is left reads back in order. */
    for (unsigned i = first_alive; i < 40; i++) {
        unsigned pts = 1 + (i * 37) % 250;
        char *b = s_batch(i, pts);
        s_expect_head(s, b, strlen(b), pts, 1000 + i);
        free(b);
        tb_spool_pop(s);
    }
    s_expect_empty(s);
    tb_spool_close(&s);
}

/* Regression: many tiny batches (one 36-byte line each) under a 128 KiB
 * limit. Counted by their length, 400 of them fit and took 1.6 MB (each file
 * takes a block); counted by the blocks they take, the spool's directory
 * with its files stays within the limit at every moment. */
static void test_tiny_batches_bound_disk(void **state)
{
    fixture_t *f = *state;
    const uint64_t limit = 128 << 10;
    tb_spool_t *s = s_open(f, limit);
    uint64_t most = 0;
    for (unsigned i = 0; i < 400; i++) {
        char *b = s_batch(i, 1);
        assert_int_equal(tb_spool_push(s, b, strlen(b), 1, i), 0);
        free(b);
        uint64_t used = s_allocated(f);
        most = used > most ? used : most;
        if (used > limit) {
            fail_msg("after %u batches of 36 bytes the spool takes %" PRIu64
                     " bytes on disk, limit %" PRIu64,
                     i + 1, used, limit);
        }
    }
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    printf("400 tiny batches: %" PRIu64 " batches kept, %" PRIu64 " bytes of text, %" PRIu64
           " counted, at most %" PRIu64 " on disk, limit %" PRIu64 "\n",
           info.batches, info.bytes, info.disk_bytes, most, limit);
    assert_true(info.disk_bytes <= limit);
    assert_int_equal(info.points + info.dropped, 400);
    assert_true(info.batches >= 1 && info.batches < 400);
    tb_spool_close(&s);
}

/* Exactly the limit fits (the others go); one byte more is refused, counted,
 * and does not evict anything. The limit is four allocation units beyond
 * the directory's share. */
static void test_oversized_batch(void **state)
{
    fixture_t *f = *state;
    char *small = s_batch(1, 2);
    const uint64_t unit = s_unit(f);
    size_t room = (size_t)(4 * unit);
    tb_spool_t *s = s_open(f, s_overhead(f) + room);
    assert_int_equal(tb_spool_push(s, small, strlen(small), 2, 1), 0);
    assert_int_equal(tb_spool_push(s, small, strlen(small), 2, 2), 0);

    char *big = malloc(room + 2);
    assert_non_null(big);
    memset(big, 'x', room + 1);
    big[room] = '\n';
    big[room + 1] = '\0';
    tb_spool_info_t info;
    /* room + 1 bytes: not kept; the return value is 0 or an error, but the
     * points must be counted and nothing else may go. */
    int rc = tb_spool_push(s, big, room + 1, 7, 3);
    assert_true(rc <= 0);
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 2);
    assert_int_equal(info.points, 4);
    assert_int_equal(info.dropped, 7);
    assert_int_equal(info.oldest_ns, 1);
    uint64_t seqs[8];
    assert_int_equal(s_files(f, NULL, seqs, 8), 2);

    /* Exactly the room: kept, the two small batches make room. */
    assert_int_equal(tb_spool_push(s, big + 1, room, 5, 4), 0);
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 1);
    assert_int_equal(info.bytes, room);
    assert_int_equal(info.points, 5);
    assert_int_equal(info.dropped, 7 + 4);
    s_expect_head(s, big + 1, room, 5, 4);
    tb_spool_close(&s);
    free(big);
    free(small);
}

static void test_trim_head(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    assert_int_equal(tb_spool_trim_head(s, "x\n", 2, 1), TB_ENOENT); /* nothing to trim */
    char *b1 = s_batch(1, 4), *b2 = s_batch(2, 2);
    assert_int_equal(tb_spool_push(s, b1, strlen(b1), 4, 111), 0);
    assert_int_equal(tb_spool_push(s, b2, strlen(b2), 2, 222), 0);
    /* The remainder: b1 without its first line. */
    const char *rest = strchr(b1, '\n') + 1;
    size_t rest_len = strlen(rest);
    assert_int_equal(tb_spool_trim_head(s, rest, rest_len, 3), 0);
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 2);
    assert_int_equal(info.points, 3 + 2);
    assert_int_equal(info.bytes, rest_len + strlen(b2));
    assert_int_equal(info.oldest_ns, 111);
    s_expect_head(s, rest, rest_len, 3, 111);
    uint64_t disk = 0, seqs[8];
    assert_int_equal(s_files(f, &disk, seqs, 8), 2); /* the old file is gone */
    assert_int_equal(disk, info.bytes);
    tb_spool_close(&s);

    /* After a restart: the trimmed head, then b2. */
    s = s_open(f, LIMIT);
    tb_spool_info(s, &info);
    assert_int_equal(info.points, 3 + 2);
    assert_int_equal(info.bytes, rest_len + strlen(b2));
    s_expect_head(s, rest, rest_len, 3, 111);
    /* Trim again, keeping the number of points (fewer bytes). */
    const char *last = strrchr(b1, '\n');
    while (last > b1 && last[-1] != '\n') {
        last--;
    }
    assert_int_equal(tb_spool_trim_head(s, last, strlen(last), 3), 0);
    tb_spool_close(&s);
    s = s_open(f, LIMIT);
    s_expect_head(s, last, strlen(last), 3, 111);
    tb_spool_pop(s);
    s_expect_head(s, b2, strlen(b2), 2, 222);
    tb_spool_pop(s);
    s_expect_empty(s);
    assert_int_equal(s_files(f, NULL, seqs, 8), 0);
    tb_spool_close(&s);
    free(b1);
    free(b2);
}

static void test_leftovers_and_foreign_files(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mkdir(f->dir, 0750), 0);
    char path[512];
    /* An interrupted write. */
    snprintf(path, sizeof path, "%s/.tb-00000000000000000007.tmp", f->dir);
    s_write_file(path, "half a batch");
    /* Foreign files, and names that only look like batches. */
    static const char *const foreign[] = {"notes.txt", "tb-1-2-3.lp.bak", "tb-x-2-3.lp",
                                          "tb-1-2.lp", "TB-00000000000000000001-1-1.lp"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, foreign[i]);
        s_write_file(path, "foreign\n");
    }
    /* A directory with a batch's name. */
    snprintf(path, sizeof path, "%s/tb-00000000000000000009-1-1.lp", f->dir);
    assert_int_equal(mkdir(path, 0750), 0);
    /* A batch left by a previous run. */
    snprintf(path, sizeof path, "%s/tb-00000000000000000005-2-777.lp", f->dir);
    s_write_file(path, "a v=1i 1\nb v=2i 2\n");

    tb_spool_t *s = s_open(f, LIMIT);
    snprintf(path, sizeof path, "%s/.tb-00000000000000000007.tmp", f->dir);
    assert_int_equal(access(path, F_OK), -1); /* removed */
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, foreign[i]);
        assert_int_equal(access(path, F_OK), 0); /* left alone */
    }
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 1);
    assert_int_equal(info.points, 2);
    assert_int_equal(info.bytes, 18);
    assert_int_equal(info.oldest_ns, 777);
    assert_int_equal(tb_spool_push(s, "c v=3i 3\n", 9, 1, 888), 0);
    assert_true(s_max_seq(f) > 5);
    s_expect_head(s, "a v=1i 1\nb v=2i 2\n", 18, 2, 777);
    tb_spool_pop(s);
    s_expect_head(s, "c v=3i 3\n", 9, 1, 888);
    tb_spool_pop(s);
    s_expect_empty(s);
    tb_spool_close(&s);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, foreign[i]);
        assert_int_equal(access(path, F_OK), 0); /* still left alone */
    }
}

/* A batch file that cannot be read is dropped, counted, and reported by
 * TB_EIO; the next head is the following batch. Three ways: truncated after
 * the spool indexed it (short read), replaced by a directory, deleted; and
 * unreadable permissions when not running as root. */
static void test_unreadable_batches(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    char *b[5];
    for (unsigned i = 0; i < 5; i++) {
        b[i] = s_batch(i, i + 1);
        assert_int_equal(tb_spool_push(s, b[i], strlen(b[i]), i + 1, 500 + i), 0);
    }
    uint64_t seqs[8];
    assert_int_equal(s_files(f, NULL, seqs, 8), 5);
    uint64_t first = s_max_seq(f) - 4; /* sequence of b[0] */
    char path[512];

    s_file_of(f, first, path, sizeof path); /* b[0]: truncated */
    assert_int_equal(truncate(path, 3), 0);
    s_file_of(f, first + 1, path, sizeof path); /* b[1]: a directory now */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0750), 0);
    s_file_of(f, first + 2, path, sizeof path); /* b[2]: gone */
    assert_int_equal(unlink(path), 0);
    int perm = geteuid() != 0; /* root reads anything */
    if (perm) {
        s_file_of(f, first + 3, path, sizeof path); /* b[3]: no permission */
        assert_int_equal(chmod(path, 0), 0);
    }

    char *data = NULL;
    size_t len = 0;
    uint64_t p = 0, c = 0, dropped = 0;
    tb_spool_info_t info;
    for (unsigned i = 0; i < (perm ? 4u : 3u); i++) {
        assert_int_equal(tb_spool_head(s, &data, &len, &p, &c), TB_EIO);
        assert_null(data);
        dropped += i + 1;
        tb_spool_info(s, &info);
        assert_int_equal(info.dropped, dropped);
        assert_int_equal(info.batches, 4 - i);
        assert_int_equal(info.oldest_ns, 500 + i + 1);
    }
    if (!perm) {
        s_expect_head(s, b[3], strlen(b[3]), 4, 503);
        tb_spool_pop(s);
    }
    s_expect_head(s, b[4], strlen(b[4]), 5, 504);
    tb_spool_pop(s);
    s_expect_empty(s);
    tb_spool_info(s, &info);
    assert_int_equal(info.points, 0);
    assert_int_equal(info.bytes, 0);
    tb_spool_close(&s);
    /* The directory with a batch's name is ignored after a restart. */
    s = s_open(f, LIMIT);
    s_expect_empty(s);
    tb_spool_close(&s);
    for (unsigned i = 0; i < 5; i++) {
        free(b[i]);
    }
}

static void test_open_failures(void **state)
{
    fixture_t *f = *state;
    char err[256], path[256];
    /* Under a regular file. */
    snprintf(path, sizeof path, "%s/file", f->base);
    s_write_file(path, "not a directory\n");
    snprintf(path, sizeof path, "%s/file/spool", f->base);
    err[0] = '\0';
    assert_null(tb_spool_open(path, LIMIT, err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, path));
    /* The path is a regular file. */
    snprintf(path, sizeof path, "%s/file", f->base);
    err[0] = '\0';
    assert_null(tb_spool_open(path, LIMIT, err, sizeof err));
    assert_true(strlen(err) > 0);
    /* A missing parent is not created either. */
    snprintf(path, sizeof path, "%s/no/such/dir", f->base);
    err[0] = '\0';
    assert_null(tb_spool_open(path, LIMIT, err, sizeof err));
    assert_true(strlen(err) > 0);
    /* A zero limit. */
    err[0] = '\0';
    assert_null(tb_spool_open(f->dir, 0, err, sizeof err));
    assert_true(strlen(err) > 0);
    /* The directory is created when missing. */
    tb_spool_t *s = s_open(f, LIMIT);
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    tb_spool_close(&s);
}

/* A push that cannot write its file (the directory became read-only or was
 * removed) reports TB_EIO and leaves the index unchanged. */
static void test_push_write_failure(void **state)
{
    fixture_t *f = *state;
    tb_spool_t *s = s_open(f, LIMIT);
    assert_int_equal(tb_spool_push(s, "a 1\n", 4, 1, 1), 0);
    /* Replace the directory by a regular file: creating files in it fails,
     * even for root. */
    char moved[160];
    snprintf(moved, sizeof moved, "%s/moved", f->base);
    assert_int_equal(rename(f->dir, moved), 0);
    s_write_file(f->dir, "x");
    assert_int_equal(tb_spool_push(s, "b 2\n", 4, 1, 2), TB_EIO);
    tb_spool_info_t info;
    tb_spool_info(s, &info);
    assert_int_equal(info.batches, 1);
    assert_int_equal(info.points, 1);
    assert_int_equal(info.dropped, 0); /* the caller still holds the data */
    assert_int_equal(unlink(f->dir), 0);
    assert_int_equal(rename(moved, f->dir), 0);
    s_expect_head(s, "a 1\n", 4, 1, 1);
    tb_spool_close(&s);
}

int main(void)
{
    /* The spool logs every drop; keep the output readable unless asked. */
    if (getenv("TB_TEST_VERBOSE") == NULL) {
        tb_log_set_level(TB_LOG_ERROR);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_empty_directory, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fifo_and_info, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_binary_contents, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_many_batches_fifo, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_order_and_sequence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_byte_limit_drops_oldest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_batch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tiny_batches_bound_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_trim_head, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_and_foreign_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_batches, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_open_failures, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_push_write_failure, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
