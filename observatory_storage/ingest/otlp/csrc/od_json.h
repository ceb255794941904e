/* OTLP/JSON: the container index built by the validator, and number parsing. */
#ifndef OD_JSON_H
#define OD_JSON_H

#include "od_int.h"

/* Non-empty containers nested at most this deep are indexed (end offset and the entry
 * after their subtree), so the walker skips them in O(1); deeper ones are scanned. */
#define OD_JSON_INDEX_DEPTH 12

typedef struct {
    uint32_t end;  /* offset just past the closing bracket */
    uint32_t next; /* the entry after this container's subtree */
} od_jent;

typedef struct {
    od_jent *e;
    size_t n, cap;
} od_jindex;

/* A JSON number as orjson reads it: an integer literal within int64/uint64 is an int,
 * anything else a double (correctly rounded; may be infinite: the validator refuses). */
enum { JN_INT = 1, JN_UINT = 2, JN_FLOAT = 3 };
int od_json_number(const uint8_t *s, size_t n, int64_t *i, uint64_t *u, double *d);

#endif
