/* cmd — tapbusctl's commands: one table says each command's usage line, its
 * help paragraph (`tapbusctl COMMAND --help`), how many streams it names and
 * the range of its -n; the words after a command become the control request
 * it sends (tb_cmd_request). Running a command that asks the collectors is
 * cmd_run.h; serve and keygen have their own modules (serve.h, keygen.h).
 *
 * Plain data and pure functions: no threads, no state. */
#ifndef TB_CMD_H
#define TB_CMD_H

#include "tb_ctl.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How many streams a command names. */
typedef enum {
    TB_CMD_ANY,  /* none (all) or several */
    TB_CMD_SOME, /* at least one */
    TB_CMD_ONE,  /* exactly one */
    TB_CMD_NONE, /* none */
    TB_CMD_OWN   /* words of its own (db, serve, keygen) */
} tb_cmd_streams_t;

/* A command: one line of usage and a paragraph, for `COMMAND --help`, and
 * its arguments: its streams, and -n N in 1..nmax (0: no -n). */
typedef struct {
    const char *name;
    const char *args;
    const char *help;
    tb_cmd_streams_t streams;
    uint64_t nmax;
    const char *n_what; /* what N counts */
} tb_cmd_t;

/* The words after the command, at most TB_CTL_MAX_STREAMS (borrowed from
 * the argument list). */
typedef struct {
    const char *word[TB_CTL_MAX_STREAMS];
    size_t n;
} tb_cmd_words_t;

/* The command named name (a static entry), or NULL. */
const tb_cmd_t *tb_cmd_find(const char *name);

/* `COMMAND --help`: its usage line and paragraph. */
void tb_cmd_usage(const tb_cmd_t *c, FILE *out);

/* "tapbusctl: MSG (see --help)" on stderr; returns the usage exit code
 * (TB_CALL_USAGE). */
int tb_cmd_usage_error(const char *msg);

/* Append a word. Returns 0, or TB_ELIMIT with the reason in msg (more than
 * TB_CTL_MAX_STREAMS). */
int tb_cmd_words_add(tb_cmd_words_t *w, const char *word, char *msg, size_t size);

/* The request of a command that asks the collectors (not help, keygen,
 * serve) from its words and -n (n_text, NULL when not given; *n keeps its
 * default then): the words checked against the command's streams, -n
 * against its range. probes asks for status. Returns 0, or TB_EINVAL with a
 * usage error in msg. */
int tb_cmd_request(const tb_cmd_t *c, const tb_cmd_words_t *w, const char *n_text,
                   tb_ctl_request_t *req, uint64_t *n, char *msg, size_t size);

#endif
