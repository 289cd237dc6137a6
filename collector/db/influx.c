/* influx — see influx.h. */
#include "influx.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define LOG_COMPONENT "influx"
#define ERR_BODY_MAX  4096 /* bytes of an error answer kept for the message */

struct tb_influx {
    int version;
    int gzip;
    int create_db;
    long timeout_ms;
    long connect_timeout_ms;
    char *base;      /* URL without a trailing slash */
    char *write_url; /* full /write or /api/v2/write URL */
    char *db;
    char *user;
    char *password;
    char *org;
    char *auth_header; /* "Authorization: Token ..." (2.x) */
    char *ca_file;
    char describe[512];
    CURL *curl;
    z_stream z;
    int z_ready;
    unsigned char *zbuf;
    size_t zcap;
    atomic_int cancelled;         /* tb_influx_cancel */
    _Atomic uint64_t deadline_ns; /* tb_influx_deadline */
};

/* Answer collected by the write callback, up to a limit. */
typedef struct {
    char *data;
    size_t len;
    size_t max;
    int overflow;
} body_t;

int tb_influx_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : TB_EIO;
}

static char *s_dup(const char *s)
{
    return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

void tb_influx_destroy(tb_influx_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_influx_t *ix = *p;
    *p = NULL;
    if (ix->curl != NULL) {
        curl_easy_cleanup(ix->curl);
    }
    if (ix->z_ready) {
        deflateEnd(&ix->z);
    }
    free(ix->zbuf);
    free(ix->base);
    free(ix->write_url);
    free(ix->db);
    free(ix->user);
    free(ix->password);
    free(ix->org);
    free(ix->auth_header);
    free(ix->ca_file);
    free(ix);
}

/* "name=value" URL-encoded, appended with '?' or '&'. */
static int s_param(CURL *curl, char *url, size_t size, const char *name, const char *value)
{
    if (value == NULL || *value == '\0') {
        return 0;
    }
    char *enc = curl_easy_escape(curl, value, 0);
    if (enc == NULL) {
        return TB_ENOMEM;
    }
    size_t used = strlen(url);
    int n = snprintf(url + used, size - used, "%c%s=%s", strchr(url, '?') ? '&' : '?', name, enc);
    curl_free(enc);
    return n < 0 || (size_t)n >= size - used ? TB_ELIMIT : 0;
}

tb_influx_t *tb_influx_new(const tb_influx_config_t *cfg, char *err, size_t errsize)
{
    if (cfg->url == NULL ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0)) {
        snprintf(err, errsize, "the database URL must start with http:// or https://");
        return NULL;
    }
    if (cfg->version != 1 && cfg->version != 2) {
        snprintf(err, errsize, "the InfluxDB version must be 1 or 2");
        return NULL;
    }
    if (cfg->version == 1 && (cfg->db == NULL || *cfg->db == '\0')) {
        snprintf(err, errsize, "InfluxDB 1.x needs a database name");
        return NULL;
    }
    if (cfg->version == 2 && (cfg->org == NULL || *cfg->org == '\0' || cfg->bucket == NULL ||
                              *cfg->bucket == '\0' || cfg->token == NULL || *cfg->token == '\0')) {
        snprintf(err, errsize, "InfluxDB 2.x needs an organisation, a bucket and a token");
        return NULL;
    }
    tb_influx_t *ix = calloc(1, sizeof *ix);
    if (ix == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    ix->version = cfg->version;
    ix->gzip = cfg->gzip;
    ix->create_db = cfg->create_db;
    ix->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    ix->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    ix->base = strdup(cfg->url);
    ix->curl = curl_easy_init();
    char url[4096];
    if (ix->base == NULL || ix->curl == NULL) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    size_t blen = strlen(ix->base);
    while (blen > 0 && ix->base[blen - 1] == '/') {
        ix->base[--blen] = '\0';
    }
    ix->db = s_dup(cfg->db);
    ix->user = s_dup(cfg->user);
    ix->password = s_dup(cfg->password);
    ix->org = s_dup(cfg->org);
    ix->ca_file = s_dup(cfg->ca_file);
    int rc;
    if (cfg->version == 1) {
        snprintf(url, sizeof url, "%s/write", ix->base);
        rc = s_param(ix->curl, url, sizeof url, "db", cfg->db);
        rc = rc ? rc : s_param(ix->curl, url, sizeof url, "rp", cfg->rp);
        snprintf(ix->describe, sizeof ix->describe, "InfluxDB 1.x %s database %s%s%s", ix->base,
                 cfg->db, cfg->rp && *cfg->rp ? " retention policy " : "", cfg->rp ? cfg->rp : "");
    } else {
        snprintf(url, sizeof url, "%s/api/v2/write", ix->base);
        rc = s_param(ix->curl, url, sizeof url, "org", cfg->org);
        rc = rc ? rc : s_param(ix->curl, url, sizeof url, "bucket", cfg->bucket);
        size_t hl = strlen(cfg->token) + 32;
        ix->auth_header = malloc(hl);
        if (ix->auth_header != NULL) {
            snprintf(ix->auth_header, hl, "Authorization: Token %s", cfg->token);
        }
        snprintf(ix->describe, sizeof ix->describe, "InfluxDB 2.x %s org %s bucket %s", ix->base,
                 cfg->org, cfg->bucket);
    }
    rc = rc ? rc : s_param(ix->curl, url, sizeof url, "precision", "ns");
    if (rc != 0) {
        snprintf(err, errsize, "database URL too long");
        goto fail;
    }
    ix->write_url = strdup(url);
    if (ix->write_url == NULL || (cfg->version == 2 && ix->auth_header == NULL) ||
        (cfg->db && *cfg->db && ix->db == NULL)) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    if (ix->gzip) {
        if (deflateInit2(&ix->z, 3, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            snprintf(err, errsize, "cannot set up gzip");
            goto fail;
        }
        ix->z_ready = 1;
    }
    return ix;
fail:
    tb_influx_destroy(&ix);
    return NULL;
}

static size_t s_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;
    size_t room = b->max - b->len;
    size_t take = n < room ? n : room;
    if (take < n) {
        b->overflow = 1;
    }
    if (take > 0) {
        char *nd = realloc(b->data, b->len + take + 1);
        if (nd == NULL) {
            b->overflow = 1;
            return n; /* keep the connection usable; the answer is cut */
        }
        b->data = nd;
        memcpy(b->data + b->len, ptr, take);
        b->len += take;
        b->data[b->len] = '\0';
    }
    return n;
}

/* Compress into ix->zbuf; returns the compressed length or 0 on failure. */
static size_t s_gzip(tb_influx_t *ix, const char *data, size_t len)
{
    size_t need = deflateBound(&ix->z, (uLong)len) + 32;
    if (need > ix->zcap) {
        unsigned char *nb = realloc(ix->zbuf, need);
        if (nb == NULL) {
            return 0;
        }
        ix->zbuf = nb;
        ix->zcap = need;
    }
    if (deflateReset(&ix->z) != Z_OK) {
        return 0;
    }
    ix->z.next_in = (Bytef *)(uintptr_t)data;
    ix->z.avail_in = (uInt)len;
    ix->z.next_out = ix->zbuf;
    ix->z.avail_out = (uInt)ix->zcap;
    if (deflate(&ix->z, Z_FINISH) != Z_STREAM_END) {
        return 0;
    }
    return ix->zcap - ix->z.avail_out;
}

/* The error text of an answer: 1.x {"error": ...}, 2.x {"message": ...}, or
 * the raw text, on one line. */
static void s_error_text(const body_t *b, long status, char *out, size_t size)
{
    const char *text = NULL;
    json_t *root = NULL;
    if (b->data != NULL) {
        root = json_loadb(b->data, b->len, 0, NULL);
        if (root != NULL) {
            text = json_string_value(json_object_get(root, "error"));
            if (text == NULL) {
                text = json_string_value(json_object_get(root, "message"));
            }
        }
        if (text == NULL) {
            text = b->data;
        }
    }
    int n =
        snprintf(out, size, "HTTP %ld%s%s", status, text && *text ? ": " : "", text ? text : "");
    (void)n;
    for (char *p = out; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    json_decref(root);
}

static int s_classify(long status)
{
    if (status >= 200 && status < 300) {
        return TB_IFX_OK;
    }
    if (status == 400 || status == 422) {
        return TB_IFX_REJECTED;
    }
    if (status == 413) {
        return TB_IFX_TOO_LARGE;
    }
    if (status == 408 || status == 429 || status >= 500) {
        return TB_IFX_RETRY;
    }
    return TB_IFX_HOLD;
}

void tb_influx_cancel(tb_influx_t *ix)
{
    atomic_store(&ix->cancelled, 1);
}

void tb_influx_deadline(tb_influx_t *ix, uint64_t mono_ns)
{
    atomic_store(&ix->deadline_ns, mono_ns);
}

/* libcurl asks this at least once a second, also while nothing moves. */
static int s_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    tb_influx_t *ix = arg;
    uint64_t deadline = atomic_load(&ix->deadline_ns);
    return atomic_load(&ix->cancelled) || (deadline != 0 && tb_time_mono_ns() >= deadline);
}

/* One request. body may be NULL for none; headers is extra headers. */
static int s_request(tb_influx_t *ix, const char *url, const void *payload, size_t plen,
                     struct curl_slist *headers, body_t *answer, tb_ifx_result_t *res)
{
    CURL *c = ix->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ix->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ix->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload != NULL ? payload : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tapbus-collector");
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ix);
    if (ix->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, ix->ca_file);
    }
    if (ix->version == 1 && ix->user != NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, ix->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, ix->password != NULL ? ix->password : "");
    }
    memset(res, 0, sizeof *res);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(res->error, sizeof res->error, "%s: %s", ix->base, curl_easy_strerror(cc));
        return TB_IFX_RETRY;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_off_t wait = 0;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &wait) == CURLE_OK && wait > 0) {
        res->retry_after_ms = wait > 3600 ? 3600000L : (long)wait * 1000L;
    }
    int outcome = s_classify(res->status);
    if (outcome != TB_IFX_OK) {
        s_error_text(answer, res->status, res->error, sizeof res->error);
    }
    /* 1.x stores the good points of a batch and says how many it refused:
     * "partial write: ... dropped=N". Nothing is left to resend. */
    const char *pw = answer->data != NULL ? strstr(answer->data, "partial write") : NULL;
    const char *dr = pw != NULL ? strstr(pw, "dropped=") : NULL;
    if (outcome == TB_IFX_REJECTED && dr != NULL) {
        res->dropped = strtoull(dr + 8, NULL, 10);
        if (res->dropped > 0) {
            outcome = TB_IFX_PARTIAL;
        }
    }
    return outcome;
}

static struct curl_slist *s_headers(tb_influx_t *ix, const char *content_type, int gzipped,
                                    const char *accept)
{
    struct curl_slist *h = NULL, *t;
    const char *lines[5] = {content_type, gzipped ? "Content-Encoding: gzip" : NULL,
                            "Expect:", ix->auth_header, accept};
    for (size_t i = 0; i < 5; i++) {
        if (lines[i] == NULL) {
            continue;
        }
        t = curl_slist_append(h, lines[i]);
        if (t == NULL) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = t;
    }
    return h;
}

/* 1.x: CREATE DATABASE (needs admin rights). */
static int s_create_db(tb_influx_t *ix, tb_ifx_result_t *res)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/query", ix->base);
    char *q = malloc(strlen(ix->db) * 2 + 32);
    if (q == NULL) {
        return TB_IFX_RETRY;
    }
    /* Identifier in double quotes; quotes and backslashes escaped. */
    char *o = q + sprintf(q, "CREATE DATABASE \"");
    for (const char *p = ix->db; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
        }
        *o++ = *p;
    }
    strcpy(o, "\"");
    char *enc = curl_easy_escape(ix->curl, q, 0);
    free(q);
    if (enc == NULL) {
        return TB_IFX_RETRY;
    }
    size_t flen = strlen(enc) + 3;
    char *form = malloc(flen);
    if (form != NULL) {
        snprintf(form, flen, "q=%s", enc);
    }
    curl_free(enc);
    struct curl_slist *h =
        s_headers(ix, "Content-Type: application/x-www-form-urlencoded", 0, NULL);
    body_t answer = {.max = ERR_BODY_MAX};
    int outcome = TB_IFX_RETRY;
    if (form != NULL && h != NULL) {
        outcome = s_request(ix, url, form, strlen(form), h, &answer, res);
    }
    /* A 200 can still carry {"results":[{"error":...}]}. */
    if (outcome == TB_IFX_OK && answer.data != NULL && strstr(answer.data, "\"error\"") != NULL) {
        snprintf(res->error, sizeof res->error, "cannot create database %s: %.180s", ix->db,
                 answer.data);
        outcome = TB_IFX_HOLD;
    }
    curl_slist_free_all(h);
    free(form);
    free(answer.data);
    return outcome;
}

int tb_influx_write(tb_influx_t *ix, const char *lines, size_t len, tb_ifx_result_t *res)
{
    const void *payload = lines;
    size_t plen = len;
    if (ix->gzip) {
        plen = s_gzip(ix, lines, len);
        if (plen == 0) {
            memset(res, 0, sizeof *res);
            snprintf(res->error, sizeof res->error, "cannot compress a batch");
            return TB_IFX_RETRY;
        }
        payload = ix->zbuf;
    }
    struct curl_slist *h = s_headers(ix, "Content-Type: text/plain; charset=utf-8", ix->gzip, NULL);
    if (h == NULL) {
        memset(res, 0, sizeof *res);
        snprintf(res->error, sizeof res->error, "out of memory");
        return TB_IFX_RETRY;
    }
    body_t answer = {.max = ERR_BODY_MAX};
    int outcome = s_request(ix, ix->write_url, payload, plen, h, &answer, res);
    if (outcome == TB_IFX_HOLD && res->status == 404 && ix->version == 1 && ix->create_db &&
        answer.data != NULL && strstr(answer.data, "database not found") != NULL) {
        tb_ifx_result_t cres;
        int co = s_create_db(ix, &cres);
        if (co == TB_IFX_OK) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "created database %s", ix->db);
            free(answer.data);
            answer = (body_t){.max = ERR_BODY_MAX};
            outcome = s_request(ix, ix->write_url, payload, plen, h, &answer, res);
        } else {
            snprintf(res->error, sizeof res->error,
                     "database %.60s is missing and cannot be created: %.150s", ix->db, cres.error);
        }
    }
    if (outcome == TB_IFX_HOLD && res->status == 404 && ix->version == 1 && !ix->create_db &&
        answer.data != NULL && strstr(answer.data, "database not found") != NULL) {
        /* The operator's next step, in the status and the log. */
        size_t used = strlen(res->error);
        snprintf(res->error + used, sizeof res->error - used,
                 " (create it, or start the collector with --influx-create-db)");
    }
    curl_slist_free_all(h);
    free(answer.data);
    return outcome;
}

int tb_influx_query(tb_influx_t *ix, const char *query, size_t max, char **body, size_t *len,
                    tb_ifx_result_t *res)
{
    char url[4096];
    char *payload = NULL;
    struct curl_slist *h = NULL;
    int rc = 0;
    if (ix->version == 1) {
        snprintf(url, sizeof url, "%s/query", ix->base);
        rc = s_param(ix->curl, url, sizeof url, "db", ix->db);
        char *enc = curl_easy_escape(ix->curl, query, 0);
        if (enc != NULL) {
            size_t n = strlen(enc) + 3;
            payload = malloc(n);
            if (payload != NULL) {
                snprintf(payload, n, "q=%s", enc);
            }
            curl_free(enc);
        }
        h = s_headers(ix, "Content-Type: application/x-www-form-urlencoded", 0,
                      "Accept: application/json");
    } else {
        snprintf(url, sizeof url, "%s/api/v2/query", ix->base);
        rc = s_param(ix->curl, url, sizeof url, "org", ix->org);
        json_t *req = json_pack("{s:s, s:s, s:{s:[s]}}", "query", query, "type", "flux", "dialect",
                                "annotations", "datatype");
        payload = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        h = s_headers(ix, "Content-Type: application/json", 0, "Accept: application/csv");
    }
    body_t answer = {.max = max};
    int outcome = TB_IFX_RETRY;
    memset(res, 0, sizeof *res);
    if (rc != 0 || payload == NULL || h == NULL) {
        snprintf(res->error, sizeof res->error, "cannot build the query request");
    } else {
        outcome = s_request(ix, url, payload, strlen(payload), h, &answer, res);
        if (outcome == TB_IFX_OK && answer.overflow) {
            snprintf(res->error, sizeof res->error, "the answer exceeds %zu bytes", max);
            outcome = TB_IFX_REJECTED;
        }
    }
    curl_slist_free_all(h);
    free(payload);
    *body = answer.data;
    *len = answer.len;
    return outcome;
}

const char *tb_influx_describe(const tb_influx_t *ix)
{
    return ix->describe;
}

int tb_influx_version(const tb_influx_t *ix)
{
    return ix->version;
}
