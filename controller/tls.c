/* tls — see tls.h. */
#include "tls.h"

#include "tb_err.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The whole of path as a NUL-terminated text into *out (*len without the
 * NUL). A NUL byte inside is refused: PEM is text, and libmicrohttpd takes
 * the text up to its first NUL. Returns 0, or with the reason in err and
 * *out NULL: TB_EIO (cannot read it, not a regular file), TB_ELIMIT (longer
 * than TB_GW_TLS_FILE_MAX) or TB_EPROTO (binary). */
static int s_read(const char *path, const char *what, char **out, size_t *len, char *err,
                  size_t errsize)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, errsize, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return TB_EIO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TB_GW_TLS_FILE_MAX) {
        snprintf(err, errsize, "the TLS %s %s is %s", what, path,
                 S_ISREG(st.st_mode) ? "longer than 1 MiB" : "not a regular file");
        fclose(f);
        return S_ISREG(st.st_mode) ? TB_ELIMIT : TB_EIO;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t n = text != NULL ? fread(text, 1, (size_t)st.st_size, f) : 0;
    int bad = text == NULL || ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (bad) {
        snprintf(err, errsize, "cannot read the TLS %s %s", what, path);
        free(text);
        return text == NULL ? TB_ENOMEM : TB_EIO;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n) != NULL) {
        snprintf(err, errsize,
                 "the TLS %s %s is not PEM (a binary file; DER? convert it with "
                 "openssl)",
                 what, path);
        explicit_bzero(text, n);
        free(text);
        return TB_EPROTO;
    }
    *len = n;
    *out = text;
    return 0;
}

/* Every certificate in the text parses (at least one): 0, or TB_EPROTO. */
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
    return rc < 0 || n == 0 ? TB_EPROTO : 0;
}

/* The text is a private key GnuTLS reads (not encrypted): 0, or TB_EPROTO
 * (TB_ENOMEM when GnuTLS cannot even start). */
static int s_check_key(const char *text, size_t len)
{
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)text, (unsigned)len};
    gnutls_x509_privkey_t key;
    if (gnutls_x509_privkey_init(&key) < 0) {
        return TB_ENOMEM;
    }
    int rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(key);
    return rc < 0 ? TB_EPROTO : 0;
}

/* The key is that of the (first) certificate: what libmicrohttpd does with
 * them, done now. 0, or TB_EPROTO (TB_ENOMEM when GnuTLS cannot start). */
static int s_check_pair(const char *cert, size_t clen, const char *key, size_t klen)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        return TB_ENOMEM;
    }
    gnutls_datum_t c = {(unsigned char *)(uintptr_t)cert, (unsigned)clen};
    gnutls_datum_t k = {(unsigned char *)(uintptr_t)key, (unsigned)klen};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    return rc < 0 ? TB_EPROTO : 0;
}

int tb_gw_tls_load(tb_gw_tls_t *tls, const char *cert_file, const char *key_file, char *err,
                   size_t errsize)
{
    size_t clen = 0, klen = 0;
    tls->key = NULL;
    int rc = s_read(cert_file, "certificate", &tls->cert, &clen, err, errsize);
    if (rc != 0) {
        return rc;
    }
    if ((rc = s_check_cert(tls->cert, clen)) != 0) {
        snprintf(err, errsize,
                 "the TLS certificate %s is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                 cert_file);
        goto cleanup;
    }
    if ((rc = s_read(key_file, "key", &tls->key, &klen, err, errsize)) != 0) {
        goto cleanup;
    }
    if ((rc = s_check_key(tls->key, klen)) != 0) {
        snprintf(err, errsize,
                 "the TLS key %s is not a PEM private key (-----BEGIN PRIVATE KEY-----; an "
                 "encrypted key is not read)",
                 key_file);
        goto cleanup;
    }
    if ((rc = s_check_pair(tls->cert, clen, tls->key, klen)) != 0) {
        snprintf(err, errsize, "the TLS key %s is not the key of the certificate %s", key_file,
                 cert_file);
        goto cleanup;
    }
    return 0;
cleanup:
    tb_gw_tls_clear(tls);
    return rc;
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
