/* tb_options — see tb_options.h. */
#include "tb_options.h"

#include "tb_conf.h"
#include "tb_opt.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* A long option's getopt value: its index in the table, above any letter. */
#define S_LONG_BASE 256

struct tb_options {
    const tb_options_spec_t *spec;
    struct option *longopts; /* every named option, for getopt_long and printing */
    struct option *fileopts; /* those a file or the environment may set */
    char shortopts[128];
    unsigned char *given; /* per table entry: set by a file, a variable or argv */
    tb_conf_args_t conf;
    int built; /* conf holds an argument list */
};

static int s_has_value(const tb_option_t *o)
{
    return o->type != TB_OPTION_FLAG && o->type != TB_OPTION_HELP &&
           o->type != TB_OPTION_PRINT_CONFIG && o->type != TB_OPTION_TEXT;
}

tb_options_t *tb_options_new(const tb_options_spec_t *spec)
{
    tb_options_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    self->spec = spec;
    self->longopts = calloc(spec->noptions + 1, sizeof *self->longopts);
    self->fileopts = calloc(spec->noptions + 1, sizeof *self->fileopts);
    self->given = calloc(spec->noptions + 1, 1);
    if (self->longopts == NULL || self->fileopts == NULL || self->given == NULL) {
        tb_options_destroy(&self);
        return NULL;
    }
    size_t nl = 0, nf = 0, ns = 0;
    /* "-": words that are not options come in order, to spec->word. */
    if (spec->word != NULL) {
        self->shortopts[ns++] = '-';
    }
    for (size_t i = 0; i < spec->noptions; i++) {
        const tb_option_t *o = &spec->options[i];
        if (o->type == TB_OPTION_TEXT) {
            continue;
        }
        struct option lo = {o->name, s_has_value(o) ? required_argument : no_argument, NULL,
                            S_LONG_BASE + (int)i};
        if (o->name != NULL) {
            self->longopts[nl++] = lo;
            if (!(o->flags & TB_OPTION_CLI_ONLY)) {
                self->fileopts[nf++] = lo;
            }
        }
        if (o->letter != 0 && ns + 3 < sizeof self->shortopts) {
            self->shortopts[ns++] = o->letter;
            if (s_has_value(o)) {
                self->shortopts[ns++] = ':';
            }
        }
    }
    self->shortopts[ns] = '\0';
    return self;
}

void tb_options_destroy(tb_options_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    tb_options_t *self = *self_p;
    if (self->built) {
        tb_conf_free(&self->conf);
    }
    free(self->longopts);
    free(self->fileopts);
    free(self->given);
    free(self);
    *self_p = NULL;
}

/* The table's entry for a getopt value (a long option's or a letter). */
static const tb_option_t *s_entry(const tb_options_spec_t *spec, int c)
{
    if (c >= S_LONG_BASE && (size_t)(c - S_LONG_BASE) < spec->noptions) {
        return &spec->options[c - S_LONG_BASE];
    }
    for (size_t i = 0; c > 0 && i < spec->noptions; i++) {
        if (spec->options[i].letter == c && spec->options[i].type != TB_OPTION_TEXT) {
            return &spec->options[i];
        }
    }
    return NULL;
}

/* "error|warn|info" -> the index of word, or -1. */
static int s_word_index(const char *words, const char *word)
{
    size_t len = strlen(word);
    int i = 0;
    for (const char *p = words; p != NULL; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, word, n) == 0) {
            return i;
        }
        p = bar != NULL ? bar + 1 : NULL;
    }
    return -1;
}

/* "a|b|c" -> "a, b or c". */
static void s_word_list(const char *words, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = words; p != NULL && n < size;) {
        const char *bar = strchr(p, '|');
        int len = bar != NULL ? (int)(bar - p) : (int)strlen(p);
        const char *sep = p == words ? "" : bar == NULL ? " or " : ", ";
        n += (size_t)snprintf(buf + n, size - n, "%s%.*s", sep, len, p);
        p = bar != NULL ? bar + 1 : NULL;
    }
}

/* The message for a refused value, without the origin. */
static void s_refused(const tb_option_t *o, char *err, size_t errsize)
{
    if (o->error != NULL) {
        snprintf(err, errsize, "%s", o->error);
    } else if (o->type == TB_OPTION_ENUM) {
        char list[256];
        s_word_list(o->words, list, sizeof list);
        snprintf(err, errsize, "--%s must be %s", o->name, list);
    } else if (o->type == TB_OPTION_DOUBLE) {
        snprintf(err, errsize, "--%s must be %g-%g", o->name, o->dmin, o->dmax);
    } else {
        snprintf(err, errsize, "--%s must be %llu-%llu", o->name, (unsigned long long)o->min,
                 (unsigned long long)o->max);
    }
}

static void s_store_uint(void *field, size_t size, uint64_t v)
{
    switch (size) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(field, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(field, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, 4);
        break;
    }
    case 8:
        memcpy(field, &v, 8);
        break;
    default:
        break;
    }
}

static uint64_t s_load_uint(const void *field, size_t size)
{
    uint8_t b;
    uint16_t h;
    uint32_t w;
    uint64_t q = 0;
    switch (size) {
    case 1:
        memcpy(&b, field, 1);
        return b;
    case 2:
        memcpy(&h, field, 2);
        return h;
    case 4:
        memcpy(&w, field, 4);
        return w;
    case 8:
        memcpy(&q, field, 8);
        return q;
    default:
        return 0;
    }
}

/* Check one value and store it (or hand it to the setter). Returns 0, a
 * negative tb_err_t with the reason in err (TB_EINVAL: out of range or not
 * one of the words; TB_ELIMIT: a list full; a setter's), or a setter's
 * positive code. */
static int s_apply(const tb_option_t *o, void *cfg, const char *arg, const char *origin, char *err,
                   size_t errsize)
{
    tb_option_value_t v = {arg, 0, 0.0, origin};
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case TB_OPTION_U64:
        if (tb_opt_u64(arg, o->min, o->max, &v.u) != 0) {
            s_refused(o, err, errsize);
            return TB_EINVAL;
        }
        break;
    case TB_OPTION_DOUBLE: {
        char *end = NULL;
        errno = 0;
        v.d = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0' || !(v.d >= o->dmin && v.d <= o->dmax)) {
            s_refused(o, err, errsize);
            return TB_EINVAL;
        }
        break;
    }
    case TB_OPTION_ENUM: {
        int i = s_word_index(o->words, arg);
        if (i < 0) {
            s_refused(o, err, errsize);
            return TB_EINVAL;
        }
        v.u = (uint64_t)i;
        break;
    }
    default:
        break;
    }
    if (o->set != NULL) {
        return o->set(cfg, o, &v, err, errsize);
    }
    if (o->size == 0) {
        return 0;
    }
    switch (o->type) {
    case TB_OPTION_FLAG:
    case TB_OPTION_ENUM:
        s_store_uint(field, o->size, o->type == TB_OPTION_FLAG ? 1 : v.u);
        break;
    case TB_OPTION_STRING:
        memcpy(field, &arg, sizeof arg);
        break;
    case TB_OPTION_LIST: {
        size_t n;
        memcpy(&n, (char *)cfg + o->count_offset, sizeof n);
        if (n >= o->max) {
            snprintf(err, errsize, "too many --%s options", o->name);
            return TB_ELIMIT;
        }
        memcpy(field + n * sizeof arg, &arg, sizeof arg);
        n++;
        memcpy((char *)cfg + o->count_offset, &n, sizeof n);
        break;
    }
    case TB_OPTION_U64:
        s_store_uint(field, o->size, v.u);
        break;
    case TB_OPTION_DOUBLE:
        if (o->size == sizeof v.d) {
            memcpy(field, &v.d, sizeof v.d);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* err = origin + err. */
static void s_prefix(const char *origin, char *err, size_t errsize)
{
    if (origin[0] == '\0') {
        return;
    }
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errsize, "%s%s", origin, tmp);
}

int tb_options_parse(tb_options_t *self, void *cfg, int argc, char **argv, char *err,
                     size_t errsize)
{
    const tb_options_spec_t *spec = self->spec;
    if (self->built) {
        snprintf(err, errsize, "options parsed twice");
        return TB_OPTIONS_EVALUE;
    }
    if (tb_conf_build(spec->env_prefix, self->fileopts, argc, argv, &self->conf, err, errsize) !=
        0) {
        return TB_OPTIONS_EVALUE;
    }
    self->built = 1;
    /* The file and the environment may set only fileopts; printing what was
     * set needs every option's shape. */
    self->conf.opts = self->longopts;
    argc = self->conf.argc;
    argv = self->conf.argv;
    optind = 0; /* a fresh scan (glibc: also re-reads the optstring) */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, self->shortopts, self->longopts, NULL)) != -1) {
        const char *origin = tb_conf_origin(&self->conf, optind - 1);
        if (c == 1) { /* a word, in "-" mode */
            if (spec->word(cfg, optarg, err, errsize) != 0) {
                s_prefix(origin, err, errsize);
                return TB_OPTIONS_EVALUE;
            }
            continue;
        }
        const tb_option_t *o = c == '?' || c == ':' ? NULL : s_entry(spec, c);
        if (o == NULL) {
            int rc = TB_OPTIONS_EUNKNOWN;
            const tb_option_t *short_o = s_entry(spec, optopt);
            if (optopt > 0 && optopt < S_LONG_BASE && short_o != NULL) {
                rc = TB_OPTIONS_EMISSING;
                if (short_o->error != NULL) {
                    snprintf(err, errsize, "%s", short_o->error);
                } else {
                    snprintf(err, errsize, "-%c needs a value", optopt);
                }
            } else if (optopt > 0 && optopt < S_LONG_BASE) {
                snprintf(err, errsize, "unknown option '-%c'", optopt);
            } else {
                snprintf(err, errsize, "unknown or incomplete option '%s'", argv[optind - 1]);
            }
            s_prefix(origin, err, errsize);
            return rc;
        }
        self->given[o - spec->options] = 1;
        if (o->type == TB_OPTION_CONFIG || o->type == TB_OPTION_PRINT_CONFIG) {
            continue; /* taken by tb_conf_build */
        }
        if (o->type == TB_OPTION_HELP && o->set == NULL) {
            return TB_OPTIONS_HELP;
        }
        int rc = s_apply(o, cfg, s_has_value(o) ? optarg : NULL, origin, err, errsize);
        if (rc < 0) {
            s_prefix(origin, err, errsize);
            return TB_OPTIONS_EVALUE;
        }
        if (rc > 0) {
            return rc;
        }
    }
    for (int i = optind; i < argc; i++) { /* after "--", or words refused */
        const char *origin = tb_conf_origin(&self->conf, i);
        if (spec->word == NULL) {
            snprintf(err, errsize, "unexpected argument '%s'", argv[i]);
            s_prefix(origin, err, errsize);
            return TB_OPTIONS_EUNKNOWN;
        }
        if (spec->word(cfg, argv[i], err, errsize) != 0) {
            s_prefix(origin, err, errsize);
            return TB_OPTIONS_EVALUE;
        }
    }
    return 0;
}

int tb_options_print_only(const tb_options_t *self)
{
    return self->built && self->conf.print_only;
}

int tb_options_is_set(const tb_options_t *self, const char *name)
{
    for (size_t i = 0; self->built && i < self->spec->noptions; i++) {
        const tb_option_t *o = &self->spec->options[i];
        if (self->given[i] && o->name != NULL && o->type != TB_OPTION_TEXT &&
            strcmp(o->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

void tb_options_default(const tb_option_t *o, const void *defaults, char *buf, size_t size)
{
    buf[0] = '\0';
    if (o->show != NULL) {
        o->show(defaults, buf, size);
        return;
    }
    if (o->size == 0 || defaults == NULL) {
        return;
    }
    const char *field = (const char *)defaults + o->offset;
    switch (o->type) {
    case TB_OPTION_U64:
        snprintf(buf, size, "%llu", (unsigned long long)s_load_uint(field, o->size));
        break;
    case TB_OPTION_DOUBLE: {
        double d = 0;
        if (o->size == sizeof d) {
            memcpy(&d, field, sizeof d);
        }
        snprintf(buf, size, "%g", d);
        break;
    }
    case TB_OPTION_STRING: {
        const char *s = NULL;
        if (o->size == sizeof s) { /* a pointer; a buffer a setter fills has no default */
            memcpy(&s, field, sizeof s);
        }
        snprintf(buf, size, "%s", s != NULL ? s : "");
        break;
    }
    case TB_OPTION_ENUM: {
        uint64_t i = s_load_uint(field, o->size);
        const char *p = o->words;
        for (uint64_t k = 0; p != NULL && k < i; k++) {
            p = strchr(p, '|');
            p = p != NULL ? p + 1 : NULL;
        }
        if (p != NULL) {
            snprintf(buf, size, "%.*s", (int)strcspn(p, "|"), p);
        }
        break;
    }
    default: /* flags are off, lists empty */
        break;
    }
}

void tb_options_print_config(const tb_options_t *self, const void *defaults, FILE *out)
{
    const tb_options_spec_t *spec = self->spec;
    tb_conf_print(&self->conf, out);
    for (size_t i = 0; i < spec->noptions; i++) {
        const tb_option_t *o = &spec->options[i];
        if (o->name == NULL || o->type == TB_OPTION_TEXT || o->type == TB_OPTION_HELP ||
            o->type == TB_OPTION_CONFIG || o->type == TB_OPTION_PRINT_CONFIG || self->given[i]) {
            continue;
        }
        char value[512];
        tb_options_default(o, defaults, value, sizeof value);
        if (value[0] == '\0') {
            fprintf(out, "# %s    # not set\n", o->name);
        } else {
            fprintf(out, "%s = \"%s\"    # default\n", o->name, value);
        }
    }
}

/* One option's help: "  --name ARG", its text from `column` (on the next
 * line when the name is too long), later lines indented as much. */
static void s_help_entry(const tb_option_t *o, const void *defaults, int column, FILE *out)
{
    char left[160];
    int n;
    if (o->name != NULL) {
        n = snprintf(left, sizeof left, "  --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
    } else {
        n = snprintf(left, sizeof left, "  -%c%s%s", o->letter, o->arg ? " " : "",
                     o->arg ? o->arg : "");
    }
    fputs(left, out);
    int at = n;
    if (n + 2 > column) {
        fputs("  ", out);
        at = n + 2;
    }
    for (const char *p = o->help; *p != '\0'; p++) {
        if (at < column) {
            fprintf(out, "%*s", column - at, "");
            at = column;
        }
        if (strncmp(p, "{range}", 7) == 0) {
            if (o->type == TB_OPTION_DOUBLE) {
                at += fprintf(out, "%g-%g", o->dmin, o->dmax);
            } else {
                at += fprintf(out, "%llu-%llu", (unsigned long long)o->min,
                              (unsigned long long)o->max);
            }
            p += 6;
        } else if (strncmp(p, "{default}", 9) == 0) {
            char value[256];
            tb_options_default(o, defaults, value, sizeof value);
            at += fprintf(out, "%s", value);
            p += 8;
        } else if (*p == '\n') {
            fputc('\n', out);
            at = 0;
        } else {
            fputc(*p, out);
            at++;
        }
    }
    fputc('\n', out);
}

void tb_options_help(const tb_options_spec_t *spec, const void *defaults, FILE *out)
{
    if (spec->usage != NULL) {
        fputs(spec->usage, out);
    }
    for (size_t i = 0; i < spec->noptions; i++) {
        const tb_option_t *o = &spec->options[i];
        if (o->help == NULL) {
            continue;
        }
        if (o->type == TB_OPTION_TEXT) {
            fputs(o->help, out);
        } else {
            s_help_entry(o, defaults, spec->help_column > 0 ? spec->help_column : 23, out);
        }
    }
    if (spec->footer != NULL) {
        fputs(spec->footer, out);
    }
}
