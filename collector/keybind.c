/* keybind — see keybind.h. A plain array searched from the entry that
 * matched last: a collector hears a handful of probes, each in runs of
 * messages. */
#include "keybind.h"

#include "tb_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[TB_PROBE_ID_MAX + 1];
    char key[TB_CURVE_KEY_LEN + 1];
} bind_t;

struct tb_keybind {
    bind_t *b;
    size_t n, cap, last;
    tb_keybind_counters_t counters;
};

tb_keybind_t *tb_keybind_new(size_t capacity)
{
    if (capacity == 0 || capacity > TB_KEYBIND_MAX) {
        return NULL;
    }
    tb_keybind_t *kb = calloc(1, sizeof *kb);
    if (kb == NULL || (kb->b = calloc(capacity, sizeof *kb->b)) == NULL) {
        free(kb);
        return NULL;
    }
    kb->cap = capacity;
    return kb;
}

void tb_keybind_destroy(tb_keybind_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    free((*p)->b);
    free(*p);
    *p = NULL;
}

int tb_keybind_check(tb_keybind_t *kb, const char *id, const char *key, const char *name)
{
    const bind_t *found = NULL;
    for (size_t k = 0; k < kb->n && found == NULL; k++) {
        size_t i = (kb->last + k) % kb->n;
        if (strcmp(kb->b[i].id, id) == 0) {
            found = &kb->b[i];
            kb->last = i;
        }
    }
    if (found != NULL && strcmp(found->key, key) == 0) {
        return 0;
    }
    if (found != NULL) {
        kb->counters.conflicts++;
        snprintf(kb->counters.last, sizeof kb->counters.last,
                 "probe id '%s' claimed by key %s%s%s%s, but it came with key %s first", id, key,
                 name != NULL ? " (" : "", name != NULL ? name : "", name != NULL ? ")" : "",
                 found->key);
        return TB_EPROTO;
    }
    if (kb->n == kb->cap) {
        kb->counters.full++;
        snprintf(kb->counters.last, sizeof kb->counters.last,
                 "probe id '%s' from key %s: already %zu probe ids, no room for another", id, key,
                 kb->cap);
        return TB_ELIMIT;
    }
    bind_t *b = &kb->b[kb->n];
    snprintf(b->id, sizeof b->id, "%s", id);
    snprintf(b->key, sizeof b->key, "%s", key);
    kb->last = kb->n++;
    kb->counters.ids = kb->n;
    return 0;
}

void tb_keybind_counters(const tb_keybind_t *kb, tb_keybind_counters_t *out)
{
    *out = kb->counters;
}
