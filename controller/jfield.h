/* jfield — the fields of a collector's reply read leniently. A reply comes
 * from the network and from a collector that may be older or newer than
 * tapbusctl: a field missing or of another type reads as 0 or "", never
 * as an error, and counters saturate rather than wrap. Pure functions; the
 * object is borrowed (NULL reads as empty). */
#ifndef TB_JFIELD_H
#define TB_JFIELD_H

#include <jansson.h>

/* o[key] as an integer: a real (a counter past 2^63, mpjson.h) saturated to
 * the int64 range, anything else 0. */
json_int_t tb_jint(const json_t *o, const char *key);

/* a + b, saturated. */
json_int_t tb_jadd(json_int_t a, json_int_t b);

/* o[key] as a number (integer or real), else 0. */
double tb_jnum(const json_t *o, const char *key);

/* o[key] as a string (borrowed from o), else "". */
const char *tb_jstr(const json_t *o, const char *key);

/* The index of the first string s in array (a reply's "columns"), or -1. */
int tb_jindex(const json_t *array, const char *s);

#endif
