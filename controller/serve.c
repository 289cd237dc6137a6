/* serve — see serve.h. */
#include "serve.h"

#include "gateway.h"
#include "print_status.h"
#include "tb_secret.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The gateway's way to the collectors: one request, its data or a reason. */
static json_t *s_gateway_call(void *arg, const tb_ctl_request_t *req, int *result, char *err,
                              size_t errsize)
{
    /* Each connection has its own thread: a copy, so no state is shared
     * (the pinning of top does not apply to single requests). */
    tb_fanout_t fan_copy = *(const tb_fanout_t *)arg;
    tb_fanout_t *fan = &fan_copy;
    fan->pinned = -1;
    tb_ctl_request_t r = *req;
    int probes = strcmp(r.cmd, "probes") == 0;
    if (probes) {
        snprintf(r.cmd, sizeof r.cmd, "status");
    }
    int code = 0;
    json_t *j = tb_fanout_call(fan, &r, &code, err, errsize);
    *result = j != NULL                     ? TB_GW_OK /* partial: "collectors" tells */
              : code == TB_CALL_REFUSED     ? TB_GW_REFUSED
              : code == TB_CALL_UNREACHABLE ? TB_GW_UNREACHABLE
                                            : TB_GW_BADREPLY;
    if (j != NULL && probes) {
        json_t *view = tb_status_probes(j);
        json_decref(j);
        j = view;
    }
    if (j != NULL && strcmp(r.cmd, "stats") == 0) {
        /* The name scripts know for top_flows[0]. */
        json_t *top = json_array_get(json_object_get(j, "top_flows"), 0);
        json_object_set(j, "most_active_tuple", top != NULL ? top : json_null());
    }
    return j;
}

/* serve --http ADDR:PORT [--credentials FILE] [--tls-cert FILE --tls-key
 * FILE]: credentials "user:password" from the file's first line or
 * $TAPBUS_HTTP_CREDENTIALS; none is built in. */
int tb_serve_run(const tb_serve_opts_t *o, const tb_cmd_words_t *words, tb_fanout_t *fan)
{
    const char *listen = o->http, *file = o->credentials;
    if (words->n > 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "serve: unexpected argument '%.200s'", words->word[0]);
        return tb_cmd_usage_error(msg);
    }
    if (listen == NULL) {
        return tb_cmd_usage_error("serve needs --http ADDR:PORT");
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        return tb_cmd_usage_error(o->tls_cert == NULL
                                      ? "--tls-key needs --tls-cert (its certificate)"
                                      : "--tls-cert needs --tls-key (its private key)");
    }
    char cred[512] = "";
    if (file != NULL) {
        /* As ssh does with its keys, a file that its group or others may
         * read or write is refused: the password would be theirs too. */
        char err[1024];
        if (tb_secret_read(file, "credentials", TB_SECRET_PRIVATE, cred, sizeof cred, err,
                           sizeof err) != 0) {
            fprintf(stderr, "tapbusctl: %s\n", err);
            return TB_CALL_USAGE;
        }
    } else if (getenv("TAPBUS_HTTP_CREDENTIALS") != NULL) {
        if (strlen(getenv("TAPBUS_HTTP_CREDENTIALS")) >= sizeof cred) {
            fprintf(stderr, "tapbusctl: $TAPBUS_HTTP_CREDENTIALS longer than %zu characters\n",
                    sizeof cred - 1);
            return TB_CALL_USAGE;
        }
        snprintf(cred, sizeof cred, "%s", getenv("TAPBUS_HTTP_CREDENTIALS"));
    }
    char *colon = strchr(cred, ':');
    if (colon == NULL || colon == cred || colon[1] == '\0') {
        return tb_cmd_usage_error("serve needs credentials USER:PASSWORD (--credentials FILE or "
                                  "$TAPBUS_HTTP_CREDENTIALS); there is no default");
    }
    *colon = '\0';
    tb_gw_tls_t tls = {NULL, NULL};
    char err[1200];
    if (o->tls_cert != NULL &&
        tb_gw_tls_load(&tls, o->tls_cert, o->tls_key, err, sizeof err) != 0) {
        explicit_bzero(cred, sizeof cred);
        fprintf(stderr, "tapbusctl: %s\n", err);
        return TB_CALL_USAGE;
    }
    tb_gateway_config_t g = {listen, cred, colon + 1, s_gateway_call, fan, tls.cert, tls.key};
    int rc = tb_gateway_run(&g);
    tb_gw_tls_clear(&tls);
    explicit_bzero(cred, sizeof cred);
    return rc;
}
