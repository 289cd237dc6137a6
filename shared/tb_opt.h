/* tb_opt — strict parsing of numbers and small pieces of command lines.
 * Never atoi: every value is range-checked and the whole string consumed. */
#ifndef TB_OPT_H
#define TB_OPT_H

#include <signal.h>
#include <stdint.h>

/* Parse a decimal unsigned integer in [min, max] into *out. Returns 0 or
 * TB_EINVAL (empty, trailing characters, out of range). */
int tb_opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Block SIGINT and SIGTERM in the calling thread (and the threads it starts
 * afterwards) and return a signalfd that becomes readable when one arrives,
 * or -1. Call before creating threads (ZeroMQ contexts start threads). */
int tb_opt_stop_fd(void);

#endif
