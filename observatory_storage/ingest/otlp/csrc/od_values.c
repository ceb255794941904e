/* Values: JSON numbers, the elements of arrays and kvlists, orjson.dumps of a value, and
 * the attribute -> column conversions of mapping.py (_text, _json, _integer, _number,
 * _decimal), rule for rule. */
#include <math.h>
#include <stdio.h>

#include "od_walk.h"

/* --- JSON numbers --------------------------------------------------------------- */

int od_json_number(const uint8_t *s, size_t n, int64_t *i, uint64_t *u, double *d) {
    int integral = 1;
    for (size_t k = 0; k < n; k++)
        if (s[k] == '.' || s[k] == 'e' || s[k] == 'E') integral = 0;
    if (integral && n > 0) {
        int neg = s[0] == '-';
        uint64_t v = 0;
        int over = 0;
        for (size_t k = (size_t)neg; k < n; k++) {
            unsigned dg = (unsigned)(s[k] - '0');
            if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && dg > UINT64_MAX % 10)) {
                over = 1;
                break;
            }
            v = v * 10 + dg;
        }
        if (!over) {
            if (!neg && v <= (uint64_t)INT64_MAX) {
                *i = (int64_t)v;
                return JN_INT;
            }
            if (!neg) {
                *u = v;
                return JN_UINT;
            }
            if (v <= (uint64_t)INT64_MAX + 1) {
                *i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
                return JN_INT;
            }
        }
    }
    char small[80];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) {
        *d = NAN;
        return JN_FLOAT;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    *d = strtod(buf, NULL);
    if (buf != small) free(buf);
    return JN_FLOAT;
}

/* --- iteration over arrays and kvlists --------------------------------------------- */

void vit_init(od_dec *d, od_vit *it, const od_val *v) {
    memset(it, 0, sizeof *it);
    it->enc = v->enc;
    it->kvl = v->kind == V_KVL;
    it->depth = v->depth;
    it->direct = v->direct;
    it->keyreq = v->keyreq;
    if (v->enc == OD_PROTO) {
        it->outer = v->cur;
        it->member = v->member;
        it->values = v->direct ? v->list : d->t->num[it->kvl ? N_KVLIST_VALUES : N_ARRAY_VALUES];
    } else if (v->jp) {
        jpos list = {v->jp, v->jent, v->jlevel, NULL};
        if (jit_open(d, &it->j, list) < 0) it->j.p = NULL;
    }
}

int vit_next(od_dec *d, od_vit *it, od_str *key, od_val *elem) {
    if (it->enc == OD_PROTO) {
        pbf f;
        for (;;) {
            if (it->in_inner) {
                int r = pbc_next(&it->inner, &f);
                if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf value");
                if (r > 0) {
                    if (f.num != it->values || f.wt != 2) continue;
                    if (it->kvl) return pb_kv(d, f.d, f.n, key, elem) < 0 ? -1 : 1;
                    pbc c;
                    pbc_msg(&c, f.d, f.n);
                    return pb_any(d, c, elem) < 0 ? -1 : 1;
                }
                it->in_inner = 0;
            }
            /* the next ArrayValue / KeyValueList of the AnyValue's final run */
            int r = pbc_next(&it->outer, &f);
            if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf value");
            if (r == 0) return 0;
            if (it->direct) {
                if (f.num == it->values && f.wt == 2) return pb_kv(d, f.d, f.n, key, elem) < 0 ? -1 : 1;
                continue;
            }
            if (f.num == it->member && f.wt == 2) {
                pbc_msg(&it->inner, f.d, f.n);
                it->in_inner = 1;
            }
        }
    }
    jpos v;
    if (!it->j.p) return 0;
    int r = jarr_next(d, &it->j, &v);
    if (r <= 0) return r;
    if (it->kvl)
        return js_kv(d, v, !it->keyreq, it->direct ? it->depth : it->depth + 3, key, elem, 0) < 0 ? -1 : 1;
    return js_any(d, v, it->depth + 2, elem, 0) < 0 ? -1 : 1;
}

/* --- orjson.dumps --------------------------------------------------------------- */

int od_is_str(const od_val *v) { return v->kind == V_STR || v->kind == V_B64; }

od_str od_val_text(od_dec *d, const od_val *v) {
    if (v->kind == V_STR) return od_str_plain(v->s, &d->scratch);
    od_str out = {(const uint8_t *)"", 0, 0};
    size_t cap = (v->s.n + 2) / 3 * 4;
    uint8_t *p = arena_alloc(&d->scratch, cap ? cap : 1);
    if (!p) return out;
    odb w = {p, 0, cap, 0};
    od_base64(&w, v->s.p, v->s.n);
    out.p = p;
    out.n = w.n;
    return out;
}

typedef struct {
    od_str key; /* plain */
    uint64_t hash;
    od_val val;
    int last; /* index of the last entry with this key (for the first one), -1: a repeat */
} kv_entry;

static int dump_dict(od_dec *d, odb *w, const od_val *v) {
    od_vit it;
    vit_init(d, &it, v);
    size_t n = 0, cap = 0;
    kv_entry *e = NULL;
    int rc = 0;
    for (;;) {
        od_str key;
        od_val val;
        int r = vit_next(d, &it, &key, &val);
        if (r < 0) {
            rc = -1;
            goto done;
        }
        if (r == 0) break;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 8;
            kv_entry *p = realloc(e, c * sizeof *p);
            if (!p) {
                rc = od_oom(d);
                goto done;
            }
            e = p;
            cap = c;
        }
        e[n].key = od_str_plain(key, &d->scratch);
        e[n].hash = od_hash(e[n].key.p, e[n].key.n);
        e[n].val = val;
        e[n].last = (int)n;
        n++;
    }
    /* Python dict semantics: the first position of a key, the value of its last entry */
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (e[j].last >= 0 && e[j].hash == e[i].hash && e[j].key.n == e[i].key.n &&
                    !memcmp(e[j].key.p, e[i].key.p, e[i].key.n)) {
                    e[j].last = (int)i;
                    e[i].last = -1;
                    break;
                }
    } else {
        size_t size = 32;
        while (size < 2 * n) size *= 2;
        int32_t *tab = calloc(size, sizeof *tab);
        if (!tab) {
            rc = od_oom(d);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            size_t h = (size_t)e[i].hash & (size - 1);
            for (;; h = (h + 1) & (size - 1)) {
                int32_t k = tab[h];
                if (!k) {
                    tab[h] = (int32_t)i + 1;
                    break;
                }
                kv_entry *f = &e[k - 1];
                if (f->hash == e[i].hash && f->key.n == e[i].key.n && !memcmp(f->key.p, e[i].key.p, f->key.n)) {
                    f->last = (int)i;
                    e[i].last = -1;
                    break;
                }
            }
        }
        free(tab);
    }
    odb_putc(w, '{');
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (e[i].last < 0) continue;
        if (!first) odb_putc(w, ',');
        first = 0;
        jw_raw_string(w, e[i].key.p, e[i].key.n);
        odb_putc(w, ':');
        if (od_dump(d, w, &e[e[i].last].val) < 0) {
            rc = -1;
            goto done;
        }
    }
    odb_putc(w, '}');
done:
    free(e);
    return rc;
}

int od_dump(od_dec *d, odb *w, const od_val *v) {
    switch (v->kind) {
    case V_NONE: odb_put(w, "null", 4); return 0;
    case V_BOOL: odb_puts(w, v->b ? "true" : "false"); return 0;
    case V_INT: jw_int(w, v->i); return 0;
    case V_UINT: jw_uint(w, v->u); return 0;
    case V_F64: jw_double(w, v->d); return 0;
    case V_STR: jw_string(w, v->s); return 0;
    case V_B64: jw_base64_string(w, v->s.p, v->s.n); return 0;
    case V_ARR: {
        od_vit it;
        vit_init(d, &it, v);
        odb_putc(w, '[');
        for (int first = 1;; first = 0) {
            od_str key;
            od_val e;
            int r = vit_next(d, &it, &key, &e);
            if (r < 0) return -1;
            if (r == 0) break;
            if (!first) odb_putc(w, ',');
            if (od_dump(d, w, &e) < 0) return -1;
        }
        odb_putc(w, ']');
        return 0;
    }
    case V_KVL: return dump_dict(d, w, v);
    }
    return 0;
}

/* --- conversions (mapping.py) ----------------------------------------------------- */

static inline int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static od_str strip(od_str s) {
    while (s.n && is_space(s.p[0])) s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1])) s.n--;
    return s;
}

/* _INT_TEXT: [+-]?[0-9]+ */
static int int_text(od_str s) {
    size_t i = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) i++;
    if (i == s.n) return 0;
    for (; i < s.n; i++)
        if (s.p[i] < '0' || s.p[i] > '9') return 0;
    return 1;
}

/* _NUMBER_TEXT: [+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)? */
static int number_text(od_str s) {
    size_t i = 0, digits = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) i++;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, digits++;
    if (i < s.n && s.p[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, frac++;
        if (!digits && !frac) return 0;
    } else if (!digits) {
        return 0;
    }
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) i++;
        size_t ed = 0;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, ed++;
        if (!ed) return 0;
    }
    return i == s.n;
}

/* integer text within [-limit, limit): 1 with *out, 0 outside */
static int int_in_range(od_str s, int64_t limit, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (s.p[0] == '+' || s.p[0] == '-') neg = s.p[0] == '-', i++;
    uint64_t v = 0;
    for (; i < s.n; i++) {
        unsigned dg = (unsigned)(s.p[i] - '0');
        if (v > ((uint64_t)1 << 63) / 10 + 1) return 0; /* far beyond every limit */
        v = v * 10 + dg;
    }
    if (neg) {
        if (v > (uint64_t)limit) return 0;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v >= (uint64_t)limit) return 0;
        *out = (int64_t)v;
    }
    return 1;
}

static double text_double(od_str s) {
    char small[80];
    char *buf = s.n < sizeof small ? small : malloc(s.n + 1);
    if (!buf) return NAN;
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    double d = strtod(buf, NULL);
    if (buf != small) free(buf);
    return d;
}

static const int64_t POW10[19] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                                  1000000000, 10000000000, 100000000000, 1000000000000,
                                  10000000000000, 100000000000000, 1000000000000000,
                                  10000000000000000, 100000000000000000, 1000000000000000000};

/* decimal text -> the unscaled value of numeric(18, digits), rounded half to even from the
 * exact decimal; 0 (SKIP) with 9 or more integer digits (precision - digits) */
static int decimal_text(od_str s, int digits, int64_t *out) {
    int intdigits = 18 - digits;
    size_t i = 0;
    int neg = 0;
    if (s.p[i] == '+' || s.p[i] == '-') neg = s.p[i] == '-', i++;
    size_t ib = i;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
    size_t ie = i, fb = i, fe = i;
    if (i < s.n && s.p[i] == '.') {
        fb = ++i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
        fe = i;
    }
    long long exp = 0;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        int eneg = 0;
        if (s.p[i] == '+' || s.p[i] == '-') eneg = s.p[i] == '-', i++;
        for (; i < s.n; i++) {
            if (exp < 1000000000000LL) exp = exp * 10 + (s.p[i] - '0');
        }
        if (eneg) exp = -exp;
    }
    /* the coefficient's digits: integer then fraction digits; value = C x 10^(exp - nfrac) */
    size_t nint = ie - ib, nfrac = fe - fb, nd = nint + nfrac;
#define DIGIT(k) ((k) < nint ? s.p[ib + (k)] : s.p[fb + (k) - nint])
    size_t lead = 0;
    while (lead < nd && DIGIT(lead) == '0') lead++;
    if (lead == nd) {
        *out = 0;
        return 1;
    }
    long long e10 = exp - (long long)nfrac; /* exponent of the last digit */
    /* adjusted(): exponent of the leading digit */
    long long adjusted = e10 + (long long)(nd - lead) - 1;
    if (adjusted >= intdigits) return 0;
    /* unscaled = round(C x 10^(e10 + digits)) */
    long long shift = e10 + digits;
    uint64_t v = 0;
    if (shift >= 0) {
        for (size_t k = lead; k < nd; k++) v = v * 10 + (uint64_t)(DIGIT(k) - '0');
        v *= (uint64_t)POW10[shift]; /* shift <= 17: the value has < intdigits integer digits */
    } else {
        /* keep the digits above 10^-digits, round on the rest */
        long long drop = -shift; /* digits dropped at the end */
        long long keep = (long long)(nd - lead) - drop;
        for (long long k = 0; k < keep; k++) v = v * 10 + (uint64_t)(DIGIT(lead + (size_t)k) - '0');
        int first = 0, rest = 0;
        for (long long k = keep > 0 ? keep : 0; k < (long long)(nd - lead); k++) {
            int dg = DIGIT(lead + (size_t)k) - '0';
            if (k == keep)
                first = dg;
            else if (dg)
                rest = 1;
        }
        if (keep < 0) first = 0, rest = 1; /* (every digit below half a unit) */
        if (first > 5 || (first == 5 && (rest || (v & 1)))) v++;
    }
#undef DIGIT
    if (v >= (uint64_t)POW10[18]) return 0; /* abs(number) < 10^(precision - digits) */
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

/* a double -> numeric(18, digits), rounded half to even from its exact binary value
 * (glibc's printf rounds exactly, in the current rounding mode: to nearest, ties even) */
static int decimal_double(double x, int digits, int64_t *out) {
    if (!isfinite(x)) return 0;
    if (fabs(x) >= (double)POW10[18 - digits]) return 0;
    char t[64];
    snprintf(t, sizeof t, "%.*f", digits, x);
    int neg = t[0] == '-';
    uint64_t v = 0;
    for (const char *p = t + neg; *p; p++)
        if (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p - '0');
    if (v >= (uint64_t)POW10[18]) return 0;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

static void slot_text(od_slot *slot, odb *text, size_t at) {
    slot->present = 1;
    slot->state = S_TEXT;
    slot->off = at;
    slot->len = text->n - at;
}

int od_convert(od_dec *d, const od_rule *r, const od_val *v, od_slot *slot, odb *text) {
    memset(slot, 0, sizeof *slot);
    switch (r->kind) {
    case R_TEXT: {
        size_t at = text->n;
        switch (v->kind) {
        case V_STR: {
            od_str s = od_str_plain(v->s, &d->scratch);
            odb_put(text, s.p, s.n);
            break;
        }
        case V_B64: od_base64(text, v->s.p, v->s.n); break;
        case V_ARR: {
            od_vit it;
            vit_init(d, &it, v);
            for (int first = 1;; first = 0) {
                od_str key;
                od_val e;
                int rr = vit_next(d, &it, &key, &e);
                if (rr < 0) return -1;
                if (rr == 0) break;
                if (!first) odb_putc(text, ',');
                if (e.kind == V_STR) {
                    od_str s = od_str_plain(e.s, &d->scratch);
                    odb_put(text, s.p, s.n);
                } else if (e.kind == V_B64) {
                    od_base64(text, e.s.p, e.s.n);
                } else if (od_dump(d, text, &e) < 0) {
                    return -1;
                }
            }
            break;
        }
        case V_F64:
            if (!isfinite(v->d)) return 0;
            /* fall through */
        case V_BOOL:
        case V_INT:
        case V_UINT:
            od_dump(d, text, v);
            break;
        default: return 0; /* None, kvlists */
        }
        slot_text(slot, text, at);
        return 1;
    }
    case R_JSON: {
        size_t at = text->n;
        if (od_is_str(v)) {
            od_str s = od_val_text(d, v);
            if (od_json_valid(s.p, s.n))
                odb_put(text, s.p, s.n);
            else
                jw_raw_string(text, s.p, s.n);
        } else if (od_dump(d, text, v) < 0) {
            return -1;
        }
        slot_text(slot, text, at);
        return 1;
    }
    case R_INTEGER: {
        int64_t out;
        switch (v->kind) {
        case V_F64:
            if (!isfinite(v->d) || v->d != trunc(v->d)) return 0;
            if (!(v->d >= -(double)r->limit && v->d < (double)r->limit)) return 0;
            out = (int64_t)v->d;
            break;
        case V_STR:
        case V_B64: {
            od_str s = strip(od_val_text(d, v));
            if (!int_text(s) || !int_in_range(s, r->limit, &out)) return 0;
            break;
        }
        case V_INT:
            if (v->i < -r->limit || v->i >= r->limit) return 0;
            out = v->i;
            break;
        default: return 0; /* bool, None, uint64 beyond every limit, lists, kvlists */
        }
        slot->present = 1;
        slot->state = S_INT;
        slot->i = out;
        return 1;
    }
    case R_NUMBER: {
        double x;
        switch (v->kind) {
        case V_STR:
        case V_B64: {
            od_str s = strip(od_val_text(d, v));
            if (!number_text(s)) return 0;
            x = text_double(s);
            break;
        }
        case V_INT: x = (double)v->i; break;
        case V_UINT: x = (double)v->u; break;
        case V_F64: x = v->d; break;
        default: return 0;
        }
        if (r->scale != 1.0) x *= r->scale;
        if (!isfinite(x)) return 0;
        slot->present = 1;
        slot->state = S_F64;
        slot->d = x;
        return 1;
    }
    case R_DECIMAL: {
        int64_t out;
        int digits = r->digits;
        switch (v->kind) {
        case V_F64:
            if (!decimal_double(v->d, digits, &out)) return 0;
            break;
        case V_INT: {
            uint64_t mag = v->i < 0 ? (uint64_t)0 - (uint64_t)v->i : (uint64_t)v->i;
            if (mag >= (uint64_t)POW10[18 - digits]) return 0;
            out = v->i * POW10[digits];
            break;
        }
        case V_STR:
        case V_B64: {
            od_str s = strip(od_val_text(d, v));
            if (!number_text(s) || !decimal_text(s, digits, &out)) return 0;
            break;
        }
        default: return 0; /* bool, None, uint64 (>= 2^63), lists, kvlists */
        }
        slot->present = 1;
        slot->state = S_INT;
        slot->i = out;
        return 1;
    }
    }
    return 0;
}
