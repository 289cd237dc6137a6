/* tb_conf — see tb_conf.h. */
#include "tb_conf.h"

#include "tb_err.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 4096

typedef struct {
    char **argv;
    char **origin;
    int n, cap;
} vec_t;

static int s_push(vec_t *v, const char *arg, const char *origin)
{
    if (v->n + 2 > v->cap) {
        int cap = v->cap ? v->cap * 2 : 32;
        char **a = realloc(v->argv, (size_t)cap * sizeof *a);
        if (a == NULL) {
            return TB_ENOMEM;
        }
        v->argv = a;
        char **o = realloc(v->origin, (size_t)cap * sizeof *o);
        if (o == NULL) {
            return TB_ENOMEM;
        }
        v->origin = o;
        v->cap = cap;
    }
    char *a = strdup(arg);
    char *o = origin != NULL ? strdup(origin) : NULL;
    if (a == NULL || (origin != NULL && o == NULL)) {
        free(a);
        free(o);
        return TB_ENOMEM;
    }
    v->argv[v->n] = a;
    v->origin[v->n] = o;
    v->n++;
    v->argv[v->n] = NULL;
    v->origin[v->n] = NULL;
    return 0;
}

static const struct option *s_find(const struct option *opts, const char *name)
{
    if (strcmp(name, "config") == 0 || strcmp(name, "print-config") == 0 ||
        strcmp(name, "help") == 0) {
        return NULL; /* not settable from a file or the environment */
    }
    for (const struct option *o = opts; o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
    }
    return NULL;
}

/* On or off: *on 1 or 0. Returns 0, or TB_EINVAL for neither. */
static int s_bool(const char *v, int *on)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *on = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *on = 0;
            return 0;
        }
    }
    return TB_EINVAL;
}

/* Add "--name [value]" for one setting. value NULL: none given. Returns 0,
 * or TB_EINVAL or TB_ENOMEM with the reason in err. */
static int s_setting(vec_t *v, const struct option *o, const char *value, const char *origin,
                     char *err, size_t errsize)
{
    char opt[128];
    snprintf(opt, sizeof opt, "--%s", o->name);
    if (o->has_arg == no_argument) {
        int b = 1;
        if (value != NULL && s_bool(value, &b) != 0) {
            snprintf(err, errsize, "%s'%s' is on or off (true/false), not '%s'", origin, o->name,
                     value);
            return TB_EINVAL;
        }
        return b ? s_push(v, opt, origin) : 0;
    }
    if (value == NULL) {
        snprintf(err, errsize, "%s'%s' needs a value ('%s = ...')", origin, o->name, o->name);
        return TB_EINVAL;
    }
    if (s_push(v, opt, origin) != 0 || s_push(v, value, origin) != 0) {
        snprintf(err, errsize, "out of memory");
        return TB_ENOMEM;
    }
    return 0;
}

/* One line of a file: "key", "key = value", "key = "quoted value"",
 * comments after '#'. Returns 0 (also for blank lines), or a negative
 * tb_err_t (TB_EINVAL: malformed, an unknown key) with the reason in err. */
static int s_line(vec_t *v, const struct option *opts, char *line, const char *origin, char *err,
                  size_t errsize)
{
    char *p = line;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '\0' || *p == '#') {
        return 0;
    }
    char *key = p;
    while (*p && *p != '=' && !isspace((unsigned char)*p) && *p != '#') {
        p++;
    }
    char *key_end = p;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    char *value = NULL;
    if (*p == '=') {
        p++;
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == '"') {
            value = ++p;
            char *q = strchr(p, '"');
            if (q == NULL) {
                snprintf(err, errsize, "%sunterminated quote", origin);
                return TB_EINVAL;
            }
            *q = '\0';
            p = q + 1;
            while (isspace((unsigned char)*p)) {
                p++;
            }
            if (*p != '\0' && *p != '#') {
                snprintf(err, errsize, "%sunexpected text after the quoted value", origin);
                return TB_EINVAL;
            }
        } else {
            value = p;
            char *hash = strchr(p, '#');
            if (hash != NULL) {
                *hash = '\0';
            }
            size_t n = strlen(value);
            while (n > 0 && isspace((unsigned char)value[n - 1])) {
                value[--n] = '\0';
            }
            if (n == 0) {
                snprintf(err, errsize, "%sempty value (quote it: \"\")", origin);
                return TB_EINVAL;
            }
        }
    } else if (*p != '\0' && *p != '#') {
        snprintf(err, errsize, "%sexpected 'key = value' or 'key'", origin);
        return TB_EINVAL;
    }
    *key_end = '\0';
    const struct option *o = s_find(opts, key);
    if (o == NULL) {
        snprintf(err, errsize, "%sunknown key '%.64s'", origin, key);
        return TB_EINVAL;
    }
    return s_setting(v, o, value, origin, err, errsize);
}

/* The settings of a configuration file. Returns 0, or with the reason in
 * err TB_EIO (cannot read it), TB_ELIMIT (a line too long) or s_line's
 * error. */
static int s_file(vec_t *v, const struct option *opts, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsize, "cannot read configuration %s: %s", path, strerror(errno));
        return TB_EIO;
    }
    char line[LINE_MAX_LEN + 2];
    char origin[4200];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        snprintf(origin, sizeof origin, "%s:%d: ", path, lineno);
        size_t n = strlen(line);
        if (n > LINE_MAX_LEN && line[n - 1] != '\n') {
            snprintf(err, errsize, "%sline longer than %d bytes", origin, LINE_MAX_LEN);
            rc = TB_ELIMIT;
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        rc = s_line(v, opts, line, origin, err, errsize);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errsize, "cannot read configuration %s", path);
        rc = TB_EIO;
    }
    fclose(f);
    return rc;
}

/* The settings of the environment's PREFIX_NAME variables. Returns 0 or
 * s_setting's error. */
static int s_env(vec_t *v, const char *prefix, const struct option *opts, char *err, size_t errsize)
{
    for (const struct option *o = opts; o->name != NULL; o++) {
        if (s_find(opts, o->name) == NULL) {
            continue;
        }
        char var[160];
        int n = snprintf(var, sizeof var, "%s_", prefix);
        for (const char *c = o->name; *c && n < (int)sizeof var - 1; c++) {
            var[n++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
        }
        var[n] = '\0';
        const char *value = getenv(var);
        if (value == NULL) {
            continue;
        }
        char origin[200];
        snprintf(origin, sizeof origin, "$%s: ", var);
        int rc = s_setting(v, o, value, origin, err, errsize);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int tb_conf_build(const char *env_prefix, const struct option *opts, int argc, char **argv,
                  tb_conf_args_t *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    vec_t v = {0};
    const char *config = NULL;
    char var[160];
    snprintf(var, sizeof var, "%s_CONFIG", env_prefix);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            out->print_only = 1;
        }
    }
    if (config == NULL) {
        config = getenv(var);
    }
    int rc = s_push(&v, argc > 0 ? argv[0] : "tapbus", NULL);
    if (rc == 0 && config != NULL && *config != '\0') {
        rc = s_file(&v, opts, config, err, errsize);
    }
    if (rc == 0) {
        rc = s_env(&v, env_prefix, opts, err, errsize);
    }
    for (int i = 1; rc == 0 && i < argc; i++) {
        rc = s_push(&v, argv[i], NULL);
        if (rc != 0) {
            snprintf(err, errsize, "out of memory");
        }
    }
    out->argc = v.n;
    out->opts = opts;
    out->argv = v.argv;
    out->origin = v.origin;
    if (rc != 0) {
        tb_conf_free(out);
        return rc;
    }
    return 0;
}

const char *tb_conf_origin(const tb_conf_args_t *a, int index)
{
    if (index < 0 || index >= a->argc || a->origin == NULL || a->origin[index] == NULL) {
        return "";
    }
    return a->origin[index];
}

/* The option at argv[*i] ("--name", "--name=value" or "--name value"):
 * its name into key and its value (or NULL), *i left on its last word.
 * Returns 0, or TB_EINVAL when argv[*i] is not an option. */
static int s_option_at(const tb_conf_args_t *a, int *i, char *key, size_t size, const char **value)
{
    const char *arg = a->argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        return TB_EINVAL;
    }
    const char *eq = strchr(arg, '=');
    snprintf(key, size, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2), arg + 2);
    *value = eq ? eq + 1 : NULL;
    const struct option *o = a->opts;
    while (o != NULL && o->name != NULL && strcmp(o->name, key) != 0) {
        o++;
    }
    if (*value == NULL && o != NULL && o->name != NULL && o->has_arg != no_argument &&
        *i + 1 < a->argc) {
        *value = a->argv[++*i];
    }
    return 0;
}

void tb_conf_print(const tb_conf_args_t *a, FILE *out)
{
    fprintf(out, "# the options in effect, in the order they apply (a later one wins),\n"
                 "# then the defaults of those not set\n");
    for (int i = 1; i < a->argc; i++) {
        char key[128];
        const char *value = NULL;
        if (s_option_at(a, &i, key, sizeof key, &value) != 0 || strcmp(key, "print-config") == 0 ||
            strcmp(key, "config") == 0) {
            continue;
        }
        const char *from = tb_conf_origin(a, i);
        size_t fl = strlen(from);
        if (value != NULL) {
            fprintf(out, "%s = \"%s\"", key, value);
        } else {
            fprintf(out, "%s", key);
        }
        if (fl >= 2) {
            fprintf(out, "    # %.*s\n", (int)fl - 2, from); /* without the ": " */
        } else {
            fprintf(out, "    # command line\n");
        }
    }
}

void tb_conf_free(tb_conf_args_t *a)
{
    for (int i = 0; a->argv != NULL && i < a->argc; i++) {
        free(a->argv[i]);
        free(a->origin[i]);
    }
    free(a->argv);
    free(a->origin);
    memset(a, 0, sizeof *a);
}
