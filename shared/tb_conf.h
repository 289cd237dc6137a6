/* tb_conf — configuration files and environment variables for the programs'
 * long options, with the command line winning.
 *
 * The programs describe their options in a table (tb_options.h), which
 * parses with getopt_long the argument list tb_conf_build gives it: the
 * options of the configuration file, then those set in the environment,
 * then the command line, so a later one overrides an earlier one (and
 * repeatable options accumulate).
 *
 * File (--config FILE, or the variable PREFIX_CONFIG): one option per line,
 * its long name without the dashes:
 *
 *     # collector.conf
 *     probe = tcp://edge1:5556
 *     probe = tcp://edge2:5556
 *     influx-url = http://db:8086
 *     influx-create-db            # an option without a value: on
 *     max-streams = "512"         # quotes keep spaces and '#'
 *
 * Environment: PREFIX_NAME, the option's name in upper case with '-' as '_'
 * (TAPBUS_COLLECTOR_MAX_STREAMS=512); for an option without a value, 1/true/
 * yes/on sets it and 0/false/no/off leaves it out.
 *
 * Unknown keys and malformed lines are refused with the file and line. Where
 * each argument came from is kept, so a program can name the file and line
 * of a bad value (tb_conf_origin). */
#ifndef TB_CONF_H
#define TB_CONF_H

#include <getopt.h>
#include <stdio.h>

typedef struct {
    int argc;
    char **argv;               /* argv[0] is the program; NULL-terminated */
    char **origin;             /* per argument: "FILE:LINE", "$VARIABLE", or NULL (command line) */
    int print_only;            /* --print-config was given */
    const struct option *opts; /* the program's options (borrowed) */
} tb_conf_args_t;

/* Build the list. opts: the program's long options (it must accept
 * "config" and "print-config"). Returns 0, or a negative tb_err_t with a
 * one-line reason in err: TB_EINVAL for a malformed line or value or an
 * unknown key (e.g. "collector.conf:7: unknown key 'flow'"), TB_ELIMIT for
 * a line too long, TB_EIO when the file cannot be read, TB_ENOMEM. */
int tb_conf_build(const char *env_prefix, const struct option *opts, int argc, char **argv,
                  tb_conf_args_t *out, char *err, size_t errsize);

/* Where argument `index` came from: "FILE:LINE: ", "$VARIABLE: " or "" for
 * the command line (ready to prefix a message). */
const char *tb_conf_origin(const tb_conf_args_t *a, int index);

/* Print the options set as a configuration file, each with where it came
 * from. */
void tb_conf_print(const tb_conf_args_t *a, FILE *out);

void tb_conf_free(tb_conf_args_t *a);

#endif
