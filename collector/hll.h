/* hll — HyperLogLog distinct counting (Flajolet et al., 2007) with the
 * small-range correction (linear counting) of Heule et al. (2013).
 *
 * 2^TB_HLL_BITS one-byte registers (4 KiB): a standard error of about
 * 1.04 / sqrt(4096) = 1.6 % for large sets, about 2 % around the switch
 * from linear counting (near 12,000 items), exact-ish for small sets. Fed
 * with 64-bit hashes of good quality (tb_hash_bytes). Not thread-safe. */
#ifndef TB_HLL_H
#define TB_HLL_H

#include <stdint.h>

#define TB_HLL_BITS 12
#define TB_HLL_REGS (1u << TB_HLL_BITS)

typedef struct {
    uint8_t reg[TB_HLL_REGS];
} tb_hll_t;

void tb_hll_reset(tb_hll_t *h);
void tb_hll_add(tb_hll_t *h, uint64_t hash);
double tb_hll_estimate(const tb_hll_t *h);

#endif
