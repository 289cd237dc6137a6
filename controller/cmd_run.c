/* cmd_run — see cmd_run.h. */
#include "cmd_run.h"

#include "print.h"
#include "print_stats.h"
#include "print_status.h"
#include "top.h"

#include <stdio.h>
#include <string.h>

/* One command's request and where it goes. */
typedef struct {
    tb_fanout_t *fan;
    const tb_ctl_request_t *req;
    int json_out;
    const char *name; /* the command as the operator typed it (top sends stats) */
} call_t;

/* Send the request, return the reply's data (a new reference), or NULL with
 * the exit code in *code and the reason printed. A partial answer (some
 * collector failed) is returned with its code, the reason printed. */
static json_t *s_fetch(void *arg, int *code)
{
    const call_t *c = arg;
    char err[1024], shown[1024];
    json_t *j = tb_fanout_call(c->fan, c->req, code, err, sizeof err);
    if (*code == TB_CALL_OK) {
        return j;
    }
    /* The reason may quote the collector: printable on the terminal, exact
     * in the JSON document. */
    tb_print_text(shown, sizeof shown, err, strlen(err));
    if (j != NULL) {
        fprintf(stderr, "tapbusctl: %s: partial answer: %s\n", c->name, shown);
    } else if (*code == TB_CALL_REFUSED) {
        fprintf(stderr, "tapbusctl: %s: %s\n", c->name, shown);
    } else {
        fprintf(stderr, "tapbusctl: %s\n", shown);
    }
    if (j == NULL && c->json_out && *code == TB_CALL_REFUSED) {
        json_t *e = json_pack("{s:s, s:s}", "status", "error", "error", err);
        json_dumpf(e, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(e);
    }
    return j;
}

/* The reply, as JSON or as text for the terminal. */
static void s_print_reply(const char *cmd, int json_out, json_t *j)
{
    int probes = strcmp(cmd, "probes") == 0, db = strcmp(cmd, "db") == 0;
    /* start's warnings (a stream no probe offers) go to stderr; it succeeded. */
    size_t wi;
    json_t *warning;
    json_array_foreach(strcmp(cmd, "start") == 0 ? json_object_get(j, "warnings") : NULL, wi,
                       warning)
    {
        if (json_is_string(warning)) {
            fprintf(stderr, "tapbusctl: warning: %s\n", json_string_value(warning));
        }
    }
    if (json_out) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else if (strcmp(cmd, "start") == 0) {
        tb_print_names(stdout, "started", json_object_get(j, "started"),
                       json_object_get(j, "collector_of"));
        size_t k;
        json_t *name;
        json_array_foreach(json_object_get(j, "forgotten"), k, name)
        {
            if (json_is_string(name)) {
                printf("forgotten to make room: %s (ended; its statistics were read, or it "
                       "had none)\n",
                       json_string_value(name));
            }
        }
    } else if (strcmp(cmd, "streams") == 0) {
        tb_print_streams(stdout, j);
    } else if (strcmp(cmd, "stop") == 0) {
        tb_print_names(stdout, "stopped", json_object_get(j, "stopped"),
                       json_object_get(j, "collector_of"));
    } else if (strcmp(cmd, "forget") == 0) {
        tb_print_names(stdout, "forgotten", json_object_get(j, "forgotten"),
                       json_object_get(j, "collector_of"));
    } else if (strcmp(cmd, "status") == 0) {
        tb_print_status(stdout, j);
    } else if (probes) {
        tb_print_probes(stdout, j);
    } else if (db) {
        tb_print_table(stdout, json_object_get(j, "columns"), json_object_get(j, "rows"));
    } else {
        tb_print_stats(stdout, j);
    }
}

int tb_cmd_run(tb_fanout_t *fan, const char *name, tb_ctl_request_t *req, uint64_t n, int json_out)
{
    call_t call = {fan, req, json_out, name};
    if (strcmp(name, "top") == 0) {
        snprintf(req->cmd, sizeof req->cmd, "stats");
        return tb_top_run(s_fetch, &call, n, 1.0);
    }
    int rc = 0;
    json_t *j = s_fetch(&call, &rc);
    if (j == NULL) {
        return rc;
    }
    if (strcmp(name, "probes") == 0) {
        json_t *view = tb_status_probes(j);
        json_decref(j);
        j = view;
        if (j == NULL) {
            fprintf(stderr, "tapbusctl: out of memory\n");
            return TB_CALL_BADREPLY;
        }
    }
    s_print_reply(name, json_out, j);
    json_decref(j);
    return rc; /* not 0 after a partial answer */
}
