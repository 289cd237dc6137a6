/* recording — reading back what tb-bus-sink --record wrote: each bus
 * message body after its length as 4 bytes, little-endian. Shared by the
 * tools that replay or decode a recording. */
#ifndef TB_TOOLS_RECORDING_H
#define TB_TOOLS_RECORDING_H

#include <stddef.h>
#include <stdint.h>

/* The whole file in memory (free() it), its size in *len; NULL when it
 * cannot be read or memory runs out. */
uint8_t *tb_rec_load(const char *path, size_t *len);

/* The body at *off of the recording buf[0, len): 1 with *body and *n set
 * and *off past it, 0 at the end (fewer than 4 bytes left), -1 when a body
 * is cut short. */
int tb_rec_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **body, uint32_t *n);

#endif
