/* tb_curve — ZeroMQ CURVE for the three programs: certificates in CZMQ's
 * file format, socket set-up, and whether an endpoint a program binds can be
 * reached from other hosts.
 *
 * A certificate is a pair of files, as CZMQ's zcert_save writes them: NAME
 * holds the public key, NAME_secret the public and the secret key (ZPL text,
 * keys in Z85, 40 characters each):
 *
 *     metadata
 *         name = "probe1"
 *     curve
 *         public-key = "pg)ostj45)XK<5Eb:voIcL^6L^n%eAbJFUw!SIM?"
 *         secret-key = "XS*^fx$ZAb1A5y2OM>#7[f@4Z5yU8dY0e}zzjFid"   (NAME_secret only)
 *
 * A program takes its own certificate from the secret file, and the keys of
 * its peers from their public files (or directories of them, see the
 * collector's guard). Files written here load with CZMQ's zcert_load and the
 * other way round.
 *
 * Roles: whichever side binds, the collector is the CURVE server of every
 * connection it has (bus and control); probes and tapbusctl are clients that
 * know its public key. Plain data: no threads, no state. */
#ifndef TB_CURVE_H
#define TB_CURVE_H

#include <stddef.h>

#define TB_CURVE_KEY_LEN   40           /* characters of a Z85 key */
#define TB_CURVE_NAME_MAX  63           /* bytes of a certificate's name */
#define TB_CURVE_FILE_MAX  (64u << 10)  /* a certificate file is at most this long */
#define TB_CURVE_SECRET_SUFFIX "_secret"

typedef struct {
    char public_key[TB_CURVE_KEY_LEN + 1];
    char secret_key[TB_CURVE_KEY_LEN + 1]; /* "" when the file holds none */
    char name[TB_CURVE_NAME_MAX + 1];      /* metadata "name", printable, or "" */
} tb_curve_cert_t;

/* Whether this libzmq can do CURVE (built with libsodium or tweetnacl). */
int tb_curve_available(void);

/* Parse a certificate's text (len bytes, need not be terminated). Returns 0,
 * or TB_EPROTO with a one-line reason in err (no public key, a key that is
 * not Z85 of 32 bytes, a secret key that does not belong to the public one,
 * bad indentation, an unterminated quote). */
int tb_curve_cert_parse(const char *text, size_t len, tb_curve_cert_t *out, char *err,
                        size_t errsize);

/* Read a certificate file. need_secret: it must hold a secret key (a
 * program's own certificate), and it must not be readable by other users
 * (mode 0600, as ssh asks of its keys). Without need_secret a public
 * certificate is read; the secret key, if the file holds one, is cleared.
 * Returns 0, TB_EIO (cannot read, too long, too open) or TB_EPROTO, with a
 * one-line reason naming the file in err. */
int tb_curve_cert_load(const char *path, int need_secret, tb_curve_cert_t *out, char *err,
                       size_t errsize);

/* A new key pair, named name (cut to TB_CURVE_NAME_MAX, characters outside
 * A-Z a-z 0-9 . _ - : @ + replaced by '_'). Returns 0 or TB_ENOTSUP (no
 * CURVE in this libzmq). */
int tb_curve_cert_generate(tb_curve_cert_t *out, const char *name);

/* Write path (the public certificate) and path_secret (both keys, mode
 * 0600), as zcert_save does. Existing files are never overwritten: TB_EINVAL
 * then, TB_EIO on a write error (nothing is left behind), with the reason in
 * err. */
int tb_curve_cert_save(const tb_curve_cert_t *cert, const char *path, char *err, size_t errsize);

/* Make sock the CURVE server of its connections, with the secret key of own
 * and the ZAP domain its clients are judged in. Before bind or connect.
 * 0 or TB_EIO (errno set). */
int tb_curve_server(void *sock, const tb_curve_cert_t *own, const char *zap_domain);

/* Make sock a CURVE client with own's keys, talking to the server whose
 * public key is server_key (Z85). Before bind or connect. 0 or TB_EIO. */
int tb_curve_client(void *sock, const tb_curve_cert_t *own, const char *server_key);

/* Whether a bound endpoint can only be reached from this host: ipc://,
 * inproc://, or tcp:// on a loopback address (127.0.0.0/8, ::1,
 * "localhost", the interface "lo"). Everything else (tcp://\*, 0.0.0.0, a
 * host's address or name, other transports) is open to the network. */
int tb_curve_endpoint_local(const char *endpoint);

#endif
