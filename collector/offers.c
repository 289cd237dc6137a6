/* offers — see offers.h. Entries live in one pool with a free stack; each
 * probe slot lists the pool indices of its streams, so an offer replaces its
 * probe's streams in O(streams offered) and never scans the whole pool. */
#include "offers.h"

#include "tb_err.h"
#include "tb_time.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char stream[TB_STREAM_MAX + 1];
    char kind[TB_KIND_MAX + 1];
    uint8_t state;
} entry_t;

typedef struct {
    int in_use;
    char id[TB_PROBE_ID_MAX + 1];
    uint64_t boot_ns;
    uint64_t last_ns; /* monotonic time of its latest offer */
    uint64_t ttl_ns;
    size_t n;
    uint32_t idx[TB_WIRE_MAX_OFFERS]; /* its entries in the pool */
} probe_t;

struct tb_offers {
    size_t max_probes, max_streams;
    probe_t *probes;
    entry_t *pool;
    uint32_t *free_idx; /* stack of unused pool indices */
    size_t nfree;
    tb_offers_counters_t cnt;
};

tb_offers_t *tb_offers_new(size_t max_probes, size_t max_streams)
{
    if (max_probes == 0 || max_streams == 0 || max_streams > UINT32_MAX) {
        return NULL;
    }
    tb_offers_t *o = calloc(1, sizeof *o);
    if (o == NULL) {
        return NULL;
    }
    o->max_probes = max_probes;
    o->max_streams = max_streams;
    o->probes = calloc(max_probes, sizeof *o->probes);
    o->pool = calloc(max_streams, sizeof *o->pool);
    o->free_idx = calloc(max_streams, sizeof *o->free_idx);
    if (o->probes == NULL || o->pool == NULL || o->free_idx == NULL) {
        tb_offers_destroy(&o);
        return NULL;
    }
    for (size_t i = 0; i < max_streams; i++) {
        o->free_idx[o->nfree++] = (uint32_t)(max_streams - 1 - i);
    }
    return o;
}

void tb_offers_destroy(tb_offers_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_offers_t *o = *p;
    *p = NULL;
    free(o->probes);
    free(o->pool);
    free(o->free_idx);
    free(o);
}

static void s_release_streams(tb_offers_t *o, probe_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        o->free_idx[o->nfree++] = p->idx[i];
    }
    o->cnt.streams -= p->n;
    p->n = 0;
}

int tb_offers_apply(tb_offers_t *o, const tb_wire_offer_t *m, uint64_t now_ns)
{
    probe_t *p = NULL, *free_slot = NULL;
    for (size_t i = 0; i < o->max_probes && p == NULL; i++) {
        if (o->probes[i].in_use && strcmp(o->probes[i].id, m->probe_id) == 0) {
            p = &o->probes[i];
        } else if (!o->probes[i].in_use && free_slot == NULL) {
            free_slot = &o->probes[i];
        }
    }
    if (p == NULL) {
        if (free_slot == NULL) {
            o->cnt.refused_probes++;
            return TB_ELIMIT;
        }
        p = free_slot;
        memset(p, 0, sizeof *p);
        p->in_use = 1;
        memcpy(p->id, m->probe_id, sizeof p->id);
        o->cnt.probes++;
    }
    o->cnt.received++;
    p->boot_ns = m->boot_ns;
    p->last_ns = now_ns;
    uint32_t ttl = m->ttl_ms < TB_OFFERS_TTL_MIN_MS   ? TB_OFFERS_TTL_MIN_MS
                   : m->ttl_ms > TB_OFFERS_TTL_MAX_MS ? TB_OFFERS_TTL_MAX_MS
                                                      : m->ttl_ms;
    p->ttl_ns = (uint64_t)ttl * TB_NS_PER_MS;
    /* The offer is the probe's whole list: it replaces the one before. */
    s_release_streams(o, p);
    int rc = 0;
    size_t n = m->n < TB_WIRE_MAX_OFFERS ? m->n : TB_WIRE_MAX_OFFERS;
    for (size_t i = 0; i < n; i++) {
        const tb_offer_entry_t *e = &m->entries[i];
        int dup = 0;
        for (size_t k = 0; k < p->n && !dup; k++) {
            dup = strcmp(o->pool[p->idx[k]].stream, e->stream) == 0;
        }
        if (dup) {
            continue;
        }
        if (o->nfree == 0) {
            o->cnt.refused_streams++;
            rc = TB_ELIMIT;
            continue;
        }
        uint32_t at = o->free_idx[--o->nfree];
        entry_t *x = &o->pool[at];
        memcpy(x->stream, e->stream, sizeof x->stream);
        memcpy(x->kind, e->kind, sizeof x->kind);
        x->state = e->state;
        p->idx[p->n++] = at;
        o->cnt.streams++;
    }
    return rc;
}

void tb_offers_touch(tb_offers_t *o, const char *probe_id, uint64_t now_ns)
{
    for (size_t i = 0; i < o->max_probes; i++) {
        if (o->probes[i].in_use && strcmp(o->probes[i].id, probe_id) == 0) {
            o->probes[i].last_ns = now_ns;
            return;
        }
    }
}

void tb_offers_count_bad(tb_offers_t *o)
{
    o->cnt.bad++;
}

void tb_offers_expire(tb_offers_t *o, uint64_t now_ns)
{
    for (size_t i = 0; i < o->max_probes; i++) {
        probe_t *p = &o->probes[i];
        if (p->in_use && now_ns - p->last_ns > p->ttl_ns) {
            s_release_streams(o, p);
            p->in_use = 0;
            o->cnt.probes--;
            o->cnt.expired++;
        }
    }
}

int tb_offers_get(const tb_offers_t *o, size_t i, uint64_t now_ns, tb_offer_view_t *v)
{
    for (size_t k = 0; k < o->max_probes; k++) {
        const probe_t *p = &o->probes[k];
        if (!p->in_use) {
            continue;
        }
        if (i >= p->n) {
            i -= p->n;
            continue;
        }
        const entry_t *e = &o->pool[p->idx[i]];
        v->probe_id = p->id;
        v->stream = e->stream;
        v->kind = e->kind;
        v->state = e->state;
        v->age_s = now_ns > p->last_ns ? (double)(now_ns - p->last_ns) / 1e9 : 0.0;
        return 1;
    }
    return 0;
}

const char *tb_offers_find(const tb_offers_t *o, const char *stream)
{
    for (size_t i = 0; i < o->max_probes; i++) {
        const probe_t *p = &o->probes[i];
        for (size_t k = 0; p->in_use && k < p->n; k++) {
            if (strcmp(o->pool[p->idx[k]].stream, stream) == 0) {
                return p->id;
            }
        }
    }
    return NULL;
}

const char *tb_offers_kind(const tb_offers_t *o, const char *stream)
{
    for (size_t i = 0; i < o->max_probes; i++) {
        const probe_t *p = &o->probes[i];
        for (size_t k = 0; p->in_use && k < p->n; k++) {
            if (strcmp(o->pool[p->idx[k]].stream, stream) == 0) {
                return o->pool[p->idx[k]].kind;
            }
        }
    }
    return NULL;
}

void tb_offers_counters(const tb_offers_t *o, tb_offers_counters_t *out)
{
    *out = o->cnt;
    out->max_probes = o->max_probes;
    out->max_streams = o->max_streams;
}
