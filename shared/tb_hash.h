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

/* 64x64 -> 128-bit multiply folded to 64 bits (both halves xored). */
static inline uint64_t tb_hash_fold(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Hash `len` bytes. Each 16-byte block is folded by one wide multiply of its
 * two words (salted with the seed and the block's position); the blocks are
 * independent, so their multiplies overlap in the CPU instead of forming one
 * long dependency chain: a 40-byte flow key costs three multiplies plus the
 * finaliser. */
static inline uint64_t tb_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
    uint64_t salt = seed ^ 0xa0761d6478bd642full;
    while (len >= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        h += tb_hash_fold(a ^ salt, b ^ 0xe7037ed1a0b428dbull ^ salt);
        salt += 0x8ebc6af09c88c6e3ull;
        p += 16;
        len -= 16;
    }
    uint64_t a = 0, b = 0;
    memcpy(&a, p, len < 8 ? len : 8);
    if (len > 8) {
        memcpy(&b, p + 8, len - 8);
    }
    h += tb_hash_fold(a ^ salt, b ^ 0x589965cc75374cc3ull ^ salt);
    return tb_hash_mix64(h);
}

/* tb_hash_bytes of the len bytes whose copy into uint64_t words is w (zero
 * past len; (len + 7) / 8 words): the same value, with the words in
 * registers instead of the bytes in memory. */
static inline uint64_t tb_hash_words(const uint64_t *w, size_t len, uint64_t seed)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
    uint64_t salt = seed ^ 0xa0761d6478bd642full;
    size_t i = 0;
    while (len >= 16) {
        h += tb_hash_fold(w[i] ^ salt, w[i + 1] ^ 0xe7037ed1a0b428dbull ^ salt);
        salt += 0x8ebc6af09c88c6e3ull;
        i += 2;
        len -= 16;
    }
    uint64_t a = len > 0 ? w[i] : 0;
    uint64_t b = len > 8 ? w[i + 1] : 0;
    h += tb_hash_fold(a ^ salt, b ^ 0x589965cc75374cc3ull ^ salt);
    return tb_hash_mix64(h);
}

/* A per-process seed from the clock and the address of a local. */
uint64_t tb_hash_seed(void);

#endif
