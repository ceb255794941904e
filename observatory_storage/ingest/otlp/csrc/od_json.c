/* OTLP/JSON: the walk of walk.py over a validated document (json_access.py's rules),
 * reading members in place: no DOM, only the validator's container index (od_text.c)
 * so that a member holding a big list is skipped in O(1).
 *
 * Python dict semantics: the last of duplicate members wins; member order is free. */
#include <math.h>
#include <stdio.h>

#include "od_walk.h"

#define NOENT UINT32_MAX

/* --- scanning validated JSON ---------------------------------------------------------- */

static inline const uint8_t *ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p: after the opening quote of a validated string; returns the closing quote (or end) */
static const uint8_t *string_close(const uint8_t *p, const uint8_t *end) {
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (p < end) {
        while (end - p >= 8) { /* 8 bytes at a time, up to the first '"' or '\\' */
            uint64_t w;
            memcpy(&w, p, 8);
            uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
            uint64_t m = (((q - ones) & ~q) | ((b - ones) & ~b)) & high;
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                break;
            }
            p += 8;
        }
        if (p >= end) break;
        if (*p == '"') return p;
        if (*p == '\\') {
            p += 2; /* (an escape: the byte after it is never the closing quote) */
            continue;
        }
        p++;
    }
    return end;
}

/* the end of an unindexed container at p (bracket matching, strings skipped) */
static const uint8_t *scan_container(const uint8_t *p, const uint8_t *end) {
    int depth = 0;
    while (p < end) {
        uint8_t c = *p;
        if (c == '"') {
            p = string_close(p + 1, end);
            if (p < end) p++;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return p + 1;
        }
        p++;
    }
    return end;
}

static const uint8_t *scalar_end(const uint8_t *p, const uint8_t *end) {
    if (*p == '"') {
        const uint8_t *q = string_close(p + 1, end);
        return q < end ? q + 1 : end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' &&
           *p != '\r')
        p++;
    return p;
}

static inline int is_container(const uint8_t *p) { return *p == '{' || *p == '['; }

/* the value at it->p (a container's index entry taken from it->ent); returns its end */
static const uint8_t *take_value(od_dec *d, jit *it, jpos *v) {
    const uint8_t *end = d->data + d->len;
    v->p = it->p;
    v->level = it->level;
    v->ent = NOENT;
    v->e = NULL;
    if (!is_container(it->p)) return v->e = scalar_end(it->p, end);
    const uint8_t *q = ws(it->p + 1, end);
    if (q < end && (*q == '}' || *q == ']')) return q + 1; /* empty: not indexed */
    if (it->level <= OD_JSON_INDEX_DEPTH && it->ent < d->jn) {
        const od_jent *e = &d->jidx[it->ent];
        v->ent = it->ent;
        it->ent = e->next;
        if (e->end <= d->len && d->data + e->end > it->p) return d->data + e->end;
    }
    return scan_container(it->p, end);
}

int jit_open(od_dec *d, jit *it, jpos v) {
    const uint8_t *end = d->data + d->len;
    it->p = v.p + 1;
    it->end = end;
    it->ent = v.ent != NOENT ? v.ent + 1 : NOENT;
    it->level = v.level + 1;
    it->first = 1;
    return 0;
}

int jarr_next(od_dec *d, jit *it, jpos *v) {
    const uint8_t *end = it->end;
    const uint8_t *p = ws(it->p, end);
    if (p >= end || *p == ']') return 0;
    if (!it->first) {
        if (*p != ',') return od_fail(d, NULL, 0, "malformed JSON (internal)");
        p = ws(p + 1, end);
    }
    it->first = 0;
    it->p = p;
    it->p = take_value(d, it, v);
    return 1;
}

int jobj_next(od_dec *d, jit *it, od_str *key, jpos *v) {
    const uint8_t *end = it->end;
    const uint8_t *p = ws(it->p, end);
    if (p >= end || *p == '}') return 0;
    if (!it->first) {
        if (*p != ',') return od_fail(d, NULL, 0, "malformed JSON (internal)");
        p = ws(p + 1, end);
    }
    it->first = 0;
    if (p >= end || *p != '"') return od_fail(d, NULL, 0, "malformed JSON (internal)");
    const uint8_t *q = string_close(p + 1, end);
    key->p = p + 1;
    key->n = (size_t)(q - p - 1);
    key->esc = memchr(key->p, '\\', key->n) != NULL;
    p = ws(q + 1, end);
    if (p < end && *p == ':') p++;
    it->p = ws(p, end);
    if (it->p >= end) return od_fail(d, NULL, 0, "malformed JSON (internal)");
    it->p = take_value(d, it, v);
    return 1;
}

/* --- JSON values as Python sees them --------------------------------------------------- */

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

static int jtype(jpos v) {
    switch (*v.p) {
    case 'n': return J_NULL;
    case 'f': return J_FALSE;
    case 't': return J_TRUE;
    case '"': return J_STR;
    case '[': return J_ARR;
    case '{': return J_OBJ;
    default: return J_NUM;
    }
}

static od_str jstring(od_dec *d, jpos v) {
    const uint8_t *end = d->data + d->len;
    const uint8_t *q = v.e ? v.e - 1 : string_close(v.p + 1, end);
    od_str s = {v.p + 1, (size_t)(q - v.p - 1), 0};
    s.esc = memchr(s.p, '\\', s.n) != NULL;
    return s;
}

static int jnumber(od_dec *d, jpos v, int64_t *i, uint64_t *u, double *x) {
    const uint8_t *e = v.e ? v.e : scalar_end(v.p, d->data + d->len);
    return od_json_number(v.p, (size_t)(e - v.p), i, u, x);
}

static int empty_container(od_dec *d, jpos v) {
    const uint8_t *q = ws(v.p + 1, d->data + d->len);
    return q < d->data + d->len && (*q == '}' || *q == ']');
}

/* Python truthiness of the parsed value */
static int jtruthy(od_dec *d, jpos v) {
    switch (jtype(v)) {
    case J_NULL:
    case J_FALSE: return 0;
    case J_TRUE: return 1;
    case J_STR: return v.p[1] != '"';
    case J_NUM: {
        int64_t i;
        uint64_t u;
        double x;
        int k = jnumber(d, v, &i, &u, &x);
        return k == JN_INT ? i != 0 : k == JN_UINT ? 1 : x != 0.0;
    }
    default: return !empty_container(d, v);
    }
}

/* roughly Python's repr of the parsed value, for error messages */
static void jrepr(od_dec *d, odb *w, jpos v) {
    const uint8_t *end = d->data + d->len;
    switch (jtype(v)) {
    case J_NULL: odb_puts(w, "None"); return;
    case J_FALSE: odb_puts(w, "False"); return;
    case J_TRUE: odb_puts(w, "True"); return;
    case J_STR: od_repr(w, jstring(d, v)); return;
    default: {
        const uint8_t *e = is_container(v.p) ? scan_container(v.p, end) : scalar_end(v.p, end);
        size_t n = (size_t)(e - v.p);
        odb_put(w, v.p, n > 100 ? 100 : n);
        if (n > 100) odb_puts(w, "...");
    }
    }
}

/* an error naming a value: Python's Malformed ("malformed OTLP structure: ...", no field,
 * the message's where) or, for a record's field, an OtlpError naming field and record */
static int bad_value(od_dec *d, jpos v, const char *field, const char *prefix, const char *what) {
    odb w = {0};
    jrepr(d, &w, v);
    odb_putc(&w, 0);
    const char *shown = w.failed ? "?" : (const char *)w.p;
    if (field)
        od_fail(d, field, 1, "%s is %s, %s", field, shown, what);
    else
        od_fail(d, NULL, 0, "malformed OTLP structure: %s%s%s, %s", prefix ? prefix : "",
                prefix ? " is " : "", shown, what);
    odb_free(&w);
    return -1;
}

static const jpos ABSENT = {NULL, NOENT, 0, NULL};

/* _list: absent/false -> empty (*list.p NULL); a list; anything else is malformed */
static int js_list(od_dec *d, jpos v, const char *key, jpos *list) {
    *list = ABSENT;
    if (!v.p || !jtruthy(d, v)) return 0;
    if (*v.p != '[') return bad_value(d, v, NULL, key, "not a list");
    *list = v;
    return 0;
}

static int js_object(od_dec *d, jpos v, const char *key, jpos *obj) {
    *obj = ABSENT;
    if (!v.p || !jtruthy(d, v)) return 0;
    if (*v.p != '{') return bad_value(d, v, NULL, key, "not an object");
    *obj = v;
    return 0;
}

/* _text (container level: malformed) and text (a record's field) */
static int js_text(od_dec *d, jpos v, const char *key, int record, od_str *out) {
    out->p = (const uint8_t *)"";
    out->n = 0;
    out->esc = 0;
    if (!v.p || jtype(v) == J_NULL) return 0;
    if (jtype(v) != J_STR) return bad_value(d, v, record ? key : NULL, key, "not a string");
    *out = jstring(d, v);
    return 0;
}

static inline int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* _int: a JSON integer or ASCII digit text within int64..uint64 (V_INT / V_UINT) */
static int js_int_value(od_dec *d, jpos v, od_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_INT;
    int t = jtype(v);
    if (t == J_NUM) {
        int64_t i;
        uint64_t u;
        double x;
        int k = jnumber(d, v, &i, &u, &x);
        if (k == JN_INT) {
            out->i = i;
            return 1;
        }
        if (k == JN_UINT) {
            out->kind = V_UINT;
            out->u = u;
            return 1;
        }
        return 0;
    }
    if (t != J_STR) return 0;
    od_str s = od_str_plain(jstring(d, v), &d->scratch);
    while (s.n && is_space(s.p[0])) s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1])) s.n--;
    size_t i = 0;
    int neg = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) neg = s.p[i] == '-', i++;
    if (i == s.n) return 0;
    uint64_t mag = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return 0;
        unsigned dg = (unsigned)(s.p[i] - '0');
        if (mag > UINT64_MAX / 10 || (mag == UINT64_MAX / 10 && dg > UINT64_MAX % 10)) return 0;
        mag = mag * 10 + dg;
    }
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return 0;
        out->i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else if (mag > (uint64_t)INT64_MAX) {
        out->kind = V_UINT;
        out->u = mag;
    } else {
        out->i = (int64_t)mag;
    }
    return 1;
}

/* _FLOAT_TEXT: number text, or [+-]?(inf|infinity|nan) in any case */
static int float_text(od_str s) {
    size_t i = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) i++;
    size_t rest = s.n - i;
    static const char *words[] = {"inf", "infinity", "nan"};
    for (int w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (rest != n) continue;
        size_t k = 0;
        for (; k < n; k++) {
            uint8_t c = s.p[i + k];
            if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
            if (c != (uint8_t)words[w][k]) break;
        }
        if (k == n) return 1;
    }
    size_t digits = 0, frac = 0;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, digits++;
    if (i < s.n && s.p[i] == '.') {
        i++;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, frac++;
    }
    if (!digits && !frac) return 0;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) i++;
        size_t ed = 0;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, ed++;
        if (!ed) return 0;
    }
    return i == s.n;
}

/* _float: a JSON number, or number text */
static int js_float_value(od_dec *d, jpos v, double *out) {
    int t = jtype(v);
    if (t == J_NUM) {
        int64_t i;
        uint64_t u;
        int k = jnumber(d, v, &i, &u, out);
        if (k == JN_INT) *out = (double)i;
        if (k == JN_UINT) *out = (double)u;
        return 1;
    }
    if (t != J_STR) return 0;
    od_str s = od_str_plain(jstring(d, v), &d->scratch);
    while (s.n && is_space(s.p[0])) s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1])) s.n--;
    if (!float_text(s)) return 0;
    char small[80];
    char *buf = s.n < sizeof small ? small : malloc(s.n + 1);
    if (!buf) return 0;
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    *out = strtod(buf, NULL);
    if (buf != small) free(buf);
    return 1;
}

/* json_access.integer: 0 when absent or null; an OtlpError naming the field otherwise */
static int js_integer(od_dec *d, jpos v, const char *key, od_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_INT;
    if (!v.p || jtype(v) == J_NULL) return 0;
    if (js_int_value(d, v, out)) return 0;
    return bad_value(d, v, key, NULL, "not an integer");
}

static int js_enum(od_dec *d, jpos v, const char *key, int names, od_val *out) {
    if (v.p && jtype(v) == J_STR) {
        int32_t num;
        if (od_enum_lookup(d->t, names, jstring(d, v), &num)) {
            memset(out, 0, sizeof *out);
            out->kind = V_INT;
            out->i = num;
            return 0;
        }
    }
    return js_integer(d, v, key, out);
}

/* json_access.hex_id: hex text (lower-cased into buf), or V_NONE when absent and optional */
static int js_hex(od_dec *d, jpos v, size_t size, const char *key, int required, char *buf, od_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_NONE;
    int t = v.p ? jtype(v) : J_NULL;
    if (t == J_NULL || (t == J_STR && v.p[1] == '"')) {
        if (!required) return 0;
    } else if (t == J_STR) {
        od_str s = od_str_plain(jstring(d, v), &d->scratch);
        if (s.n == 2 * size) {
            int ok = 1, zero = 1;
            for (size_t i = 0; i < s.n && ok; i++) {
                uint8_t c = s.p[i];
                if (c >= 'A' && c <= 'F') c = (uint8_t)(c + 32);
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) ok = 0;
                if (c != '0') zero = 0;
                buf[i] = (char)c;
            }
            if (ok && !zero) {
                out->kind = V_STR;
                out->s.p = (const uint8_t *)buf;
                out->s.n = s.n;
                return 0;
            }
        }
    }
    odb w = {0};
    if (t == J_NULL)
        odb_puts(&w, "None");
    else
        jrepr(d, &w, v);
    odb_putc(&w, 0);
    od_fail(d, key, 1,
            "%s is %s; expected %zu hex digits (%zu bytes), not all zero (OTLP/JSON ids are hex, "
            "not base64)",
            key, w.failed ? "?" : (char *)w.p, 2 * size, size);
    odb_free(&w);
    return -1;
}

/* --- members of an object, by name (the last of duplicates wins) ------------------------ */

typedef struct {
    const char *name;
    size_t len;
} jname;

/* vals[i] <- the last member named names[i]; vals[i].p NULL when absent. When `order` is
 * given, order[i] is the position of the first member named names[i] (-1 absent). */
static int members(od_dec *d, jpos obj, const jname *names, int n, jpos *vals, int *order) {
    for (int i = 0; i < n; i++) {
        vals[i] = ABSENT;
        if (order) order[i] = -1;
    }
    jit it;
    jit_open(d, &it, obj);
    od_str key;
    jpos v;
    int r, pos = 0;
    while ((r = jobj_next(d, &it, &key, &v)) > 0) {
        for (int i = 0; i < n; i++) {
            if (!key.esc && (key.n != names[i].len || memcmp(key.p, names[i].name, key.n))) continue;
            if (key.esc && !od_str_eq(key, names[i].name, names[i].len)) continue;
            vals[i] = v;
            if (order && order[i] < 0) order[i] = pos;
            break;
        }
        pos++;
    }
    return r;
}

#define JN(id) {d->t->jname[id], d->t->jlen[id]}

/* --- AnyValue and KeyValue (json_access.any_value, attrs) --------------------------------- */

int js_any(od_dec *d, jpos v, int depth, od_val *out, int validate);

static int validate_elems(od_dec *d, const od_val *v) {
    od_vit it;
    vit_init(d, &it, v);
    for (;;) {
        od_str key;
        od_val e;
        int r = vit_next(d, &it, &key, &e);
        if (r <= 0) return r;
    }
}

int js_any(od_dec *d, jpos v, int depth, od_val *out, int validate) {
    OD_UNUSED(validate);
    memset(out, 0, sizeof *out);
    out->kind = V_NONE;
    out->enc = OD_JSON;
    out->depth = depth;
    if (!v.p || !jtruthy(d, v)) return 0;
    if (*v.p != '{') return bad_value(d, v, NULL, "an AnyValue", "not an object");
    if (depth > OD_MAX_DEPTH)
        return od_fail(d, NULL, 0,
                       "attribute values nested deeper than %d messages (the protobuf decoder's "
                       "limit)",
                       OD_MAX_DEPTH);
    const jname names[7] = {JN(N_AV_STRING), JN(N_AV_INT), JN(N_AV_DOUBLE), JN(N_AV_BOOL),
                            JN(N_AV_BYTES), JN(N_AV_ARRAY), JN(N_AV_KVLIST)};
    jpos vals[7];
    int order[7];
    if (members(d, v, names, 7, vals, order) < 0) return -1;
    if (vals[0].p) { /* stringValue wins when present */
        int t = jtype(vals[0]);
        if (t == J_NULL) return 0;
        if (t != J_STR) return bad_value(d, vals[0], NULL, "stringValue", "not a string");
        out->kind = V_STR;
        out->s = jstring(d, vals[0]);
        return 0;
    }
    int pick = -1;
    for (int i = 1; i < 7; i++)
        if (order[i] >= 0 && (pick < 0 || order[i] < order[pick])) pick = i;
    if (pick < 0) return 0;
    jpos x = vals[pick];
    switch (pick) {
    case 1:
        if (!js_int_value(d, x, out)) {
            odb w = {0};
            jrepr(d, &w, x);
            odb_putc(&w, 0);
            od_fail(d, NULL, 0, "malformed OTLP structure: %s is not a 64-bit integer",
                    w.failed ? "?" : (char *)w.p);
            odb_free(&w);
            return -1;
        }
        out->enc = OD_JSON;
        out->depth = depth;
        return 0;
    case 2:
        if (!js_float_value(d, x, &out->d)) {
            odb w = {0};
            jrepr(d, &w, x);
            odb_putc(&w, 0);
            od_fail(d, NULL, 0, "malformed OTLP structure: %s is not a number", w.failed ? "?" : (char *)w.p);
            odb_free(&w);
            return -1;
        }
        out->kind = V_F64;
        return 0;
    case 3:
        out->kind = V_BOOL;
        out->b = (uint8_t)jtruthy(d, x);
        return 0;
    case 4: {
        int t = jtype(x);
        if (t == J_NULL) return 0;
        if (t != J_STR) return bad_value(d, x, NULL, "bytesValue", "not a string");
        out->kind = V_STR; /* already base64 in OTLP/JSON */
        out->s = jstring(d, x);
        return 0;
    }
    default: {
        const char *key = pick == 5 ? d->t->jname[N_AV_ARRAY] : d->t->jname[N_AV_KVLIST];
        jpos obj, list;
        if (js_object(d, x, key, &obj) < 0) return -1;
        jpos values = ABSENT;
        if (obj.p) {
            const jname vn[1] = {JN(pick == 5 ? N_ARRAY_VALUES : N_KVLIST_VALUES)};
            if (members(d, obj, vn, 1, &values, NULL) < 0) return -1;
        }
        if (js_list(d, values, "values", &list) < 0) return -1;
        out->kind = pick == 5 ? V_ARR : V_KVL;
        out->jp = list.p;
        out->jent = list.ent;
        out->jlevel = list.level;
        return validate_elems(d, out);
    }
    }
}

/* The usual KeyValue, as the SDKs write it: {"key":"...","value":{"<member>":<scalar>}}, no
 * whitespace, no escape in the key, nothing else. 1 decoded, 0 (the general path). */
/* the n (<= 8) bytes of a literal at p */
static inline int eq_lit(const uint8_t *p, const uint8_t *end, const char *s, size_t n) {
    if ((size_t)(end - p) < n) return 0;
    if (end - p >= 8) {
        uint64_t w, l = 0, mask = n == 8 ? ~0ull : (1ull << (8 * n)) - 1;
        memcpy(&w, p, 8);
        memcpy(&l, s, n);
        return (w & mask) == l;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)s[i]) return 0;
    return 1;
}

static int kv_fast(od_dec *d, jpos kv, int depth, od_str *key, od_val *val) {
    const uint8_t *p = kv.p + 1, *end = d->data + d->len;
    if (!d->t->canonical_kv) return 0;
#define LIT(s)                                               \
    do {                                                     \
        if (p < end && *p == ' ') p++;                       \
        if (!eq_lit(p, end, s, sizeof(s) - 1)) return 0;     \
        p += sizeof(s) - 1;                                  \
    } while (0)
    LIT("\"key\":");
    LIT("\"");
    const uint8_t *k = p, *q = string_close(k, end);
    if (q >= end || memchr(k, '\\', (size_t)(q - k))) return 0;
    p = q + 1;
    LIT(",");
    LIT("\"value\":");
    LIT("{\"");
    const uint8_t *m = p, *mq = string_close(m, end); /* the member's name */
    if (mq >= end) return 0;
    size_t mn = (size_t)(mq - m);
    int member;
    if (mn == 11 && !memcmp(m, "stringValue", 11)) member = 0;
    else if (mn == 8 && !memcmp(m, "intValue", 8)) member = 1;
    else if (mn == 11 && !memcmp(m, "doubleValue", 11)) member = 2;
    else if (mn == 9 && !memcmp(m, "boolValue", 9)) member = 3;
    else return 0;
    p = mq + 1;
    LIT(":");
    const uint8_t *v = p < end && *p == ' ' ? p + 1 : p, *ve;
    if (v >= end) return 0;
    if (*v == '"') {
        ve = string_close(v + 1, end);
        if (ve >= end) return 0;
        ve++;
    } else {
        ve = v;
        while (ve < end && *ve != '}' && *ve != ',' && *ve != ' ' && *ve != '\n' && *ve != '\t' &&
               *ve != '\r')
            ve++;
    }
    p = ve;
    LIT("}");
    LIT("}");
#undef LIT
    jpos x = {v, NOENT, kv.level + 2, ve};
    memset(val, 0, sizeof *val);
    val->kind = V_NONE;
    val->enc = OD_JSON;
    val->depth = depth;
    int t = jtype(x);
    switch (member) {
    case 0:
        if (t != J_STR) return 0;
        val->kind = V_STR;
        val->s.p = v + 1; /* (ve: just past the closing quote) */
        val->s.n = (size_t)(ve - v - 2);
        val->s.esc = memchr(val->s.p, '\\', val->s.n) != NULL;
        break;
    case 1:
        if (!js_int_value(d, x, val)) return 0;
        val->enc = OD_JSON;
        val->depth = depth;
        break;
    case 2:
        if (!js_float_value(d, x, &val->d)) return 0;
        val->kind = V_F64;
        break;
    default:
        val->kind = V_BOOL;
        val->b = (uint8_t)jtruthy(d, x);
    }
    key->p = k;
    key->n = (size_t)(q - k);
    key->esc = 0;
    return 1;
}

/* a KeyValue: key_default (kvlist: kv.get("key", "")) or required (attrs: kv["key"]) */
int js_kv(od_dec *d, jpos kv, int key_default, int depth, od_str *key, od_val *val, int validate) {
    if (*kv.p != '{') return bad_value(d, kv, NULL, "a KeyValue", "not an object");
    if (depth <= OD_MAX_DEPTH && kv_fast(d, kv, depth, key, val)) return 0;
    const jname names[2] = {JN(N_KV_KEY), JN(N_KV_VALUE)};
    jpos vals[2];
    if (members(d, kv, names, 2, vals, NULL) < 0) return -1;
    key->p = (const uint8_t *)"";
    key->n = 0;
    key->esc = 0;
    if (!vals[0].p) {
        if (!key_default) return od_fail(d, NULL, 0, "malformed OTLP structure: KeyError 'key'");
    } else if (jtype(vals[0]) != J_STR) {
        odb w = {0};
        jrepr(d, &w, vals[0]);
        odb_putc(&w, 0);
        od_fail(d, NULL, 0, "malformed OTLP structure: attribute key %s is not a string",
                w.failed ? "?" : (char *)w.p);
        odb_free(&w);
        return -1;
    } else {
        *key = jstring(d, vals[0]);
    }
    return js_any(d, vals[1], depth, val, validate);
}

/* a record's KeyValue list as a value (dict(attrs(...)) when dumped) */
static void kv_list(od_val *v, jpos list, int depth) {
    memset(v, 0, sizeof *v);
    v->kind = V_KVL;
    v->enc = OD_JSON;
    v->direct = 1;
    v->keyreq = 1;
    v->depth = depth;
    v->jp = list.p;
    v->jent = list.ent;
    v->jlevel = list.level;
}

/* attrs(kvs, depth): every entry resolved (errors now); 1 if any */
static int check_attrs(od_dec *d, jpos kvs, int depth, jpos *list) {
    if (js_list(d, kvs, d->t->jname[N_SPAN_ATTRS], list) < 0) return -1;
    if (!list->p) return 0;
    od_val v;
    kv_list(&v, *list, depth);
    int r = validate_elems(d, &v);
    return r < 0 ? -1 : !empty_container(d, *list);
}

/* split_kvs over a record's attributes */
static int split_list(od_builder *b, jpos kvs, int depth) {
    od_dec *d = &b->dec;
    jpos list;
    if (js_list(d, kvs, d->t->jname[N_SPAN_ATTRS], &list) < 0) return -1;
    if (!list.p) return 0;
    jit it;
    jit_open(d, &it, list);
    jpos kv;
    int r;
    while ((r = jarr_next(d, &it, &kv)) > 0) {
        od_str key;
        od_val val;
        if (js_kv(d, kv, 0, depth, &key, &val, 1) < 0) return -1;
        if (split_attr(d, b->slot, &b->text, &b->extras, b->held, "", key, &val) < 0) return -1;
    }
    return r;
}

/* --- sniffing and validation (sniff.py) --------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    const od_str *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

int js_prepare(const od_tables *t, const uint8_t *data, size_t len, od_msg *m, od_error *err) {
    char why[400];
    err->field[0] = err->path[0] = 0;
    err->row = -1;
    if (len > OD_MAX_MESSAGE) {
        snprintf(err->reason, sizeof err->reason, "message of %zu bytes: over the compiled decoder's 4 GiB", len);
        return OD_ERROR;
    }
    if (od_json_validate(data, len, &m->jidx, why, sizeof why) < 0) {
        snprintf(err->reason, sizeof err->reason, "invalid JSON: %s", why);
        return OD_ERROR;
    }
    od_dec d = {0};
    d.t = t;
    d.data = data;
    d.len = len;
    d.jidx = m->jidx.e;
    d.jn = m->jidx.n;
    d.err = err;
    d.enc = OD_JSON;
    jpos root = {ws(data, data + len), 0, 1, NULL};
    root.ent = (m->jidx.n && is_container(root.p) && !empty_container(&d, root)) ? 0 : NOENT;
    if (*root.p != '{') {
        static const char *kinds[] = {"NoneType", "bool", "bool", "float", "str", "list", "dict"};
        int ty = jtype(root);
        const char *k = kinds[ty];
        if (ty == J_NUM) {
            int64_t i;
            uint64_t u;
            double x;
            k = jnumber(&d, root, &i, &u, &x) == JN_FLOAT ? "float" : "int";
        }
        snprintf(err->reason, sizeof err->reason, "expected a JSON object, got %s", k);
        arena_free(&d.scratch);
        return OD_ERROR;
    }
    jname names[3];
    for (int s = 0; s < 3; s++) names[s].name = t->sig[s].jres, names[s].len = t->sig[s].jres_len;
    jpos vals[3];
    if (members(&d, root, names, 3, vals, NULL) < 0) {
        arena_free(&d.scratch);
        return OD_ERROR;
    }
    int found = 0, sig = -1;
    char list[200] = "";
    for (int s = 0; s < 3; s++)
        if (vals[s].p) {
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", found ? ", " : "", t->sig[s].jres);
            found++;
            if (sig < 0) sig = s;
        }
    if (found > 1) {
        snprintf(err->reason, sizeof err->reason, "holds several signals at once (%s)", list);
        arena_free(&d.scratch);
        return OD_ERROR;
    }
    if (!found) {
        if (empty_container(&d, root)) {
            arena_free(&d.scratch);
            return OD_NONE;
        }
        /* the keys, sorted (Python's sorted(doc)[:5]; the dict has each key once) */
        size_t nk = 0, cap = 16;
        od_str *keys = malloc(cap * sizeof *keys);
        jit it;
        jit_open(&d, &it, root);
        od_str key;
        jpos v;
        while (keys && jobj_next(&d, &it, &key, &v) > 0) {
            if (nk == cap) {
                od_str *k2 = realloc(keys, 2 * cap * sizeof *keys);
                if (!k2) break;
                keys = k2;
                cap *= 2;
            }
            keys[nk++] = od_str_plain(key, &d.scratch);
        }
        odb w = {0};
        if (keys) {
            qsort(keys, nk, sizeof *keys, cmp_str);
            size_t shown = 0;
            for (size_t i = 0; i < nk && shown < 5; i++) {
                if (i && !cmp_str(&keys[i], &keys[i - 1])) continue;
                if (shown++) odb_puts(&w, ", ");
                odb_put(&w, keys[i].p, keys[i].n > 80 ? 80 : keys[i].n);
            }
        }
        odb_putc(&w, 0);
        snprintf(err->reason, sizeof err->reason,
                 "not an OTLP document: no resourceSpans, resourceMetrics or resourceLogs (keys: %s)",
                 w.failed || !w.p ? "?" : (char *)w.p);
        odb_free(&w);
        free(keys);
        arena_free(&d.scratch);
        return OD_ERROR;
    }
    m->signal = sig;
    m->root = vals[sig];
    arena_free(&d.scratch);
    return sig;
}

/* --- records ------------------------------------------------------------------------------ */

typedef struct {
    const od_field *f;
    od_val v;
} late_t;

int od_place(od_builder *b, const od_field *f, const od_val *v, late_t *late, int *nlate);

static void put_late(od_builder *b, late_t *late, int n) {
    for (int i = 0; i < n; i++) {
        extra_key(&b->extras, late[i].f->extra);
        od_dump(&b->dec, &b->extras, &late[i].v);
    }
}

/* json_access.reader: the flat fields in the table's order */
static int place_fields(od_builder *b, const jpos *fv, late_t *late, int *nlate, od_val *vals,
                        char (*hex)[40]) {
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    for (int i = 0; i < s->nfields && i < 16; i++) {
        const od_field *f = &s->fields[i];
        od_val v;
        int r = 0;
        switch (f->kind) {
        case K_ID16:
        case K_ID8: r = js_hex(d, fv[i], f->kind == K_ID16 ? 16 : 8, f->json, f->required, hex[i], &v); break;
        case K_NANOS:
        case K_UINT: r = js_integer(d, fv[i], f->json, &v); break;
        case K_ENUM: r = js_enum(d, fv[i], f->json, f->names, &v); break;
        default:
            memset(&v, 0, sizeof v);
            v.kind = V_STR;
            r = js_text(d, fv[i], f->json, 1, &v.s);
        }
        if (r < 0) return -1;
        if (vals) vals[i] = v;
        od_place(b, f, &v, late, nlate);
    }
    return 0;
}

static int record_members(od_builder *b, jpos rec, const int *extra_ids, int nextra, jpos *fv, jpos *ev) {
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    jname names[32];
    int n = 0;
    for (int i = 0; i < s->nfields && i < 16; i++) names[n].name = s->fields[i].json, names[n++].len = s->fields[i].json_len;
    for (int i = 0; i < nextra; i++) names[n].name = d->t->jname[extra_ids[i]], names[n++].len = d->t->jlen[extra_ids[i]];
    jpos vals[32];
    if (members(d, rec, names, n, vals, NULL) < 0) return -1;
    for (int i = 0; i < s->nfields && i < 16; i++) fv[i] = vals[i];
    for (int i = 0; i < nextra; i++) ev[i] = vals[s->nfields + i];
    return 0;
}

static int not_object(od_dec *d, jpos v) {
    return *v.p != '{' ? bad_value(d, v, NULL, NULL, "has no attribute 'get' (not an object)") : 0;
}

static int js_span(od_builder *b, jpos sp, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    late_t late[16];
    int nlate = 0;
    char hex[16][40];
    row_begin(b);
    if (not_object(d, sp) < 0) return -1;
    static const int EXTRA[4] = {N_SPAN_ATTRS, N_SPAN_STATUS, N_SPAN_EVENTS, N_SPAN_LINKS};
    jpos fv[16], ev[4];
    if (record_members(b, sp, EXTRA, 4, fv, ev) < 0) return -1;
    if (place_fields(b, fv, late, &nlate, NULL, hex) < 0) return -1;
    if (split_list(b, ev[0], 5) < 0) return -1;
    /* status */
    jpos status;
    if (js_object(d, ev[1], t->jname[N_SPAN_STATUS], &status) < 0) return -1;
    jpos sv[2] = {ABSENT, ABSENT};
    if (status.p) {
        const jname sn[2] = {JN(N_STATUS_CODE), JN(N_STATUS_MESSAGE)};
        if (members(d, status, sn, 2, sv, NULL) < 0) return -1;
    }
    od_val code;
    od_str message;
    if (js_enum(d, sv[0], t->jname[N_STATUS_CODE], t->status_names, &code) < 0) return -1;
    if (js_text(d, sv[1], t->jname[N_STATUS_MESSAGE], 1, &message) < 0) return -1;
    int sc = b->c.status_code;
    int nonzero = code.kind == V_UINT || code.i != 0;
    if (nonzero || !b->slot[sc].present) {
        const char *text = code.kind == V_INT ? od_map_text(&t->status, code.i) : NULL;
        if (text)
            row_set_text(b, sc, (const uint8_t *)text, strlen(text));
        else
            row_set_null(b, sc);
    } else if (b->slot[sc].state == S_TEXT) {
        uint8_t *q = b->text.p + b->slot[sc].off;
        for (size_t i = 0; i < b->slot[sc].len; i++)
            if (q[i] >= 'A' && q[i] <= 'Z') q[i] = (uint8_t)(q[i] + 32);
    }
    if (message.n) {
        od_str m = od_str_plain(message, &d->scratch);
        row_set_text(b, b->c.status_message, m.p, m.n);
    }
    put_late(b, late, nlate);
    /* events: every one read (errors) before any is kept */
    jpos events;
    if (js_list(d, ev[2], t->jname[N_SPAN_EVENTS], &events) < 0) return -1;
    if (events.p) {
        const jname en[4] = {JN(N_EV_NAME), JN(N_EV_TIME), JN(N_EV_ATTRS), JN(N_EV_DROPPED)};
        jit it;
        jpos e;
        int r;
        jit_open(d, &it, events);
        while ((r = jarr_next(d, &it, &e)) > 0) {
            if (not_object(d, e) < 0) return -1;
            jpos x[4];
            od_str name;
            od_val time, dropped;
            jpos list;
            if (members(d, e, en, 4, x, NULL) < 0 || js_text(d, x[0], t->jname[N_EV_NAME], 1, &name) < 0 ||
                js_integer(d, x[1], t->jname[N_EV_TIME], &time) < 0 || check_attrs(d, x[2], 6, &list) < 0 ||
                js_integer(d, x[3], t->jname[N_EV_DROPPED], &dropped) < 0)
                return -1;
        }
        if (r < 0) return -1;
        extra_key(&b->extras, "events");
        odb_putc(&b->extras, '[');
        jit_open(d, &it, events);
        int first = 1;
        int want_type = !b->slot[b->c.error_type].present;
        while (jarr_next(d, &it, &e) > 0) {
            jpos x[4];
            od_str name;
            od_val time, dropped;
            jpos list;
            members(d, e, en, 4, x, NULL);
            js_text(d, x[0], NULL, 1, &name);
            js_integer(d, x[1], NULL, &time);
            js_integer(d, x[3], NULL, &dropped);
            if (!first) odb_putc(&b->extras, ',');
            first = 0;
            odb_puts(&b->extras, "{\"name\":");
            jw_string(&b->extras, name);
            odb_puts(&b->extras, ",\"time_unix_nano\":");
            od_dump(d, &b->extras, &time);
            int any = check_attrs(d, x[2], 6, &list);
            if (any > 0) {
                od_val kv;
                kv_list(&kv, list, 6);
                odb_puts(&b->extras, ",\"attributes\":");
                if (od_dump(d, &b->extras, &kv) < 0) return -1;
            }
            if (dropped.kind == V_UINT || dropped.i) {
                odb_puts(&b->extras, ",\"dropped_attributes_count\":");
                od_dump(d, &b->extras, &dropped);
            }
            odb_putc(&b->extras, '}');
            /* exception_type: the first exception event with a non-empty exception.type */
            if (want_type && any > 0 && od_str_eq(name, "exception", 9)) {
                jit ai;
                jpos kvj;
                od_val found;
                int have = 0;
                jit_open(d, &ai, list);
                while (jarr_next(d, &ai, &kvj) > 0) {
                    od_str key;
                    od_val val;
                    if (js_kv(d, kvj, 0, 6, &key, &val, 1) < 0) return -1;
                    if (od_str_eq(key, "exception.type", 14)) found = val, have = 1;
                }
                if (have && od_is_str(&found)) {
                    od_str text = od_val_text(d, &found);
                    if (text.n) {
                        row_set_text(b, b->c.error_type, text.p, text.n);
                        want_type = 0;
                    }
                }
            }
        }
        odb_putc(&b->extras, ']');
    }
    /* links */
    jpos links;
    if (js_list(d, ev[3], t->jname[N_SPAN_LINKS], &links) < 0) return -1;
    if (links.p) {
        const jname ln[5] = {JN(N_LN_TRACE), JN(N_LN_SPAN), JN(N_LN_STATE), JN(N_LN_ATTRS), JN(N_LN_FLAGS)};
        jit it;
        jpos e;
        int r;
        jit_open(d, &it, links);
        while ((r = jarr_next(d, &it, &e)) > 0) {
            if (not_object(d, e) < 0) return -1;
            jpos x[5], list;
            char h1[40], h2[40];
            od_val tr, spn, flags;
            od_str state;
            if (members(d, e, ln, 5, x, NULL) < 0 || js_hex(d, x[0], 16, "links.traceId", 1, h1, &tr) < 0 ||
                js_hex(d, x[1], 8, "links.spanId", 1, h2, &spn) < 0 ||
                js_text(d, x[2], t->jname[N_LN_STATE], 1, &state) < 0 || check_attrs(d, x[3], 6, &list) < 0 ||
                js_integer(d, x[4], t->jname[N_LN_FLAGS], &flags) < 0)
                return -1;
        }
        if (r < 0) return -1;
        extra_key(&b->extras, "links");
        odb_putc(&b->extras, '[');
        jit_open(d, &it, links);
        int first = 1;
        while (jarr_next(d, &it, &e) > 0) {
            jpos x[5], list;
            char h1[40], h2[40];
            od_val tr, spn, flags;
            od_str state;
            members(d, e, ln, 5, x, NULL);
            js_hex(d, x[0], 16, "links.traceId", 1, h1, &tr);
            js_hex(d, x[1], 8, "links.spanId", 1, h2, &spn);
            js_text(d, x[2], NULL, 1, &state);
            js_integer(d, x[4], NULL, &flags);
            if (!first) odb_putc(&b->extras, ',');
            first = 0;
            odb_puts(&b->extras, "{\"trace_id\":");
            jw_raw_string(&b->extras, tr.s.p, tr.s.n);
            odb_puts(&b->extras, ",\"span_id\":");
            jw_raw_string(&b->extras, spn.s.p, spn.s.n);
            if (state.n) {
                odb_puts(&b->extras, ",\"trace_state\":");
                jw_string(&b->extras, state);
            }
            if (check_attrs(d, x[3], 6, &list) > 0) {
                od_val kv;
                kv_list(&kv, list, 6);
                odb_puts(&b->extras, ",\"attributes\":");
                if (od_dump(d, &b->extras, &kv) < 0) return -1;
            }
            if (flags.kind == V_UINT || flags.i) {
                odb_puts(&b->extras, ",\"flags\":");
                od_dump(d, &b->extras, &flags);
            }
            odb_putc(&b->extras, '}');
        }
        odb_putc(&b->extras, ']');
    }
    return row_finish(b, ctx);
}

/* --- metrics ------------------------------------------------------------------------------- */

static const char *METRIC_KIND[5] = {"gauge", "sum", "histogram", "exponential_histogram", "summary"};

static int js_metric(od_builder *b, jpos metric) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    od_walkstate *w = &b->w;
    od_base *bs = &w->base;
    row_begin(b);
    if (*metric.p != '{') return bad_value(d, metric, NULL, "a metric", "not an object");
    static const int EXTRA[6] = {N_M_GAUGE, N_M_SUM, N_M_HIST, N_M_EXP, N_M_SUMMARY, N_M_METADATA};
    jpos fv[16], ev[6];
    if (record_members(b, metric, EXTRA, 6, fv, ev) < 0) return -1;
    int kind = -1;
    for (int k = 0; k < 5 && kind < 0; k++)
        if (ev[k].p) kind = k;
    if (kind < 0) return 0;
    jpos data;
    if (js_object(d, ev[kind], t->jname[EXTRA[kind]], &data) < 0) return -1;
    late_t late[16];
    int nlate = 0;
    char hex[16][40];
    if (place_fields(b, fv, late, &nlate, NULL, hex) < 0) return -1;
    /* is_monotonic and aggregationTemporality are read for every kind, as json_access does */
    jpos dv[3] = {ABSENT, ABSENT, ABSENT};
    if (data.p) {
        const jname dn[3] = {JN(N_S_MONOTONIC), JN(N_S_TEMPORALITY), JN(N_G_POINTS)};
        if (members(d, data, dn, 3, dv, NULL) < 0) return -1;
    }
    int mono = dv[0].p && jtruthy(d, dv[0]);
    const char *type = kind == 1 ? (mono ? "counter" : "updowncounter") : METRIC_KIND[kind];
    row_set_text(b, b->c.metric_type, (const uint8_t *)type, strlen(type));
    od_val temporality;
    if (js_enum(d, dv[1], t->jname[N_S_TEMPORALITY], t->temporality_names, &temporality) < 0) return -1;
    const char *tt = temporality.kind == V_INT ? od_map_text(&t->temporality, temporality.i) : NULL;
    if (tt)
        row_set_text(b, b->c.temporality, (const uint8_t *)tt, strlen(tt));
    else
        row_set_null(b, b->c.temporality);
    base_reset(bs);
    bs->kind = kind;
    odb_put(&bs->text, b->text.p, b->text.n);
    memcpy(bs->slot, b->slot, sizeof bs->slot);
    odb saved = b->extras;
    b->extras = bs->extra;
    put_late(b, late, nlate);
    jpos list;
    int any = check_attrs(d, ev[5], 5, &list);
    if (any < 0) {
        bs->extra = b->extras;
        b->extras = saved;
        return -1;
    }
    if (any > 0) {
        od_val kv;
        kv_list(&kv, list, 5);
        extra_key(&b->extras, "metric.metadata");
        od_dump(d, &b->extras, &kv);
    }
    bs->extra = b->extras;
    b->extras = saved;
    if (bs->text.failed || bs->extra.failed) return od_oom(d);
    jpos points;
    if (js_list(d, dv[2], t->jname[N_G_POINTS], &points) < 0) return -1;
    w->jdata = points;
    return 1;
}

/* point_values' failures: OtlpError(f"malformed {kind} data point: ...", field=kind) */
static int bad_point(od_dec *d, int kind, jpos v, const char *what) {
    odb w = {0};
    if (v.p)
        jrepr(d, &w, v);
    else
        odb_puts(&w, "None");
    odb_putc(&w, 0);
    od_fail(d, METRIC_KIND[kind], 1, "malformed %s data point: %s %s", METRIC_KIND[kind],
            w.failed ? "?" : (char *)w.p, what);
    odb_free(&w);
    return -1;
}

static int point_float(od_dec *d, int kind, jpos v, double dflt, double *out) {
    if (!v.p) {
        *out = dflt;
        return 0;
    }
    if (js_float_value(d, v, out)) return 0;
    return bad_point(d, kind, v, "is not a number");
}

static int point_int(od_dec *d, int kind, jpos v, od_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_INT;
    if (!v.p) return 0;
    if (js_int_value(d, v, out)) return 0;
    return bad_point(d, kind, v, "is not a 64-bit integer");
}

static int point_list(od_dec *d, int kind, jpos v, const char *key, jpos *list) {
    *list = ABSENT;
    if (!v.p || !jtruthy(d, v)) return 0;
    if (*v.p != '[') return bad_point(d, kind, v, "is not a list");
    (void)key;
    *list = v;
    return 0;
}

/* a list of numbers into w (ints: _int, floats: _float) */
static int point_numbers(od_dec *d, int kind, odb *w, jpos v, const char *key, int floats) {
    jpos list;
    if (point_list(d, kind, v, key, &list) < 0) return -1;
    odb_putc(w, '[');
    if (list.p) {
        jit it;
        jpos e;
        int first = 1;
        jit_open(d, &it, list);
        while (jarr_next(d, &it, &e) > 0) {
            if (!first) odb_putc(w, ',');
            first = 0;
            if (floats) {
                double x;
                if (point_float(d, kind, e, 0, &x) < 0) return -1;
                jw_double(w, x);
            } else {
                od_val n;
                if (point_int(d, kind, e, &n) < 0) return -1;
                od_dump(d, w, &n);
            }
        }
    }
    odb_putc(w, ']');
    return 0;
}

static int js_exemplars(od_builder *b, jpos v) {
    od_dec *d = &b->dec;
    jpos list;
    if (js_list(d, v, "exemplars", &list) < 0) return -1;
    if (!list.p) return 0;
    const jname xn[6] = {JN(N_X_TIME), JN(N_X_DOUBLE), JN(N_X_INT), JN(N_X_TRACE), JN(N_X_SPAN), JN(N_X_ATTRS)};
    extra_key(&b->extras, "exemplars");
    odb_putc(&b->extras, '[');
    jit it;
    jpos e;
    int r, first = 1;
    jit_open(d, &it, list);
    while ((r = jarr_next(d, &it, &e)) > 0) {
        if (not_object(d, e) < 0) return -1;
        jpos x[6];
        if (members(d, e, xn, 6, x, NULL) < 0) return -1;
        od_val time, value;
        memset(&time, 0, sizeof time);
        time.kind = V_INT;
        if (x[0].p && !js_int_value(d, x[0], &time)) return bad_value(d, x[0], NULL, NULL, "is not a 64-bit integer");
        if (x[1].p) {
            memset(&value, 0, sizeof value);
            value.kind = V_F64;
            if (!js_float_value(d, x[1], &value.d)) return bad_value(d, x[1], NULL, NULL, "is not a number");
        } else {
            memset(&value, 0, sizeof value);
            value.kind = V_INT;
            if (x[2].p && !js_int_value(d, x[2], &value)) return bad_value(d, x[2], NULL, NULL, "is not a 64-bit integer");
        }
        od_str ids[2] = {{(const uint8_t *)"", 0, 0}, {(const uint8_t *)"", 0, 0}};
        for (int k = 0; k < 2; k++) {
            jpos idv = x[3 + k];
            if (!idv.p || !jtruthy(d, idv)) continue;
            if (jtype(idv) != J_STR) return bad_value(d, idv, NULL, k ? "spanId" : "traceId", "not a string");
            ids[k] = jstring(d, idv);
        }
        jpos alist = ABSENT;
        int any = 0;
        if (x[5].p && jtruthy(d, x[5])) {
            any = check_attrs(d, x[5], 8, &alist);
            if (any < 0) return -1;
        }
        if (!first) odb_putc(&b->extras, ',');
        first = 0;
        odb_puts(&b->extras, "{\"time_unix_nano\":");
        od_dump(d, &b->extras, &time);
        odb_puts(&b->extras, ",\"value\":");
        od_dump(d, &b->extras, &value);
        for (int k = 0; k < 2; k++) {
            if (!ids[k].n) continue;
            odb_puts(&b->extras, k ? ",\"span_id\":\"" : ",\"trace_id\":\"");
            /* ascii_lower of the text */
            od_str plain = od_str_plain(ids[k], &d->scratch);
            size_t at = b->extras.n;
            od_str raw = {plain.p, plain.n, 0};
            jw_string_body(&b->extras, raw);
            if (!b->extras.failed)
                for (size_t i = at; i < b->extras.n; i++)
                    if (b->extras.p[i] >= 'A' && b->extras.p[i] <= 'Z') b->extras.p[i] = (uint8_t)(b->extras.p[i] + 32);
            odb_putc(&b->extras, '"');
        }
        if (any > 0) {
            od_val kv;
            kv_list(&kv, alist, 8);
            odb_puts(&b->extras, ",\"attributes\":");
            if (od_dump(d, &b->extras, &kv) < 0) return -1;
        }
        odb_putc(&b->extras, '}');
    }
    odb_putc(&b->extras, ']');
    return r;
}

static int js_point(od_builder *b, jpos p, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    od_base *bs = &b->w.base;
    int kind = bs->kind;
    row_begin(b);
    if (not_object(d, p) < 0) return -1;
    enum { P_FLAGS, P_START, P_TIME, P_DOUBLE, P_INT, P_SUM, P_COUNT, P_MIN, P_MAX, P_BOUNDS, P_COUNTS,
           P_SCALE, P_ZC, P_ZT, P_POS, P_NEG, P_QUANT, P_ATTRS, P_EXEMPLARS, P_N };
    const jname pn[P_N] = {JN(N_NP_FLAGS), JN(N_NP_START), JN(N_NP_TIME), JN(N_NP_DOUBLE), JN(N_NP_INT),
                           JN(N_HP_SUM), JN(N_HP_COUNT), JN(N_HP_MIN), JN(N_HP_MAX), JN(N_HP_BOUNDS),
                           JN(N_HP_COUNTS), JN(N_EP_SCALE), JN(N_EP_ZERO_COUNT), JN(N_EP_ZERO_THRESHOLD),
                           JN(N_EP_POSITIVE), JN(N_EP_NEGATIVE), JN(N_SP_QUANTILES), JN(N_NP_ATTRS),
                           JN(N_NP_EXEMPLARS)};
    jpos x[P_N];
    if (members(d, p, pn, P_N, x, NULL) < 0) return -1;
    od_val flags, start, time;
    if (js_integer(d, x[P_FLAGS], t->jname[N_NP_FLAGS], &flags) < 0 ||
        js_integer(d, x[P_START], t->jname[N_NP_START], &start) < 0 ||
        js_integer(d, x[P_TIME], t->jname[N_NP_TIME], &time) < 0)
        return -1;
    if (flags.kind == V_UINT ? (flags.u & 1) : (flags.i & 1)) return 0;
    memcpy(b->slot, bs->slot, sizeof b->slot);
    odb_put(&b->text, bs->text.p, bs->text.n);
    int64_t tq = time.kind == V_UINT ? (int64_t)(time.u / 1000) : time.i / 1000 - (time.i % 1000 != 0 && time.i < 0);
    row_set_int(b, b->c.time, tq);
    if (start.kind == V_UINT || start.i)
        row_set_int(b, b->c.start_time,
                    start.kind == V_UINT ? (int64_t)(start.u / 1000) : start.i / 1000 - (start.i % 1000 != 0 && start.i < 0));
    else
        row_set_null(b, b->c.start_time);
    double value, lo = 0, hi = 0;
    int has_lo = 0, has_hi = 0;
    size_t bat = 0;
    int has_buckets = 0;
    if (kind <= 1) {
        if (x[P_DOUBLE].p) {
            if (point_float(d, kind, x[P_DOUBLE], 0, &value) < 0) return -1;
        } else {
            od_val n;
            if (js_integer(d, x[P_INT], t->jname[N_NP_INT], &n) < 0) return -1;
            value = n.kind == V_UINT ? (double)n.u : (double)n.i;
        }
        row_set_f64(b, b->c.value, value);
    } else {
        od_val count;
        if (point_float(d, kind, x[P_SUM], 0.0, &value) < 0) return -1;
        if (js_integer(d, x[P_COUNT], t->jname[N_HP_COUNT], &count) < 0) return -1;
        row_set_f64(b, b->c.value, value);
        if (count.kind == V_UINT) {
            char txt[32];
            snprintf(txt, sizeof txt, "%llu", (unsigned long long)count.u);
            row_set_unfit(b, b->c.sample_count, txt);
        } else {
            row_set_int(b, b->c.sample_count, count.i);
        }
        if (kind != 4) {
            if (x[P_MIN].p) {
                if (point_float(d, kind, x[P_MIN], 0, &lo) < 0) return -1;
                has_lo = 1;
                row_set_f64(b, b->c.min_value, lo);
            }
            if (x[P_MAX].p) {
                if (point_float(d, kind, x[P_MAX], 0, &hi) < 0) return -1;
                has_hi = 1;
                row_set_f64(b, b->c.max_value, hi);
            }
        }
        odb *w = &b->text;
        bat = w->n;
        has_buckets = 1;
        if (kind == 2) {
            odb_puts(w, "{\"bounds\":");
            if (point_numbers(d, kind, w, x[P_BOUNDS], "explicitBounds", 1) < 0) return -1;
            odb_puts(w, ",\"counts\":");
            if (point_numbers(d, kind, w, x[P_COUNTS], "bucketCounts", 0) < 0) return -1;
            odb_putc(w, '}');
        } else if (kind == 3) {
            od_val scale, zc;
            double zt;
            if (point_int(d, kind, x[P_SCALE], &scale) < 0 || point_int(d, kind, x[P_ZC], &zc) < 0 ||
                point_float(d, kind, x[P_ZT], 0.0, &zt) < 0)
                return -1;
            odb_puts(w, "{\"scale\":");
            od_dump(d, w, &scale);
            odb_puts(w, ",\"zero_count\":");
            od_dump(d, w, &zc);
            odb_puts(w, ",\"zero_threshold\":");
            jw_double(w, zt);
            for (int side = 0; side < 2; side++) {
                jpos sv = x[side ? P_NEG : P_POS], obj = ABSENT;
                if (sv.p && jtruthy(d, sv)) {
                    if (*sv.p != '{') return bad_point(d, kind, sv, "is not an object");
                    obj = sv;
                }
                jpos bv[2] = {ABSENT, ABSENT};
                if (obj.p) {
                    const jname bn[2] = {JN(N_B_OFFSET), JN(N_B_COUNTS)};
                    if (members(d, obj, bn, 2, bv, NULL) < 0) return -1;
                }
                od_val offset;
                if (point_int(d, kind, bv[0], &offset) < 0) return -1;
                odb_puts(w, side ? ",\"negative\":{\"offset\":" : ",\"positive\":{\"offset\":");
                od_dump(d, w, &offset);
                odb_puts(w, ",\"counts\":");
                if (point_numbers(d, kind, w, bv[1], "bucketCounts", 0) < 0) return -1;
                odb_putc(w, '}');
            }
            odb_putc(w, '}');
        } else {
            jpos list;
            if (point_list(d, kind, x[P_QUANT], "quantileValues", &list) < 0) return -1;
            odb_puts(w, "{\"quantiles\":[");
            if (list.p) {
                jit it;
                jpos q;
                int first = 1;
                jit_open(d, &it, list);
                const jname qn[2] = {JN(N_VQ_QUANTILE), JN(N_VQ_VALUE)};
                while (jarr_next(d, &it, &q) > 0) {
                    if (*q.p != '{') return bad_point(d, kind, q, "has no attribute 'get'");
                    jpos qv[2];
                    double qq, vv;
                    if (members(d, q, qn, 2, qv, NULL) < 0 || point_float(d, kind, qv[0], 0.0, &qq) < 0 ||
                        point_float(d, kind, qv[1], 0.0, &vv) < 0)
                        return -1;
                    if (!first) odb_putc(w, ',');
                    first = 0;
                    odb_puts(w, "{\"quantile\":");
                    jw_double(w, qq);
                    odb_puts(w, ",\"value\":");
                    jw_double(w, vv);
                    odb_putc(w, '}');
                }
            }
            odb_put(w, "]}", 2);
        }
    }
    if (!isfinite(value) || (has_lo && !isfinite(lo)) || (has_hi && !isfinite(hi))) return 0;
    if (has_buckets) {
        od_slot *s = &b->slot[b->c.buckets];
        s->present = 1;
        s->state = S_TEXT;
        s->off = bat;
        s->len = b->text.n - bat;
    }
    odb_put(&b->extras, bs->extra.p, bs->extra.n);
    if (split_list(b, x[P_ATTRS], 7) < 0) return -1;
    if (flags.kind == V_UINT || flags.i) {
        extra_key(&b->extras, "metric.flags");
        od_dump(d, &b->extras, &flags);
    }
    if (js_exemplars(b, x[P_EXEMPLARS]) < 0) return -1;
    return row_finish(b, ctx);
}

/* --- logs ----------------------------------------------------------------------------------- */

static int js_log(od_builder *b, jpos rec, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    late_t late[16];
    int nlate = 0;
    char hex[16][40];
    od_val vals[16];
    row_begin(b);
    if (not_object(d, rec) < 0) return -1;
    static const int EXTRA[2] = {N_LR_BODY, N_LR_ATTRS};
    jpos fv[16], ev[2];
    if (record_members(b, rec, EXTRA, 2, fv, ev) < 0) return -1;
    int ti = -1, oi = -1, ei = -1;
    for (int i = 0; i < s->nfields; i++) {
        if (s->fields[i].number == t->num[N_LR_TIME]) ti = i;
        if (s->fields[i].number == t->num[N_LR_OBSERVED]) oi = i;
        if (s->fields[i].kind == K_TEXT && s->fields[i].col < 0 && !s->fields[i].extra) ei = i;
    }
    if (place_fields(b, fv, late, &nlate, vals, hex) < 0) return -1;
    od_val zero = {0};
    zero.kind = V_INT;
    od_val time = ti >= 0 ? vals[ti] : zero, observed = oi >= 0 ? vals[oi] : zero;
    int tt = time.kind == V_UINT || time.i, ot = observed.kind == V_UINT || observed.i;
    const od_val *tv = tt ? &time : &observed;
    if (tt || ot) {
        int64_t q = tv->kind == V_UINT ? (int64_t)(tv->u / 1000) : tv->i / 1000 - (tv->i % 1000 != 0 && tv->i < 0);
        row_set_int(b, b->c.time, q);
    } else {
        row_set_null(b, b->c.time);
    }
    od_val body;
    if (js_any(d, ev[0], 4, &body, 1) < 0) return -1;
    if (body.kind == V_NONE) {
        row_set_text(b, b->c.body, (const uint8_t *)"", 0);
    } else if (od_is_str(&body)) {
        od_str text = od_val_text(d, &body);
        row_set_text(b, b->c.body, text.p, text.n);
    } else {
        size_t at = b->text.n;
        if (od_dump(d, &b->text, &body) < 0) return -1;
        od_slot *sl = &b->slot[b->c.body];
        sl->present = 1, sl->state = S_TEXT, sl->off = at, sl->len = b->text.n - at;
    }
    if (split_list(b, ev[1], 5) < 0) return -1;
    if (ei >= 0 && vals[ei].s.n) {
        od_str field = od_str_plain(vals[ei].s, &d->scratch);
        od_slot *held = &b->slot[b->c.event_name];
        if (held->present && held->state == S_TEXT &&
            !(held->len == field.n && !memcmp(b->text.p + held->off, field.p, held->len))) {
            extra_key(&b->extras, "event.name");
            jw_raw_string(&b->extras, b->text.p + held->off, held->len);
        }
        row_set_text(b, b->c.event_name, field.p, field.n);
    }
    if (tt && ot) {
        extra_key(&b->extras, "log.observed_time_unix_nano");
        od_dump(d, &b->extras, &observed);
    }
    put_late(b, late, nlate);
    return row_finish(b, ctx);
}

/* --- the walk --------------------------------------------------------------------------------- */

/* a resource's attributes, checked once (attrs() raises here, before its scopes) */
static int resource_members(od_builder *b, jpos res, jpos *attrs, jpos *url, jpos *scopes) {
    od_dec *d = &b->dec;
    const od_tables *t = b->t;
    const od_signal *s = b->sig;
    if (*res.p != '{') return bad_value(d, res, NULL, NULL, "has no attribute 'get' (not an object)");
    const jname rn[3] = {JN(s->n_resource), JN(s->n_res_schema), {s->jscope, s->jscope_len}};
    jpos v[3];
    if (members(d, res, rn, 3, v, NULL) < 0) return -1;
    jpos robj;
    if (js_object(d, v[0], t->jname[s->n_resource], &robj) < 0) return -1;
    *attrs = ABSENT;
    if (robj.p) {
        const jname an[1] = {JN(N_RESOURCE_ATTRS)};
        if (members(d, robj, an, 1, attrs, NULL) < 0) return -1;
    }
    jpos list;
    if (check_attrs(d, *attrs, 4, &list) < 0) return -1;
    *attrs = list;
    od_str u;
    if (js_text(d, v[1], t->jname[s->n_res_schema], 0, &u) < 0) return -1;
    *url = v[1];
    return js_list(d, v[2], s->jscope, scopes);
}

static int build_ctx(od_builder *b, jpos attrs, jpos url, jpos scoped, jpos *records) {
    od_dec *d = &b->dec;
    const od_tables *t = b->t;
    const od_signal *s = b->sig;
    od_ctx *c = &b->w.ctx;
    if (*scoped.p != '{') return bad_value(d, scoped, NULL, NULL, "has no attribute 'get' (not an object)");
    const jname sn[3] = {JN(s->n_scope), JN(s->n_scope_schema), {s->jrec, s->jrec_len}};
    jpos v[3];
    if (members(d, scoped, sn, 3, v, NULL) < 0) return -1;
    jpos sobj;
    if (js_object(d, v[0], t->jname[s->n_scope], &sobj) < 0) return -1;
    jpos sv[3] = {ABSENT, ABSENT, ABSENT};
    if (sobj.p) {
        const jname scn[3] = {JN(N_SCOPE_NAME), JN(N_SCOPE_VERSION), JN(N_SCOPE_ATTRS)};
        if (members(d, sobj, scn, 3, sv, NULL) < 0) return -1;
    }
    od_str name, version, rurl, surl;
    jpos slist;
    if (js_text(d, sv[0], t->jname[N_SCOPE_NAME], 0, &name) < 0 ||
        js_text(d, sv[1], t->jname[N_SCOPE_VERSION], 0, &version) < 0 || check_attrs(d, sv[2], 5, &slist) < 0 ||
        js_text(d, v[1], t->jname[s->n_scope_schema], 0, &surl) < 0)
        return -1;
    js_text(d, url, NULL, 0, &rurl);
    ctx_reset(c);
    if (attrs.p) {
        jit it;
        jpos kv;
        jit_open(d, &it, attrs);
        while (jarr_next(d, &it, &kv) > 0) {
            od_str key;
            od_val val;
            if (js_kv(d, kv, 0, 4, &key, &val, 1) < 0) return -1;
            if (split_attr(d, c->slot, &c->text, &c->shared, c->held, "resource.", key, &val) < 0) return -1;
        }
    }
    if (rurl.n) {
        extra_key(&c->shared, "resource.schema_url");
        jw_string(&c->shared, rurl);
    }
    if (name.n) {
        extra_key(&c->shared, "scope.name");
        jw_string(&c->shared, name);
    }
    if (version.n) {
        extra_key(&c->shared, "scope.version");
        jw_string(&c->shared, version);
    }
    if (slist.p) {
        jit it;
        jpos kv;
        jit_open(d, &it, slist);
        while (jarr_next(d, &it, &kv) > 0) {
            od_str key;
            od_val val;
            if (js_kv(d, kv, 0, 5, &key, &val, 1) < 0) return -1;
            if (ctx_scope_attr(d, c, key, &val, name.n > 0, version.n > 0) < 0) return -1;
        }
    }
    if (surl.n) {
        extra_key(&c->shared, "scope.schema_url");
        jw_string(&c->shared, surl);
    }
    if (ctx_done(d, c) < 0) return -1;
    return js_list(d, v[2], s->jrec, records);
}

int js_step(od_builder *b) {
    od_walkstate *w = &b->w;
    od_dec *d = &b->dec;
    jpos v;
    int r;
    for (;;) {
        switch (w->level) {
        case 0: {
            jpos list;
            arena_reset(&d->scratch);
            if (js_list(d, b->msg->root, b->sig->jres, &list) < 0) return -1;
            if (!list.p) {
                w->level = 4;
                return 0;
            }
            jit_open(d, &w->jres, list);
            d->i = -1;
            w->level = 5;
            continue;
        }
        case 5:
            r = jarr_next(d, &w->jres, &v);
            if (r < 0) return -1;
            if (r == 0) {
                w->level = 4;
                return 0;
            }
            d->i++;
            arena_reset(&d->scratch);
            {
                jpos scopes;
                if (resource_members(b, v, &w->jres_v, &w->jscope_v, &scopes) < 0) return -1;
                if (!scopes.p) continue;
                jit_open(d, &w->jscope, scopes);
            }
            d->j = -1;
            w->level = 1;
            continue;
        case 1:
            r = jarr_next(d, &w->jscope, &v);
            if (r < 0) return -1;
            if (r == 0) {
                w->level = 5;
                continue;
            }
            d->j++;
            arena_reset(&d->scratch);
            {
                jpos records;
                if (build_ctx(b, w->jres_v, w->jscope_v, v, &records) < 0) return -1;
                if (!records.p) continue;
                jit_open(d, &w->jrec, records);
            }
            d->k = -1;
            w->level = 2;
            continue;
        case 2:
            r = jarr_next(d, &w->jrec, &v);
            if (r < 0) return -1;
            if (r == 0) {
                w->level = 1;
                continue;
            }
            d->k++;
            if (b->signal == SIG_TRACES) r = js_span(b, v, &w->ctx);
            else if (b->signal == SIG_LOGS) r = js_log(b, v, &w->ctx);
            else {
                r = js_metric(b, v);
                if (r > 0) {
                    if (!w->jdata.p) continue;
                    jit_open(d, &w->jpt, w->jdata);
                    w->level = 3;
                    continue;
                }
            }
            if (r != 0) return r;
            continue;
        case 3:
            r = jarr_next(d, &w->jpt, &v);
            if (r < 0) return -1;
            if (r == 0) {
                w->level = 2;
                continue;
            }
            r = js_point(b, v, &w->ctx);
            if (r != 0) return r;
            continue;
        default: return 0;
        }
    }
}
