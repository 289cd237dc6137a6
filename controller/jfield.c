/* jfield — see jfield.h. */
#include "jfield.h"

#include <stdint.h>
#include <string.h>

json_int_t tb_jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    /* A counter past 2^63 arrives as a real (mpjson.h): saturated. */
    double r = json_is_real(v) ? json_real_value(v) : 0.0;
    return r >= 9.2e18 ? INT64_MAX : r <= -9.2e18 ? INT64_MIN : r == r ? (json_int_t)r : 0;
}

json_int_t tb_jadd(json_int_t a, json_int_t b)
{
    json_int_t sum;
    return __builtin_add_overflow(a, b, &sum) ? (b > 0 ? INT64_MAX : INT64_MIN) : sum;
}

double tb_jnum(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

const char *tb_jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int tb_jindex(const json_t *array, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
            return (int)i;
        }
    }
    return -1;
}
