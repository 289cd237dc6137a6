/* tls — the HTTP gateway's certificate and private key (`tapbusctl serve
 * --tls-cert FILE --tls-key FILE`): read once at start and checked with
 * GnuTLS, the library libmicrohttpd serves HTTPS with, so that a wrong file
 * is refused with its name before anything listens rather than failing
 * every handshake later.
 *
 * Ownership: a tb_gw_tls_t owns both texts; tb_gw_tls_clear() wipes the key
 * and frees them. Not shared between threads until the gateway starts,
 * read-only from then on. */
#ifndef TB_GW_TLS_H
#define TB_GW_TLS_H

#include <stddef.h>

/* The largest certificate chain or key file read. */
#define TB_GW_TLS_FILE_MAX (1u << 20)

typedef struct {
    char *cert; /* PEM, NUL-terminated: the certificate, then its chain */
    char *key;  /* PEM, NUL-terminated: the private key (not encrypted) */
} tb_gw_tls_t;

/* Read cert_file and key_file into tls. Returns 0, or a negative tb_err_t
 * with a one-line reason naming the file in err and tls left empty: TB_EIO
 * (unreadable, not a regular file), TB_ELIMIT (too long), TB_EPROTO (not a
 * PEM certificate / private key, or the key does not go with the
 * certificate), TB_ENOMEM. */
int tb_gw_tls_load(tb_gw_tls_t *tls, const char *cert_file, const char *key_file, char *err,
                   size_t errsize);

/* Wipe the key and free both texts; tls may be empty. */
void tb_gw_tls_clear(tb_gw_tls_t *tls);

#endif
