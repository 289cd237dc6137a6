/* libFuzzer target: configuration files (tb_conf), as a program reads them
 * with --config. The input is the file; the options are a collector-like
 * table with every kind of argument. Whatever is accepted must be a
 * well-formed argument list: "--name" for a known option, followed by its
 * value when it takes one, each with the file and line it came from. */
#include "tb_conf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct option s_opts[] = {
    {"probe", required_argument, NULL, 'p'},
    {"control", required_argument, NULL, 'c'},
    {"max-streams", required_argument, NULL, 'm'},
    {"influx-url", required_argument, NULL, 'u'},
    {"influx-create-db", no_argument, NULL, 'C'},
    {"influx-no-gzip", no_argument, NULL, 'G'},
    {"log-level", optional_argument, NULL, 'l'},
    {"state-dir", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {"config", required_argument, NULL, 'f'},
    {"print-config", no_argument, NULL, 'P'},
    {NULL, 0, NULL, 0},
};

static char s_path[64];

static void s_remove(void)
{
    unlink(s_path);
}

static const struct option *s_option(const char *arg)
{
    for (const struct option *o = s_opts; o->name != NULL; o++) {
        if (strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, o->name) == 0) {
            return o;
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One file for the whole run, rewritten for each input. */
    static FILE *sink;
    const char *path = s_path;
    if (s_path[0] == '\0') {
        snprintf(s_path, sizeof s_path, "/tmp/tapbus-fuzz-conf-XXXXXX");
        int fd = mkstemp(s_path);
        if (fd < 0) {
            abort();
        }
        close(fd);
        atexit(s_remove);
        sink = fopen("/dev/null", "w");
        if (sink == NULL) {
            abort();
        }
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        abort();
    }
    char *argv[] = {"tapbus-fuzz", "--config", s_path, NULL};
    tb_conf_args_t a;
    char err[256];
    err[0] = '\0';
    int rc = tb_conf_build("TAPBUS_FUZZ_NOTSET", s_opts, 3, argv, &a, err, sizeof err);
    if (rc != 0) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL) {
            abort(); /* a refusal says why, on one line */
        }
        return 0;
    }
    /* The program name, the file's options, then the command line. */
    if (a.argc < 3 || a.argv[a.argc] != NULL || strcmp(a.argv[a.argc - 2], "--config") != 0) {
        abort();
    }
    for (int i = 1; i < a.argc - 2; i++) {
        const struct option *o = s_option(a.argv[i]);
        const char *from = tb_conf_origin(&a, i);
        if (o == NULL || strncmp(from, path, strlen(path)) != 0) {
            abort();
        }
        if (o->has_arg != no_argument) {
            i++;
            if (i >= a.argc - 2 || strcmp(tb_conf_origin(&a, i), from) != 0 ||
                strchr(a.argv[i], '\n') != NULL) {
                abort();
            }
        }
    }
    tb_conf_print(&a, sink);
    tb_conf_print_default(&a, sink, "max-streams", "%d", 256);
    tb_conf_print_default(&a, sink, "influx-create-db", NULL);
    tb_conf_free(&a);
    return 0;
}
