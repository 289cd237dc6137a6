/* tls — see tls.h. */
#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The whole of path as a NUL-terminated text (*len without the NUL), or
 * NULL with the reason in err. A NUL byte inside is refused: PEM is text,
 * and libmicrohttpd takes the text up to its first NUL. */
static char *s_read(const char *path, const char *what, size_t *len, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, errsize, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TB_GW_TLS_FILE_MAX) {
        snprintf(err, errsize, "the TLS %s %s is %s", what, path,
                 S_ISREG(st.st_mode) ? "longer than 1 MiB" : "not a regular file");
        fclose(f);
        return NULL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t n = text != NULL ? fread(text, 1, (size_t)st.st_size, f) : 0;
    int bad = text == NULL || ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (bad) {
        snprintf(err, errsize, "cannot read the TLS %s %s", what, path);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n) != NULL) {
        snprintf(err, errsize,
                 "the TLS %s %s is not PEM (a binary file; DER? convert it with "
                 "openssl)",
                 what, path);
        explicit_bzero(text, n);
        free(text);
        return NULL;
    }
    *len = n;
    return text;
}

/* Every certificate in the text parses (at least one). */
static int s_check_cert(const char *text, size_t len)
{
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)text, (unsigned)len};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int rc = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    for (unsigned i = 0; rc >= 0 && i < n; i++) {
        gnutls_x509_crt_deinit(crts[i]);
    }
    gnutls_free(crts);
    return rc < 0 || n == 0 ? -1 : 0;
}

static int s_check_key(const char *text, size_t len)
{
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)text, (unsigned)len};
    gnutls_x509_privkey_t key;
    if (gnutls_x509_privkey_init(&key) < 0) {
        return -1;
    }
    int rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(key);
    return rc < 0 ? -1 : 0;
}

/* The key is that of the (first) certificate: what libmicrohttpd does with
 * them, done now. */
static int s_check_pair(const char *cert, size_t clen, const char *key, size_t klen)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        return -1;
    }
    gnutls_datum_t c = {(unsigned char *)(uintptr_t)cert, (unsigned)clen};
    gnutls_datum_t k = {(unsigned char *)(uintptr_t)key, (unsigned)klen};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    return rc < 0 ? -1 : 0;
}

int tb_gw_tls_load(tb_gw_tls_t *tls, const char *cert_file, const char *key_file, char *err,
                   size_t errsize)
{
    size_t clen = 0, klen = 0;
    tls->cert = s_read(cert_file, "certificate", &clen, err, errsize);
    tls->key = NULL;
    if (tls->cert == NULL) {
        return -1;
    }
    if (s_check_cert(tls->cert, clen) != 0) {
        snprintf(err, errsize,
                 "the TLS certificate %s is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                 cert_file);
        goto fail;
    }
    tls->key = s_read(key_file, "key", &klen, err, errsize);
    if (tls->key == NULL) {
        goto fail;
    }
    if (s_check_key(tls->key, klen) != 0) {
        snprintf(err, errsize,
                 "the TLS key %s is not a PEM private key (-----BEGIN PRIVATE KEY-----; an "
                 "encrypted key is not read)",
                 key_file);
        goto fail;
    }
    if (s_check_pair(tls->cert, clen, tls->key, klen) != 0) {
        snprintf(err, errsize, "the TLS key %s is not the key of the certificate %s", key_file,
                 cert_file);
        goto fail;
    }
    return 0;
fail:
    tb_gw_tls_clear(tls);
    return -1;
}

void tb_gw_tls_clear(tb_gw_tls_t *tls)
{
    if (tls->key != NULL) {
        explicit_bzero(tls->key, strlen(tls->key));
    }
    free(tls->key);
    free(tls->cert);
    tls->key = NULL;
    tls->cert = NULL;
}
