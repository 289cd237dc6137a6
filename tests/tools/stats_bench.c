/* tb-stats-bench — the collector's per-packet statistics work, alone.
 *
 *   tb-stats-bench PCAP [ROUNDS [packet|grouped]]
 *
 * Decodes the capture into summaries once, then times (CPU time of this
 * thread, best of ROUNDS, default 3) feeding them in chunks of TB_AGG_CHUNK
 * to the statistics the collector keeps for a stream with the database
 * sink on: the stream's totals and top flows / hosts, and an interval's
 * top flows / hosts and distinct-flow estimate (four top-N tables of 4,096
 * entries). Two ways: "per packet" (each packet's keys built and hashed per
 * table, one top-N update per packet and table) and "grouped" (batchagg:
 * keys built and hashed once per packet, one update per distinct key and
 * table, as the collector does); and the same with the stream's statistics
 * only (no database sink). Prints ns per packet of each. */
#include "batchagg.h"
#include "hll.h"
#include "stats.h"
#include "tb_hash.h"
#include "topk.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAP 4096

static double s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    tb_stats_t *st;
    tb_topk_t *flows, *hosts;
    tb_hll_t hll;
} tables_t;

static void s_tables(tables_t *t, uint64_t seed)
{
    t->st = tb_stats_new(CAP, CAP, seed);
    t->flows = tb_topk_new(CAP, sizeof(tb_flow_key_t), seed);
    t->hosts = tb_topk_new(CAP, sizeof(tb_host_key_t), TB_HOST_SEED(seed));
    tb_hll_reset(&t->hll);
    if (t->st == NULL || t->flows == NULL || t->hosts == NULL) {
        fprintf(stderr, "tb-stats-bench: out of memory\n");
        exit(1);
    }
}

static void s_free(tables_t *t)
{
    tb_stats_destroy(&t->st);
    tb_topk_destroy(&t->flows);
    tb_topk_destroy(&t->hosts);
}

/* What the collector did before batchagg: every table on its own (with_db:
 * the interval's tables too). */
static void s_per_packet(tables_t *t, const tb_summary_t *s, size_t n, uint64_t seed,
                         tb_batchagg_t *agg, int with_db)
{
    tb_batchagg_build(agg, s, 0, TB_AGG_GROUP_ALL); /* scalars only through tb_stats_add below */
    tb_stats_add(t->st, s, n, agg);
    for (size_t i = 0; i < n; i++) {
        tb_flow_key_t fk;
        tb_flow_key(&s[i], &fk);
        uint64_t h = tb_hash_bytes(&fk, sizeof fk, seed);
        tb_topk_add_hashed(t->st->flows, &fk, h, s[i].wire_len);
        if (with_db) {
            tb_hll_add(&t->hll, tb_hash_bytes(&fk, sizeof fk, seed));
            tb_topk_add(t->flows, &fk, s[i].wire_len);
        }
        if (s[i].family != 0) {
            const uint8_t *addr[2] = {s[i].src, s[i].dst};
            for (int k = 0; k < 2; k++) {
                tb_host_key_t hk;
                tb_host_key(&hk, s[i].family, addr[k]);
                tb_topk_add(t->st->hosts, &hk, s[i].wire_len);
                if (with_db) {
                    tb_topk_add(t->hosts, &hk, s[i].wire_len);
                }
            }
        }
    }
}

static void s_grouped(tables_t *t, const tb_summary_t *s, size_t n, tb_batchagg_t *agg,
                      int with_db)
{
    tb_batchagg_build(agg, s, n, TB_AGG_GROUP_ALL);
    tb_stats_add(t->st, s, n, agg);
    if (with_db) {
        tb_batchagg_count(agg, t->flows, t->hosts, &t->hll);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tb-stats-bench PCAP [ROUNDS [packet|grouped]]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    /* A third argument "packet" or "grouped" runs only that way (for perf). */
    int only = -1;
    if (argc > 3) {
        if (strcmp(argv[3], "grouped") != 0 && strcmp(argv[3], "packet") != 0) {
            fprintf(stderr, "tb-stats-bench: the third argument is packet or grouped\n");
            return 2;
        }
        only = strcmp(argv[3], "grouped") == 0;
    }
    char perr[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, perr);
    if (p == NULL) {
        fprintf(stderr, "tb-stats-bench: %s\n", perr);
        return 1;
    }
    size_t cap = 1 << 20, n = 0;
    tb_summary_t *s = malloc(cap * sizeof *s);
    struct pcap_pkthdr *h;
    const u_char *d;
    while (s != NULL && pcap_next_ex(p, &h, &d) == 1) {
        if (n == cap) {
            cap *= 2;
            tb_summary_t *t = realloc(s, cap * sizeof *s);
            if (t == NULL) {
                break;
            }
            s = t;
        }
        (void)tb_decode(pcap_datalink(p), d, h->caplen, h->len,
                        (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec, &s[n++]);
    }
    pcap_close(p);
    static tb_batchagg_t agg;
    uint64_t seed = 0x1234567;
    double best[4] = {1e9, 1e9, 1e9, 1e9}; /* per packet, grouped; with and without db */
    uint64_t chunks = 0, flows = 0, hosts = 0;
    for (int r = 0; r < rounds; r++) {
        for (int way = 0; way < 4; way++) {
            int with_db = way < 2;
            if (only >= 0 && way % 2 != only) {
                continue;
            }
            tables_t t;
            s_tables(&t, seed);
            tb_batchagg_init(&agg, seed);
            double t0 = s_cpu();
            for (size_t off = 0; off < n; off += TB_AGG_CHUNK) {
                size_t k = n - off < TB_AGG_CHUNK ? n - off : TB_AGG_CHUNK;
                if (way % 2 == 0) {
                    s_per_packet(&t, s + off, k, seed, &agg, with_db);
                } else {
                    s_grouped(&t, s + off, k, &agg, with_db);
                    if (r == 0 && with_db) {
                        chunks++;
                        flows += agg.nflows;
                        hosts += agg.nhosts;
                    }
                }
            }
            double dt = s_cpu() - t0;
            best[way] = dt < best[way] ? dt : best[way];
            s_free(&t);
        }
    }
    if (chunks > 0) { /* counted by the grouped way */
        printf("%zu packets, per chunk of %d: %.0f distinct flows, %.0f distinct hosts\n", n,
               TB_AGG_CHUNK, (double)flows / (double)chunks, (double)hosts / (double)chunks);
    } else {
        printf("%zu packets\n", n);
    }
    /* A way not measured (ONLY) is left out of the lines. */
    const char *what[2] = {"with the database's interval tables:", "the stream's statistics only:       "};
    for (int db = 0; db < 2; db++) {
        double pp = best[2 * db] * 1e9 / (double)n, gr = best[2 * db + 1] * 1e9 / (double)n;
        if (only < 0) {
            printf("%s per packet %.1f ns/packet, grouped %.1f ns/packet (%.2fx)\n", what[db], pp,
                   gr, pp / gr);
        } else {
            printf("%s %s %.1f ns/packet\n", what[db], only ? "grouped" : "per packet",
                   only ? gr : pp);
        }
    }
    free(s);
    return 0;
}
