/* tb_options — a program's options described once, in a table, and everything
 * that follows from it: the getopt_long arrays, parsing with range checks and
 * one-line errors, the configuration file and environment (tb_conf: file <
 * environment < command line, each value's origin "FILE:LINE" or "$VAR"),
 * --help and --print-config.
 *
 * Each entry says where its value goes: a field of the program's options
 * struct (offsetof and sizeof, TB_OPTION_FIELD), or a setter for the odd
 * ones (a value that fills two fields, a certificate to load, a list with
 * its own shape). Strings stored are borrowed from the argument list the
 * tb_options_t owns: it must outlive their use.
 *
 * Ownership: the spec and its table are borrowed (static tables); the
 * tb_options_t owns the argument list. Not thread-safe (getopt). */
#ifndef TB_OPTIONS_H
#define TB_OPTIONS_H

#include "tb_err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    TB_OPTION_TEXT,         /* not an option: text of --help (a heading, a note) */
    TB_OPTION_FLAG,         /* no value: an int set to 1 */
    TB_OPTION_STRING,       /* a const char * */
    TB_OPTION_LIST,         /* repeatable: const char *[max], count in a size_t */
    TB_OPTION_U64,          /* an unsigned number in [min, max], stored in the field's width */
    TB_OPTION_DOUBLE,       /* a double in [dmin, dmax] */
    TB_OPTION_ENUM,         /* one of words ("error|warn|info|debug"): its index, an int */
    TB_OPTION_HELP,         /* --help: parsing stops with TB_OPTIONS_HELP */
    TB_OPTION_CONFIG,       /* --config FILE (taken by tb_conf) */
    TB_OPTION_PRINT_CONFIG, /* --print-config (tb_options_print_only) */
} tb_option_type_t;

#define TB_OPTION_CLI_ONLY 1u /* not from a configuration file or the environment */

/* A value as parsed, for a setter. */
typedef struct {
    const char *arg;    /* the argument as given; NULL for a flag */
    uint64_t u;         /* U64: the number; ENUM: the word's index */
    double d;           /* DOUBLE: the number */
    const char *origin; /* "FILE:LINE: ", "$VARIABLE: " or "" (command line) */
} tb_option_value_t;

typedef struct tb_option tb_option_t;

/* Store a value (range already checked). Returns 0; a negative tb_err_t
 * (TB_EINVAL, ...) with a one-line reason in err (without the origin, which
 * is prefixed); or a positive code that stops parsing and is returned by
 * tb_options_parse. */
typedef int (*tb_option_set_fn)(void *cfg, const tb_option_t *opt, const tb_option_value_t *v,
                                char *err, size_t errsize);

/* The default to show (--help's {default}, --print-config) from the
 * defaults' struct; "" when there is none. */
typedef void (*tb_option_show_fn)(const void *cfg, char *buf, size_t size);

struct tb_option {
    tb_option_type_t type;
    const char *name;       /* long name; NULL: the letter only (never from a file) */
    char letter;            /* short option, or 0 */
    const char *arg;        /* --help: what the value is ("N", "FILE") */
    const char *help;       /* --help; "{range}" and "{default}" are filled in; a line per
                             * '\n', indented. NULL: not listed. TEXT: printed as is */
    size_t offset;          /* the field (TB_OPTION_FIELD) */
    size_t size;            /* its size; 0: no field (a setter) */
    size_t count_offset;    /* LIST: the size_t count (TB_OPTION_COUNT) */
    uint64_t min, max;      /* U64: the range; LIST: max = the array's length */
    double dmin, dmax;      /* DOUBLE: the range */
    const char *words;      /* ENUM: "a|b|c" */
    const char *error;      /* the message for a refused value; NULL: "--NAME must be ..." */
    tb_option_set_fn set;   /* instead of storing in the field */
    tb_option_show_fn show; /* instead of reading the field */
    unsigned flags;         /* TB_OPTION_CLI_ONLY */
};

#define TB_OPTION_FIELD(T, m)  .offset = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define TB_OPTION_COUNT(T, m)  .count_offset = offsetof(T, m)
#define TB_OPTION_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *env_prefix;     /* "TAPBUS_PROBE": TAPBUS_PROBE_CONFIG, TAPBUS_PROBE_NAME */
    const char *usage;          /* --help: the text before the table */
    const char *footer;         /* --help: after it, or NULL */
    const tb_option_t *options; /* the table (borrowed) */
    size_t noptions;
    int help_column; /* where help text starts, e.g. 23 */
    /* Words that are not options, in order (the getopt "-" mode): NULL
     * refuses them ("unexpected argument"). Returns 0, or a negative
     * tb_err_t with err. */
    int (*word)(void *cfg, const char *word, char *err, size_t errsize);
} tb_options_spec_t;

/* tb_options_parse's results besides 0: --help, or which kind of mistake
 * (tb_err_t codes, so tb_strerror names them too). */
enum {
    TB_OPTIONS_HELP = 1,             /* --help was given: print tb_options_help */
    TB_OPTIONS_EVALUE = TB_EINVAL,   /* a value refused, a file or variable malformed */
    TB_OPTIONS_EUNKNOWN = TB_ENOENT, /* an unknown or incomplete option, an unexpected word */
    TB_OPTIONS_EMISSING = TB_ETRUNC, /* a short option without its value */
};

typedef struct tb_options tb_options_t;

/* Returns NULL when out of memory. spec is borrowed and must outlive it. */
tb_options_t *tb_options_new(const tb_options_spec_t *spec);

/* Frees the argument list (and so the strings stored from it). */
void tb_options_destroy(tb_options_t **self_p);

/* Parse the configuration file, the environment and argv into cfg, in that
 * order (a later value wins; lists accumulate). Returns 0, TB_OPTIONS_HELP, a
 * setter's positive code, or a negative TB_OPTIONS_E* with one line in err,
 * prefixed with the value's origin ("collector.conf:3: --top must be 1-64").
 * Call once. */
int tb_options_parse(tb_options_t *self, void *cfg, int argc, char **argv, char *err,
                     size_t errsize);

/* Whether --print-config was given. */
int tb_options_print_only(const tb_options_t *self);

/* Whether the option was given anywhere (file, environment, command line). */
int tb_options_is_set(const tb_options_t *self, const char *name);

/* --print-config: the options set, where each came from, then every other
 * option with its default as `defaults` (the program's struct before
 * parsing) holds it. */
void tb_options_print_config(const tb_options_t *self, const void *defaults, FILE *out);

/* --help from the table, defaults filled in from `defaults`. */
void tb_options_help(const tb_options_spec_t *spec, const void *defaults, FILE *out);

/* An option's default as text ("" when none), as --print-config shows it. */
void tb_options_default(const tb_option_t *opt, const void *defaults, char *buf, size_t size);

#endif
