/* keygen — `tapbusctl keygen NAME`: a new CURVE key pair in CZMQ's
 * certificate format (tb_curve.h): NAME holds the public key, NAME_secret
 * both keys (mode 0600). Existing files are never overwritten. */
#ifndef TB_KEYGEN_H
#define TB_KEYGEN_H

#include "cmd.h"

/* words: exactly one, NAME (a file name, possibly with a directory). Prints
 * the public key and the files written. Returns tapbusctl's exit code: 0,
 * TB_CALL_USAGE (2) for a bad NAME, or TB_CALL_REFUSED (1) when no key can
 * be made (no CURVE in this libzmq) or written (a file exists, a write
 * error), with one line printed. */
int tb_keygen_run(const tb_cmd_words_t *words);

#endif
