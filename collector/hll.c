/* hll — see hll.h. */
#include "hll.h"

#include <math.h>
#include <string.h>

void tb_hll_reset(tb_hll_t *h)
{
    memset(h->reg, 0, sizeof h->reg);
}

void tb_hll_add(tb_hll_t *h, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> (64 - TB_HLL_BITS));
    uint64_t rest = hash << TB_HLL_BITS;
    /* Rank: position of the first 1 bit in the remaining 64 - BITS bits. */
    uint8_t rank =
        rest == 0 ? (uint8_t)(64 - TB_HLL_BITS + 1) : (uint8_t)(__builtin_clzll(rest) + 1);
    if (rank > h->reg[idx]) {
        h->reg[idx] = rank;
    }
}

double tb_hll_estimate(const tb_hll_t *h)
{
    const double m = TB_HLL_REGS;
    /* A histogram of register values first: 65 powers of two instead of
     * 4096 (an estimate is made for every interval written). */
    unsigned count[65] = {0};
    for (unsigned i = 0; i < TB_HLL_REGS; i++) {
        count[h->reg[i] <= 64 ? h->reg[i] : 64]++;
    }
    double sum = 0.0;
    for (int r = 0; r <= 64; r++) {
        if (count[r] != 0) {
            sum += ldexp((double)count[r], -r);
        }
    }
    unsigned zeros = count[0];
    /* Linear counting while it is the better estimate: the raw estimate is
     * biased upwards up to a few times m. */
    if (zeros > 0) {
        double lc = m * log(m / (double)zeros);
        if (lc <= 3.0 * m) {
            return lc;
        }
    }
    double alpha = 0.7213 / (1.0 + 1.079 / m);
    return alpha * m * m / sum;
}
