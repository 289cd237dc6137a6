/* stream_int — what the parts of the table of streams (stream.c and
 * stream_stage.c) share. */
#ifndef TB_STREAM_INT_H
#define TB_STREAM_INT_H

#include "stream.h"

/* A batch of a started stream (its probe's track pt): its capture times
 * judged, its points counted, its summaries staged and counted chunk by
 * chunk, and the packets received counted. */
void tb_streams_stage(tb_streams_t *t, tb_stream_t *st, tb_track_t *pt, const tb_wire_msg_t *m);

#endif
