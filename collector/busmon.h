/* busmon — what became of each bus endpoint of the collector: the probes it
 * connects to (--probe) and the addresses it binds for probes that connect
 * (--listen).
 *
 * ZeroMQ reconnects silently: a probe endpoint that refuses connections, a
 * host name that does not resolve or a peer that does not speak ZMTP never
 * shows up as an error of any call. The socket monitor (zmq_socket_monitor)
 * reports these events on an inproc PAIR socket; busmon reads it from the
 * collector's poll loop and keeps one entry per configured endpoint: its
 * state, what went wrong, since when, and how many times ZeroMQ retried.
 * The table is fixed in size (TB_BUSMON_MAX entries); events of endpoints
 * not in it are counted and ignored.
 *
 * Not thread-safe: one thread (the collector's loop) owns it. */
#ifndef TB_BUSMON_H
#define TB_BUSMON_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define TB_BUSMON_MAX          128 /* endpoints watched: --probe and --listen */
#define TB_BUSMON_ENDPOINT_MAX 256 /* bytes of an endpoint, with the NUL */
#define TB_BUSMON_DETAIL_MAX   160 /* bytes of a state's explanation, with the NUL */
/* The ZMTP handshake time limit the collector sets on its bus socket
 * (ZMQ_HANDSHAKE_IVL): a peer that does not complete the handshake within it
 * (one that is not a ZeroMQ peer at all) is dropped and shown as
 * handshake_failed. */
#define TB_BUSMON_HANDSHAKE_MS 5000

typedef struct tb_busmon tb_busmon_t;

/* Start monitoring sock (borrowed; must outlive the monitor, which must be
 * destroyed before sock is closed). Call before connecting or binding sock,
 * so that no event is missed. NULL with a reason in err on failure. */
tb_busmon_t *tb_busmon_new(void *zctx, void *sock, char *err, size_t errsize);

/* Watch an endpoint: listen = 0 for one sock connects to, 1 for one it
 * bound, with bound = the address ZeroMQ reports for it (ZMQ_LAST_ENDPOINT;
 * NULL: the same as endpoint). Strings are copied. Returns 0, TB_ELIMIT
 * (table full) or TB_EINVAL (too long). */
int tb_busmon_add(tb_busmon_t *m, const char *endpoint, int listen, const char *bound);

/* The PAIR socket to poll for ZMQ_POLLIN. */
void *tb_busmon_socket(const tb_busmon_t *m);

/* Apply every event waiting (at most a bounded number per call). */
void tb_busmon_read(tb_busmon_t *m);

/* Pack the table as one array of maps (docs/control-protocol.md, status:
 * "endpoints"). */
void tb_busmon_pack(const tb_busmon_t *m, msgpack_packer *pk);

/* A connection that ended this long ago without libzmq scheduling a retry
 * is dead for good (libzmq stops after a protocol error). */
#define TB_BUSMON_DEAD_NS (1000ull * 1000ull * 1000ull)

/* The first --probe endpoint (borrowed) whose connection ended at least
 * TB_BUSMON_DEAD_NS before now (monotonic ns) with no retry since, marked as
 * handled and counted ("reconnects"); NULL when there is none. The caller
 * connects it again (zmq_disconnect, then zmq_connect): a garbage peer that
 * once sat at a probe's address must not keep the real probe out. */
const char *tb_busmon_next_dead(tb_busmon_t *m, uint64_t now);

/* Stop monitoring and close the PAIR socket. Accepts NULL, sets *p = NULL. */
void tb_busmon_destroy(tb_busmon_t **p);

#endif
