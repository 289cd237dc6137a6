/* tb_hash — fast non-cryptographic 64-bit hashing for flow and host tables.
 *
 * Not for anything an attacker must not predict: tables that hash addresses
 * seed it per process (tb_hash_seed) so a flood of crafted addresses cannot
 * aim at one bucket across restarts. */
#ifndef TB_HASH_H
#define TB_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Finaliser of MurmurHash3 (public domain): full avalanche of 64 bits. */
static inline uint64_t tb_hash_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Hash `len` bytes: 8-byte words folded with multiply-rotate, then mixed. */
static inline uint64_t tb_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (len + 1));
    while (len >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        k *= 0x87c37b91114253d5ull;
        k = (k << 31) | (k >> 33);
        h ^= k * 0x4cf5ad432745937full;
        h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h ^= tail * 0x87c37b91114253d5ull;
    return tb_hash_mix64(h);
}

/* A per-process seed from the clock and the address of a local. */
uint64_t tb_hash_seed(void);

#endif
