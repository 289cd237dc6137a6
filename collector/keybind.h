/* keybind — which CURVE key each probe id came with.
 *
 * With CURVE, every bus message carries the public key its probe
 * authenticated with (the User-Id the guard gave its connection). The first
 * key an id comes with owns the id from then on; a message that claims the
 * id with another key — another probe given the same --id, or an allowed
 * key pretending to be somebody else — is refused and counted, so one
 * probe's key cannot feed, end or reset another probe's part of a stream.
 * The table is fixed in size: ids beyond it are refused too (and counted).
 * The bindings live as long as the collector runs.
 *
 * Not thread-safe: the collector's loop owns it. */
#ifndef TB_KEYBIND_H
#define TB_KEYBIND_H

#include "tb_curve.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

#define TB_KEYBIND_MAX 1024 /* probe ids remembered */

typedef struct {
    uint64_t ids;       /* ids bound now */
    uint64_t conflicts; /* messages refused: the id came with another key first */
    uint64_t full;      /* messages refused: a new id and no room */
    char last[256];     /* the latest refusal in words, "" before any */
} tb_keybind_counters_t;

typedef struct tb_keybind tb_keybind_t;

/* capacity: ids kept (1..TB_KEYBIND_MAX). NULL when out of memory. */
tb_keybind_t *tb_keybind_new(size_t capacity);

/* A message claims probe id `id` and came with key (Z85, borrowed). Returns
 * 0 when the id belongs to the key (bound now or before), TB_EPROTO when it
 * belongs to another key, TB_ELIMIT when the id is new and the table full;
 * refusals are counted and described (name: the key's certificate file, for
 * the description; may be NULL). */
int tb_keybind_check(tb_keybind_t *kb, const char *id, const char *key, const char *name);

void tb_keybind_counters(const tb_keybind_t *kb, tb_keybind_counters_t *out);

/* Accepts NULL, sets *p = NULL. */
void tb_keybind_destroy(tb_keybind_t **p);

#endif
