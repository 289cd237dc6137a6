/* tb_hash — see tb_hash.h. */
#include "tb_hash.h"

#include "tb_time.h"

#include <unistd.h>

uint64_t tb_hash_seed(void)
{
    uint64_t local = 0;
    uint64_t x = tb_time_now_ns() ^ (tb_time_mono_ns() << 17) ^ (uint64_t)(uintptr_t)&local ^
                 ((uint64_t)getpid() << 32);
    return tb_hash_mix64(x);
}
