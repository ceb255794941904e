/* OTLP protobuf: a validator that accepts exactly what upb (the opentelemetry-proto
 * classes' parser) accepts, signal sniffing as sniff.py does it, and the walk of
 * walk.py over the raw bytes (proto_access.py's values).
 *
 * Merging follows protobuf: a singular field's last occurrence wins, the occurrences of
 * a singular message field merge (their concatenation is what is read), a oneof keeps
 * its last member set (a message member: the occurrences since the oneof last switched
 * to it), repeated fields accumulate, packed or not. */
#include <math.h>
#include <stdio.h>

#include "od_walk.h"

/* --- wire format ------------------------------------------------------------------- */

static int read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out, int maxlen) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < maxlen; i++) {
        if (p >= end) return -1;
        uint8_t c = *p++;
        if (i < 9 || (i == 9 && c <= 1))
            v |= (uint64_t)(c & 0x7f) << (7 * i);
        else if (i == 9 && c < 0x80)
            v |= (uint64_t)(c & 1) << 63; /* upb drops the bits beyond 64 */
        if (!(c & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline int read_tag(const uint8_t **pp, const uint8_t *end, uint32_t *num, int *wt) {
    uint64_t tag;
    if (*pp < end && **pp < 0x80) { /* (a field number below 16: one byte) */
        tag = *(*pp)++;
    } else if (read_varint(pp, end, &tag, 5) < 0 || tag > 0xffffffffu) {
        return -1;
    }
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    return *num == 0 ? -1 : 0;
}

/* skip a group's contents after its start tag, up to and past its end tag */
static int skip_group(const uint8_t **pp, const uint8_t *end, uint32_t num, int depth);

static int skip_value(const uint8_t **pp, const uint8_t *end, uint32_t num, int wt, int depth) {
    uint64_t v;
    switch (wt) {
    case 0: return read_varint(pp, end, &v, 10);
    case 1:
        if (end - *pp < 8) return -1;
        *pp += 8;
        return 0;
    case 5:
        if (end - *pp < 4) return -1;
        *pp += 4;
        return 0;
    case 2:
        if (read_varint(pp, end, &v, 10) < 0 || v > (uint64_t)(end - *pp)) return -1;
        *pp += v;
        return 0;
    case 3:
        if (depth + 1 > OD_MAX_DEPTH) return -1;
        return skip_group(pp, end, num, depth + 1);
    default: return -1;
    }
}

static int skip_group(const uint8_t **pp, const uint8_t *end, uint32_t num, int depth) {
    for (;;) {
        uint32_t n;
        int wt;
        if (*pp >= end || read_tag(pp, end, &n, &wt) < 0) return -1;
        if (wt == 4) return n == num ? 0 : -1;
        if (skip_value(pp, end, n, wt, depth) < 0) return -1;
    }
}

static inline int read_field(const uint8_t **pp, const uint8_t *end, pbf *f) {
    if (read_tag(pp, end, &f->num, &f->wt) < 0) return -1;
    const uint8_t *p = *pp;
    f->d = NULL;
    f->n = 0;
    f->v = 0;
    switch (f->wt) {
    case 0:
        if (p < end && *p < 0x80)
            f->v = *p++;
        else if (read_varint(&p, end, &f->v, 10) < 0)
            return -1;
        break;
    case 1:
        if (end - p < 8) return -1;
        for (int i = 7; i >= 0; i--) f->v = f->v << 8 | p[i];
        p += 8;
        break;
    case 5:
        if (end - p < 4) return -1;
        f->v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
        p += 4;
        break;
    case 2: {
        uint64_t len;
        if (p < end && *p < 0x80)
            len = *p++;
        else if (read_varint(&p, end, &len, 10) < 0)
            return -1;
        if (len > (uint64_t)(end - p)) return -1;
        f->d = p;
        f->n = (size_t)len;
        p += len;
        break;
    }
    case 3:
        if (skip_group(&p, end, f->num, 1) < 0) return -1;
        break;
    default: return -1;
    }
    *pp = p;
    return 1;
}

void pbc_msg(pbc *c, const uint8_t *p, size_t n) {
    c->p = p;
    c->end = p + n;
    c->bp = c->bend = p + n;
    c->filter = 0;
}

void pbc_field(pbc *c, const uint8_t *base, size_t n, uint32_t filter) {
    c->p = c->end = base;
    c->bp = base;
    c->bend = base + n;
    c->filter = filter;
}

int pbc_next(pbc *c, pbf *f) {
    for (;;) {
        if (c->p < c->end) return read_field(&c->p, c->end, f);
        if (!c->filter || c->bp >= c->bend) return 0;
        pbf g;
        if (read_field(&c->bp, c->bend, &g) < 0) return -1;
        if (g.num == c->filter && g.wt == 2) {
            c->p = g.d;
            c->end = g.d + g.n;
        }
    }
}

static int wt_of(int type) {
    switch (type) {
    case PB_DOUBLE:
    case PB_FIXED64:
    case PB_SFIXED64: return 1;
    case PB_FLOAT:
    case PB_FIXED32:
    case PB_SFIXED32: return 5;
    case PB_STRING:
    case PB_BYTES:
    case PB_MESSAGE: return 2;
    case PB_GROUP: return 3;
    default: return 0;
    }
}

/* a scalar's value as Python sees it (int32 fields keep the low 32 bits, as upb) */
static void scalar(int type, uint64_t v, od_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_INT;
    switch (type) {
    case PB_INT32:
    case PB_ENUM:
    case PB_SFIXED32: out->i = (int32_t)(uint32_t)v; break;
    case PB_UINT32:
    case PB_FIXED32: out->i = (uint32_t)v; break;
    case PB_SINT32: {
        uint32_t u = (uint32_t)v;
        out->i = (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
        break;
    }
    case PB_SINT64: out->i = (int64_t)(v >> 1) ^ -(int64_t)(v & 1); break;
    case PB_INT64:
    case PB_SFIXED64: out->i = (int64_t)v; break;
    case PB_UINT64:
    case PB_FIXED64:
        if (v > (uint64_t)INT64_MAX) {
            out->kind = V_UINT;
            out->u = v;
        } else {
            out->i = (int64_t)v;
        }
        break;
    case PB_BOOL:
        out->kind = V_BOOL;
        out->b = v != 0;
        break;
    case PB_DOUBLE:
        out->kind = V_F64;
        memcpy(&out->d, &v, 8);
        break;
    case PB_FLOAT: {
        uint32_t u = (uint32_t)v;
        float fl;
        memcpy(&fl, &u, 4);
        out->kind = V_F64;
        out->d = fl;
        break;
    }
    }
}

/* --- validation: what upb's parser accepts -------------------------------------------- */

typedef struct {
    const od_tables *t;
    char *err;
    size_t errlen;
    const uint8_t *base;
} vctx;

static int vfail(vctx *v, const uint8_t *at, const char *what) {
    snprintf(v->err, v->errlen, "%s at byte %zu", what, (size_t)(at - v->base));
    return -1;
}

static int check_msg(vctx *v, int msg, const uint8_t *p, const uint8_t *end, int depth,
                     uint32_t group, const uint8_t **after);

static int check_packed(vctx *v, int type, const uint8_t *p, size_t n) {
    int wt = wt_of(type);
    if (wt == 1) return n % 8 ? vfail(v, p, "packed field length not a multiple of 8") : 0;
    if (wt == 5) return n % 4 ? vfail(v, p, "packed field length not a multiple of 4") : 0;
    const uint8_t *q = p, *end = p + n;
    uint64_t x;
    while (q < end)
        if (read_varint(&q, end, &x, 10) < 0) return vfail(v, q, "truncated varint in a packed field");
    return 0;
}

static int check_msg(vctx *v, int msg, const uint8_t *p, const uint8_t *end, int depth,
                     uint32_t group, const uint8_t **after) {
    const od_pbmsg *m = msg >= 0 ? &v->t->pb[msg] : NULL;
    while (p < end) {
        const uint8_t *at = p;
        uint32_t num;
        int wt;
        if (read_tag(&p, end, &num, &wt) < 0) return vfail(v, at, "invalid tag");
        if (wt == 4) {
            if (group && num == group) {
                *after = p;
                return 0;
            }
            return vfail(v, at, "unexpected end-group tag");
        }
        const od_pbfield *f = NULL;
        int check = CHECK_NONE;
        if (m && wt == 2) {
            if (num < 32) {
                check = m->check[num];
                if (check) f = &m->fields[m->by_number[num]];
            } else if ((f = od_pb_field(m, num)) != NULL) {
                int want = wt_of(f->type);
                check = f->type == PB_MESSAGE ? CHECK_MESSAGE : f->type == PB_STRING ? CHECK_STRING
                        : f->type == PB_BYTES ? CHECK_BYTES : (f->repeated && want != 3) ? CHECK_PACKED
                                                                                       : CHECK_NONE;
            }
        }
        if (check) {
            uint64_t len;
            if (p < end && *p < 0x80)
                len = *p++;
            else if (read_varint(&p, end, &len, 10) < 0)
                return vfail(v, at, "truncated length");
            if (len > (uint64_t)(end - p))
                return vfail(v, at, "length beyond the end of the message (truncated?)");
            const uint8_t *d = p;
            p += len;
            if (check == CHECK_MESSAGE) {
                if (depth + 1 > OD_MAX_DEPTH) return vfail(v, at, "nested deeper than 100 messages");
                if (check_msg(v, f->msg, d, d + len, depth + 1, 0, NULL) < 0) return -1;
            } else if (check == CHECK_STRING) {
                if (!od_utf8_valid(d, (size_t)len)) return vfail(v, d, "invalid UTF-8 in a string field");
            } else if (check == CHECK_PACKED) {
                if (check_packed(v, f->type, d, (size_t)len) < 0) return -1;
            }
            continue;
        }
        /* a known scalar with its wire type, or an unknown field (or a mismatched one) */
        if (wt == 3) {
            if (depth + 1 > OD_MAX_DEPTH) return vfail(v, at, "nested deeper than 100 messages");
            const uint8_t *q;
            if (check_msg(v, -1, p, end, depth + 1, num, &q) < 0) return -1;
            p = q;
            continue;
        }
        if (skip_value(&p, end, num, wt, depth) < 0) return vfail(v, at, "truncated or invalid field");
    }
    if (group) return vfail(v, p, "unterminated group");
    return 0;
}

/* --- values --------------------------------------------------------------------------- */

static int any_case_msg(uint32_t num, const od_tables *t) {
    return num == t->num[N_AV_ARRAY] || num == t->num[N_AV_KVLIST];
}

int pb_any(od_dec *d, pbc c, od_val *out) {
    const od_tables *t = d->t;
    const od_pbmsg *m = &t->pb[t->nested_msg[N_AV_STRING]];
    memset(out, 0, sizeof *out);
    out->kind = V_NONE;
    out->enc = OD_PROTO;
    uint32_t which = 0;
    pbf last = {0};
    pbc run = c;
    for (;;) {
        pbc before = c;
        pbf f;
        int r = pbc_next(&c, &f);
        if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf AnyValue");
        if (r == 0) break;
        const od_pbfield *pf = od_pb_field(m, f.num);
        if (!pf || pf->oneof < 0 || f.wt != wt_of(pf->type)) continue; /* unknown */
        if (f.num != which) {
            which = f.num;
            run = before;
        }
        last = f;
    }
    if (!which) return 0;
    const od_pbfield *pf = od_pb_field(m, which);
    if (which == t->num[N_AV_STRING]) {
        out->kind = V_STR;
        out->s.p = last.d;
        out->s.n = last.n;
    } else if (which == t->num[N_AV_BYTES]) {
        out->kind = V_B64;
        out->s.p = last.d;
        out->s.n = last.n;
    } else if (any_case_msg(which, t)) {
        out->kind = which == t->num[N_AV_ARRAY] ? V_ARR : V_KVL;
        out->cur = run;
        out->member = which;
    } else if (which == t->num[N_AV_BOOL] || which == t->num[N_AV_INT] || which == t->num[N_AV_DOUBLE]) {
        scalar(pf->type, last.v, out);
        out->enc = OD_PROTO;
    }
    /* (string_value_strindex and other members: None, as proto_access.any_value) */
    return 0;
}

/* The usual AnyValue: one field. 1 decoded, 0 (the general path) */
static int any_fast(od_dec *d, const uint8_t *p, size_t n, od_val *out) {
    const od_tables *t = d->t;
    const uint8_t *q = p, *end = p + n;
    pbf f;
    if (n == 0 || read_field(&q, end, &f) < 0 || q != end) return 0;
    memset(out, 0, sizeof *out);
    out->enc = OD_PROTO;
    if (f.num == t->num[N_AV_STRING] && f.wt == 2) {
        out->kind = V_STR;
        out->s.p = f.d;
        out->s.n = f.n;
        return 1;
    }
    if (f.num == t->num[N_AV_INT] && f.wt == 0) {
        out->kind = V_INT;
        out->i = (int64_t)f.v;
        return 1;
    }
    if (f.num == t->num[N_AV_DOUBLE] && f.wt == 1) {
        out->kind = V_F64;
        memcpy(&out->d, &f.v, 8);
        return 1;
    }
    if (f.num == t->num[N_AV_BOOL] && f.wt == 0) {
        out->kind = V_BOOL;
        out->b = f.v != 0;
        return 1;
    }
    return 0;
}

int pb_kv(od_dec *d, const uint8_t *p, size_t n, od_str *key, od_val *val) {
    /* the usual KeyValue: key, then one value */
    uint32_t kt = d->t->num[N_KV_KEY] << 3 | 2, vt = d->t->num[N_KV_VALUE] << 3 | 2;
    if (n >= 4 && kt < 0x80 && vt < 0x80 && p[0] == kt && p[1] < 0x80 && (size_t)p[1] + 4 <= n) {
        const uint8_t *v = p + 2 + p[1];
        if (v[0] == vt && v[1] < 0x80 && v + 2 + v[1] == p + n && any_fast(d, v + 2, v[1], val)) {
            key->p = p + 2;
            key->n = p[1];
            key->esc = 0;
            return 0;
        }
    }
    pbc c;
    pbc_msg(&c, p, n);
    pbf f, value = {0};
    int r, values = 0;
    key->p = (const uint8_t *)"";
    key->n = 0;
    key->esc = 0;
    uint32_t knum = d->t->num[N_KV_KEY], vnum = d->t->num[N_KV_VALUE];
    while ((r = pbc_next(&c, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == knum) key->p = f.d, key->n = f.n;
        else if (f.num == vnum) value = f, values++;
    }
    if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf KeyValue");
    if (values <= 1)
        pbc_msg(&c, value.d ? value.d : p, value.n); /* (the usual case: one value) */
    else
        pbc_field(&c, p, n, vnum); /* occurrences merge */
    return pb_any(d, c, val);
}

/* the last occurrence of field `num` with wire type wt (1 found, 0 absent) */
static int last_field(pbc c, uint32_t num, int wt, pbf *out) {
    pbf f;
    int found = 0;
    while (pbc_next(&c, &f) > 0)
        if (f.num == num && f.wt == wt) *out = f, found = 1;
    return found;
}

static int last_scalar(const od_tables *t, int nested, pbc c, od_val *out) {
    const od_pbmsg *m = &t->pb[t->nested_msg[nested]];
    const od_pbfield *pf = od_pb_field(m, t->num[nested]);
    pbf f;
    scalar(pf->type, 0, out);
    if (last_field(c, t->num[nested], wt_of(pf->type), &f)) scalar(pf->type, f.v, out);
    return 0;
}

static od_str last_string(const od_tables *t, int nested, pbc c) {
    pbf f;
    od_str s = {(const uint8_t *)"", 0, 0};
    if (last_field(c, t->num[nested], 2, &f)) s.p = f.d, s.n = f.n;
    return s;
}

static int has_field(pbc c, uint32_t num, int wt) {
    pbf f;
    while (pbc_next(&c, &f) > 0)
        if (f.num == num && f.wt == wt) return 1;
    return 0;
}

/* a record's KeyValue list as a value (dict(attrs(...)) when dumped) */
static void kv_list(od_val *v, const uint8_t *p, size_t n, uint32_t field) {
    memset(v, 0, sizeof *v);
    v->kind = V_KVL;
    v->enc = OD_PROTO;
    v->direct = 1;
    v->list = field;
    pbc_msg(&v->cur, p, n);
}

/* --- sniffing (sniff.py) ---------------------------------------------------------------- */

static int first_record(const od_signal *s, const uint8_t *p, size_t n, pbf *rec) {
    pbc a, b, c;
    pbf r, sc;
    pbc_msg(&a, p, n);
    while (pbc_next(&a, &r) > 0) {
        if (r.num != s->res_num || r.wt != 2) continue;
        pbc_msg(&b, r.d, r.n);
        while (pbc_next(&b, &sc) > 0) {
            if (sc.num != s->scope_num || sc.wt != 2) continue;
            pbc_msg(&c, sc.d, sc.n);
            while (pbc_next(&c, rec) > 0)
                if (rec->num == s->rec_num && rec->wt == 2) return 1;
        }
    }
    return 0;
}

static int well_formed(const od_tables *t, int sig, const pbf *rec) {
    pbc c;
    pbc_msg(&c, rec->d, rec->n);
    pbf f;
    if (sig == SIG_TRACES) {
        size_t tl = last_field(c, t->num[N_SPAN_TRACE], 2, &f) ? f.n : 0;
        size_t sl = last_field(c, t->num[N_SPAN_SPAN], 2, &f) ? f.n : 0;
        return tl == 16 && sl == 8;
    }
    if (sig == SIG_METRICS) {
        size_t nl = last_field(c, t->num[N_M_NAME], 2, &f) ? f.n : 0;
        int data = has_field(c, t->num[N_M_GAUGE], 2) || has_field(c, t->num[N_M_SUM], 2) ||
                   has_field(c, t->num[N_M_HIST], 2) || has_field(c, t->num[N_M_EXP], 2) ||
                   has_field(c, t->num[N_M_SUMMARY], 2);
        return nl > 0 && data;
    }
    uint64_t time = last_field(c, t->num[N_LR_TIME], 1, &f) ? f.v : 0;
    uint64_t observed = last_field(c, t->num[N_LR_OBSERVED], 1, &f) ? f.v : 0;
    return time || observed || has_field(c, t->num[N_LR_BODY], 2);
}

int pb_prepare(const od_tables *t, const uint8_t *data, size_t len, od_msg *m, od_error *err) {
    char detail[900] = "";
    size_t dl = 0;
    int errors = 0, empty = 0;
    for (int sig = 0; sig < 3; sig++) {
        const od_signal *s = &t->sig[sig];
        char why[200];
        vctx v = {t, why, sizeof why, data};
        const char *name = strrchr(t->pb[s->root].name, '.');
        name = name ? name + 1 : t->pb[s->root].name;
        if (check_msg(&v, s->root, data, data + len, 0, 0, NULL) < 0) {
            int k = snprintf(detail + dl, sizeof detail - dl, "%s%s: %s", errors ? "; " : "", name, why);
            if (k > 0) dl = dl + (size_t)k < sizeof detail ? dl + (size_t)k : sizeof detail - 1;
            errors++;
            continue;
        }
        pbf rec;
        if (!first_record(s, data, len, &rec)) {
            empty = 1;
            continue;
        }
        if (well_formed(t, sig, &rec)) {
            m->signal = sig;
            return sig;
        }
    }
    if (empty && !errors) return OD_NONE;
    snprintf(err->reason, sizeof err->reason,
             "not a decodable OTLP protobuf message (%zu bytes; truncated or corrupt?): %s", len,
             errors ? detail
                    : "no span with 16-byte trace id and 8-byte span id, no metric with a name and "
                      "data, no log record with a time or body");
    err->field[0] = err->path[0] = 0;
    err->row = -1;
    return OD_ERROR;
}

/* --- records ----------------------------------------------------------------------------- */

/* walk.py's place(): one flat value into its column, or kept for the attributes */
typedef struct {
    const od_field *f;
    od_val v;
} late_t;

static int64_t floor_div1000(const od_val *v) {
    if (v->kind == V_UINT) return (int64_t)(v->u / 1000);
    int64_t q = v->i / 1000;
    if (v->i % 1000 != 0 && v->i < 0) q--;
    return q;
}

static int truthy(const od_val *v) {
    switch (v->kind) {
    case V_INT: return v->i != 0;
    case V_UINT: return 1;
    case V_STR: return v->s.n != 0;
    case V_BOOL: return v->b;
    default: return 0;
    }
}

int od_place(od_builder *b, const od_field *f, const od_val *v, late_t *late, int *nlate);

int od_place(od_builder *b, const od_field *f, const od_val *v, late_t *late, int *nlate) {
    if (f->col >= 0) {
        switch (f->to_column) {
        case TC_MICROS: row_set_int(b, f->col, floor_div1000(v)); break;
        case TC_MICROS_OR_NULL:
            if (truthy(v)) row_set_int(b, f->col, floor_div1000(v));
            break;
        case TC_SPAN_KIND: {
            const char *k = v->kind == V_INT ? od_map_text(&b->t->kinds, v->i) : NULL;
            if (k) row_set_text(b, f->col, (const uint8_t *)k, strlen(k));
            break;
        }
        case TC_OR_NULL:
            if (!truthy(v)) break;
            /* fall through */
        default:
            if (v->kind == V_STR) {
                od_str s = od_str_plain(v->s, &b->dec.scratch);
                row_set_text(b, f->col, s.p, s.n);
            } else if (v->kind == V_INT) {
                row_set_int(b, f->col, v->i);
            } else if (v->kind == V_UINT) {
                char t[32];
                snprintf(t, sizeof t, "%llu", (unsigned long long)v->u);
                row_set_unfit(b, f->col, t);
            }
        }
    } else if (f->extra && truthy(v) && *nlate < 16) {
        late[*nlate].f = f;
        late[*nlate].v = *v;
        (*nlate)++;
    }
    return 0;
}

static void put_late(od_builder *b, late_t *late, int n) {
    for (int i = 0; i < n; i++) {
        extra_key(&b->extras, late[i].f->extra);
        od_dump(&b->dec, &b->extras, &late[i].v);
    }
}

/* One pass over a record: the last value of each flat field, and where the fields listed in
 * `lists` occur (into b->ls[i]); then the flat fields in the table's order, ids checked
 * (proto_access.reader). */
static int place_fields(od_builder *b, const uint8_t *p, size_t n, late_t *late, int *nlate,
                        od_val *vals, const uint32_t *lists, int nlists) {
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    pbf last[16];
    uint8_t have[16] = {0};
    for (int i = 0; i < nlists; i++) b->ls[i].n = 0;
    pbc c;
    pbc_msg(&c, p, n);
    pbf f;
    int r;
    while ((r = pbc_next(&c, &f)) > 0) {
        if (f.wt == 2) {
            int k = 0;
            while (k < nlists && lists[k] != f.num) k++;
            if (k < nlists) {
                spans_push(&b->ls[k], f.d, f.n);
                continue;
            }
        }
        int i = f.num < 64 ? b->fidx[f.num] : -1;
        if (i >= 0 && f.wt == wt_of(s->fields[i].pbtype)) last[i] = f, have[i] = 1;
    }
    if (r < 0) return od_fail(d, NULL, 1, "malformed protobuf record");
    for (int i = 0; i < nlists; i++)
        if (b->ls[i].failed) return od_oom(d);
    for (int i = 0; i < s->nfields && i < 16; i++) {
        const od_field *fd = &s->fields[i];
        od_val v;
        memset(&v, 0, sizeof v);
        char hex[40];
        if (fd->kind == K_ID16 || fd->kind == K_ID8) {
            size_t size = fd->kind == K_ID16 ? 16 : 8;
            const uint8_t *id = have[i] ? last[i].d : (const uint8_t *)"";
            size_t idn = have[i] ? last[i].n : 0;
            int zero = 1;
            for (size_t k = 0; k < idn; k++)
                if (id[k]) zero = 0;
            if (!idn && !fd->required) {
                v.kind = V_NONE;
            } else if (idn != size || (fd->required && zero)) {
                odb shown = {0};
                if (idn)
                    od_hex(&shown, id, idn > 64 ? 64 : idn);
                else
                    odb_puts(&shown, "empty");
                odb_putc(&shown, 0);
                od_fail(d, fd->json, 1, "%s is %zu bytes (%s%s); expected %zu bytes, not all zero",
                        fd->json, idn, shown.failed ? "?" : (char *)shown.p, idn > 64 ? "..." : "",
                        size);
                odb_free(&shown);
                return -1;
            } else {
                odb w = {(uint8_t *)hex, 0, sizeof hex, 0};
                od_hex(&w, id, idn);
                v.kind = V_STR;
                v.s.p = (const uint8_t *)hex;
                v.s.n = w.n;
            }
        } else if (fd->kind == K_TEXT) {
            v.kind = V_STR;
            v.s.p = have[i] ? last[i].d : (const uint8_t *)"";
            v.s.n = have[i] ? last[i].n : 0;
        } else {
            scalar(fd->pbtype, have[i] ? last[i].v : 0, &v);
        }
        if (vals) vals[i] = v;
        od_place(b, fd, &v, late, nlate);
    }
    return 0;
}

/* the attributes of a record (its KeyValue occurrences), split into columns and extras */
static int split_list(od_builder *b, const od_spans *kvs) {
    od_dec *d = &b->dec;
    for (size_t i = 0; i < kvs->n; i++) {
        od_str key;
        od_val val;
        if (pb_kv(d, kvs->v[i].p, kvs->v[i].n, &key, &val) < 0) return -1;
        if (split_attr(d, b->slot, &b->text, &b->extras, b->held, "", key, &val) < 0) return -1;
    }
    return 0;
}

/* a singular message field from its occurrences: one span, or their merge */
static void merged(pbc *c, const od_spans *occ, const uint8_t *p, size_t n, uint32_t field) {
    if (occ->n == 1)
        pbc_msg(c, occ->v[0].p, occ->v[0].n);
    else if (occ->n == 0)
        pbc_msg(c, p, 0);
    else
        pbc_field(c, p, n, field);
}

static int count_field(const uint8_t *p, size_t n, uint32_t field) {
    pbc c;
    pbc_msg(&c, p, n);
    pbf f;
    int k = 0;
    while (pbc_next(&c, &f) > 0)
        if (f.num == field && f.wt == 2) k++;
    return k;
}

static void dump_kvs(od_dec *d, odb *w, const uint8_t *p, size_t n, uint32_t field) {
    od_val v;
    kv_list(&v, p, n, field);
    od_dump(d, w, &v);
}

/* walk.exception_type over the span's events */
static void exception_type(od_builder *b, const od_spans *events) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    if (b->slot[b->c.error_type].present) return;
    for (size_t i = 0; i < events->n; i++) {
        pbc e;
        pbc_msg(&e, events->v[i].p, events->v[i].n);
        od_str name = last_string(t, N_EV_NAME, e);
        if (!od_str_eq(name, "exception", 9)) continue;
        /* the last exception.type attribute (dict(attributes) keeps the last) */
        pbf kv;
        od_val found;
        int have = 0;
        while (pbc_next(&e, &kv) > 0) {
            if (kv.num != t->num[N_EV_ATTRS] || kv.wt != 2) continue;
            od_str key;
            od_val val;
            if (pb_kv(d, kv.d, kv.n, &key, &val) < 0) return;
            if (od_str_eq(key, "exception.type", 14)) found = val, have = 1;
        }
        if (have && od_is_str(&found)) {
            od_str text = od_val_text(d, &found);
            if (text.n) {
                row_set_text(b, b->c.error_type, text.p, text.n);
                return;
            }
        }
    }
}

static int pb_span(od_builder *b, const uint8_t *p, size_t n, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    late_t late[16];
    int nlate = 0;
    row_begin(b);
    const uint32_t lists[4] = {t->num[N_SPAN_ATTRS], t->num[N_SPAN_STATUS], t->num[N_SPAN_EVENTS],
                               t->num[N_SPAN_LINKS]};
    if (place_fields(b, p, n, late, &nlate, NULL, lists, 4) < 0) return -1;
    if (split_list(b, &b->ls[0]) < 0) return -1;
    /* status (its occurrences merge: the last code, the last message) */
    od_val code;
    scalar(PB_ENUM, 0, &code);
    od_str message = {(const uint8_t *)"", 0, 0};
    for (size_t i = 0; i < b->ls[1].n; i++) {
        pbc st;
        pbc_msg(&st, b->ls[1].v[i].p, b->ls[1].v[i].n);
        pbf f;
        while (pbc_next(&st, &f) > 0) {
            if (f.num == t->num[N_STATUS_CODE] && f.wt == 0) scalar(PB_ENUM, f.v, &code);
            if (f.num == t->num[N_STATUS_MESSAGE] && f.wt == 2) message.p = f.d, message.n = f.n;
        }
    }
    int sc = b->c.status_code;
    if (code.i || !b->slot[sc].present) {
        const char *text = od_map_text(&t->status, code.i);
        if (text)
            row_set_text(b, sc, (const uint8_t *)text, strlen(text));
        else
            row_set_null(b, sc);
    } else if (b->slot[sc].state == S_TEXT) {
        uint8_t *q = b->text.p + b->slot[sc].off;
        for (size_t i = 0; i < b->slot[sc].len; i++)
            if (q[i] >= 'A' && q[i] <= 'Z') q[i] = (uint8_t)(q[i] + 32);
    }
    if (message.n) row_set_text(b, b->c.status_message, message.p, message.n);
    put_late(b, late, nlate);
    /* events */
    const od_spans *events = &b->ls[2];
    if (events->n) {
        extra_key(&b->extras, "events");
        odb_putc(&b->extras, '[');
        for (size_t i = 0; i < events->n; i++) {
            const uint8_t *ep = events->v[i].p;
            size_t en = events->v[i].n;
            if (i) odb_putc(&b->extras, ',');
            pbc e;
            pbc_msg(&e, ep, en);
            od_val time, dropped;
            last_scalar(t, N_EV_TIME, e, &time);
            last_scalar(t, N_EV_DROPPED, e, &dropped);
            odb_puts(&b->extras, "{\"name\":");
            jw_string(&b->extras, last_string(t, N_EV_NAME, e));
            odb_puts(&b->extras, ",\"time_unix_nano\":");
            od_dump(d, &b->extras, &time);
            if (count_field(ep, en, t->num[N_EV_ATTRS])) {
                odb_puts(&b->extras, ",\"attributes\":");
                dump_kvs(d, &b->extras, ep, en, t->num[N_EV_ATTRS]);
            }
            if (dropped.i) {
                odb_puts(&b->extras, ",\"dropped_attributes_count\":");
                od_dump(d, &b->extras, &dropped);
            }
            odb_putc(&b->extras, '}');
        }
        odb_putc(&b->extras, ']');
        exception_type(b, events);
    }
    /* links */
    const od_spans *links = &b->ls[3];
    if (links->n) {
        extra_key(&b->extras, "links");
        odb_putc(&b->extras, '[');
        for (size_t i = 0; i < links->n; i++) {
            const uint8_t *lp = links->v[i].p;
            size_t ln = links->v[i].n;
            if (i) odb_putc(&b->extras, ',');
            pbc l;
            pbc_msg(&l, lp, ln);
            od_str trace = last_string(t, N_LN_TRACE, l), span = last_string(t, N_LN_SPAN, l);
            od_str state = last_string(t, N_LN_STATE, l);
            od_val flags;
            last_scalar(t, N_LN_FLAGS, l, &flags);
            odb_puts(&b->extras, "{\"trace_id\":\"");
            od_hex(&b->extras, trace.p, trace.n);
            odb_puts(&b->extras, "\",\"span_id\":\"");
            od_hex(&b->extras, span.p, span.n);
            odb_putc(&b->extras, '"');
            if (state.n) {
                odb_puts(&b->extras, ",\"trace_state\":");
                jw_string(&b->extras, state);
            }
            if (count_field(lp, ln, t->num[N_LN_ATTRS])) {
                odb_puts(&b->extras, ",\"attributes\":");
                dump_kvs(d, &b->extras, lp, ln, t->num[N_LN_ATTRS]);
            }
            if (flags.i) {
                odb_puts(&b->extras, ",\"flags\":");
                od_dump(d, &b->extras, &flags);
            }
            odb_putc(&b->extras, '}');
        }
        odb_putc(&b->extras, ']');
    }
    return row_finish(b, ctx);
}

/* --- metrics ---------------------------------------------------------------------------- */

static const char *METRIC_TYPES[5] = {"gauge", "sum", "histogram", "exponential_histogram", "summary"};

/* a metric's data kind and its data (from the oneof's final run); 0 when it has none */
static int metric_data(const od_tables *t, const uint8_t *p, size_t n, int *kind, pbc *data) {
    static const int ids[5] = {N_M_GAUGE, N_M_SUM, N_M_HIST, N_M_EXP, N_M_SUMMARY};
    pbc c;
    pbc_msg(&c, p, n);
    uint32_t which = 0;
    const uint8_t *run = p;
    pbf f;
    for (;;) {
        const uint8_t *before = c.p;
        if (pbc_next(&c, &f) <= 0) break;
        if (f.wt != 2) continue;
        for (int k = 0; k < 5; k++)
            if (f.num == t->num[ids[k]]) {
                if (f.num != which) which = f.num, run = before, *kind = k;
                break;
            }
    }
    if (!which) return 0;
    pbc_field(data, run, (size_t)(p + n - run), which);
    return 1;
}

static int pb_metric(od_builder *b, const uint8_t *p, size_t n) {
    const od_tables *t = b->t;
    od_walkstate *w = &b->w;
    od_base *bs = &w->base;
    int kind;
    if (!metric_data(t, p, n, &kind, &w->pdata)) return 0;
    late_t late[16];
    int nlate = 0;
    row_begin(b);
    if (place_fields(b, p, n, late, &nlate, NULL, NULL, 0) < 0) return -1;
    const char *type = METRIC_TYPES[kind];
    od_val temporality = {0}, mono = {0};
    temporality.kind = V_INT;
    if (kind == 1) {
        last_scalar(t, N_S_MONOTONIC, w->pdata, &mono);
        type = mono.b ? "counter" : "updowncounter";
        last_scalar(t, N_S_TEMPORALITY, w->pdata, &temporality);
    } else if (kind == 2) {
        last_scalar(t, N_H_TEMPORALITY, w->pdata, &temporality);
    } else if (kind == 3) {
        last_scalar(t, N_E_TEMPORALITY, w->pdata, &temporality);
    }
    row_set_text(b, b->c.metric_type, (const uint8_t *)type, strlen(type));
    const char *tt = od_map_text(&t->temporality, temporality.i);
    if (tt)
        row_set_text(b, b->c.temporality, (const uint8_t *)tt, strlen(tt));
    else
        row_set_null(b, b->c.temporality);
    /* the base of every point: its slots, and the extras (late fields, metadata) */
    base_reset(bs);
    bs->kind = kind;
    odb_put(&bs->text, b->text.p, b->text.n);
    memcpy(bs->slot, b->slot, sizeof bs->slot);
    odb saved = b->extras;
    b->extras = bs->extra;
    put_late(b, late, nlate);
    if (count_field(p, n, t->num[N_M_METADATA])) {
        extra_key(&b->extras, "metric.metadata");
        dump_kvs(&b->dec, &b->extras, p, n, t->num[N_M_METADATA]);
    }
    bs->extra = b->extras;
    b->extras = saved;
    if (bs->text.failed || bs->extra.failed) return od_oom(&b->dec);
    return 1;
}

static void put_f64_list(od_builder *b, odb *w, const uint8_t *p, size_t n, uint32_t field) {
    /* a repeated double: packed runs and single values, in order */
    pbc c;
    pbc_msg(&c, p, n);
    pbf f;
    int first = 1;
    odb_putc(w, '[');
    while (pbc_next(&c, &f) > 0) {
        if (f.num != field) continue;
        if (f.wt == 1) {
            double x;
            memcpy(&x, &f.v, 8);
            if (!first) odb_putc(w, ',');
            first = 0;
            jw_double(w, x);
        } else if (f.wt == 2) {
            for (size_t i = 0; i + 8 <= f.n; i += 8) {
                uint64_t u = 0;
                for (int k = 7; k >= 0; k--) u = u << 8 | f.d[i + (size_t)k];
                double x;
                memcpy(&x, &u, 8);
                if (!first) odb_putc(w, ',');
                first = 0;
                jw_double(w, x);
            }
        }
    }
    odb_putc(w, ']');
    (void)b;
}

static void put_int_list(odb *w, const uint8_t *p, size_t n, uint32_t field, int type) {
    pbc c;
    pbc_msg(&c, p, n);
    pbf f;
    int first = 1, wt = wt_of(type);
    odb_putc(w, '[');
    while (pbc_next(&c, &f) > 0) {
        if (f.num != field) continue;
        if (f.wt == wt) {
            od_val v;
            scalar(type, f.v, &v);
            if (!first) odb_putc(w, ',');
            first = 0;
            if (v.kind == V_UINT) jw_uint(w, v.u);
            else jw_int(w, v.i);
        } else if (f.wt == 2) {
            const uint8_t *q = f.d, *end = f.d + f.n;
            while (q < end) {
                uint64_t x = 0;
                if (wt == 1) {
                    if (end - q < 8) break;
                    for (int k = 7; k >= 0; k--) x = x << 8 | q[k];
                    q += 8;
                } else if (read_varint(&q, end, &x, 10) < 0) {
                    break;
                }
                od_val v;
                scalar(type, x, &v);
                if (!first) odb_putc(w, ',');
                first = 0;
                if (v.kind == V_UINT) jw_uint(w, v.u);
                else jw_int(w, v.i);
            }
        }
    }
    odb_putc(w, ']');
}

static int field_type(const od_tables *t, int nested) {
    return od_pb_field(&t->pb[t->nested_msg[nested]], t->num[nested])->type;
}

static void put_exemplars(od_builder *b, const uint8_t *p, size_t n, uint32_t field) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    if (!count_field(p, n, field)) return;
    extra_key(&b->extras, "exemplars");
    odb_putc(&b->extras, '[');
    pbc c;
    pbc_msg(&c, p, n);
    pbf x;
    int first = 1;
    while (pbc_next(&c, &x) > 0) {
        if (x.num != field || x.wt != 2) continue;
        if (!first) odb_putc(&b->extras, ',');
        first = 0;
        pbc e;
        pbc_msg(&e, x.d, x.n);
        od_val time, value;
        last_scalar(t, N_X_TIME, e, &time);
        /* the value oneof: its last member set */
        pbf f;
        value.kind = V_INT;
        value.i = 0;
        pbc ee = e;
        while (pbc_next(&ee, &f) > 0) {
            if (f.num == t->num[N_X_DOUBLE] && f.wt == 1) scalar(PB_DOUBLE, f.v, &value);
            if (f.num == t->num[N_X_INT] && f.wt == 1) scalar(PB_SFIXED64, f.v, &value);
        }
        od_str trace = last_string(t, N_X_TRACE, e), span = last_string(t, N_X_SPAN, e);
        odb_puts(&b->extras, "{\"time_unix_nano\":");
        od_dump(d, &b->extras, &time);
        odb_puts(&b->extras, ",\"value\":");
        od_dump(d, &b->extras, &value);
        if (trace.n) {
            odb_puts(&b->extras, ",\"trace_id\":\"");
            od_hex(&b->extras, trace.p, trace.n);
            odb_putc(&b->extras, '"');
        }
        if (span.n) {
            odb_puts(&b->extras, ",\"span_id\":\"");
            od_hex(&b->extras, span.p, span.n);
            odb_putc(&b->extras, '"');
        }
        if (count_field(x.d, x.n, t->num[N_X_ATTRS])) {
            odb_puts(&b->extras, ",\"attributes\":");
            dump_kvs(d, &b->extras, x.d, x.n, t->num[N_X_ATTRS]);
        }
        odb_putc(&b->extras, '}');
    }
    odb_putc(&b->extras, ']');
}

/* one data point: 0 skipped, else row_finish's result */
static int pb_point(od_builder *b, const uint8_t *p, size_t n, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    od_base *bs = &b->w.base;
    int kind = bs->kind;
    static const int FLAGS[5] = {N_NP_FLAGS, N_NP_FLAGS, N_HP_FLAGS, N_EP_FLAGS, N_SP_FLAGS};
    static const int START[5] = {N_NP_START, N_NP_START, N_HP_START, N_EP_START, N_SP_START};
    static const int TIME[5] = {N_NP_TIME, N_NP_TIME, N_HP_TIME, N_EP_TIME, N_SP_TIME};
    static const int ATTRS[5] = {N_NP_ATTRS, N_NP_ATTRS, N_HP_ATTRS, N_EP_ATTRS, N_SP_ATTRS};
    pbc c;
    pbc_msg(&c, p, n);
    od_val flags, start, time;
    last_scalar(t, FLAGS[kind], c, &flags);
    last_scalar(t, START[kind], c, &start);
    last_scalar(t, TIME[kind], c, &time);
    if (flags.i & 1) return 0;
    row_begin(b);
    memcpy(b->slot, bs->slot, sizeof b->slot);
    odb_put(&b->text, bs->text.p, bs->text.n);
    row_set_int(b, b->c.time, floor_div1000(&time));
    if (start.kind == V_UINT || start.i)
        row_set_int(b, b->c.start_time, floor_div1000(&start));
    else
        row_set_null(b, b->c.start_time);
    double value = 0, lo = 0, hi = 0;
    int has_lo = 0, has_hi = 0;
    pbf f;
    if (kind <= 1) {
        od_val v;
        v.kind = V_INT;
        v.i = 0;
        pbc cc = c;
        while (pbc_next(&cc, &f) > 0) {
            if (f.num == t->num[N_NP_DOUBLE] && f.wt == 1) scalar(PB_DOUBLE, f.v, &v);
            if (f.num == t->num[N_NP_INT] && f.wt == 1) scalar(PB_SFIXED64, f.v, &v);
        }
        value = v.kind == V_F64 ? v.d : (double)v.i;
        row_set_f64(b, b->c.value, value);
    } else {
        int sum_id = kind == 2 ? N_HP_SUM : kind == 3 ? N_EP_SUM : N_SP_SUM;
        int count_id = kind == 2 ? N_HP_COUNT : kind == 3 ? N_EP_COUNT : N_SP_COUNT;
        od_val sum, count;
        last_scalar(t, sum_id, c, &sum);
        value = sum.d;
        row_set_f64(b, b->c.value, value);
        last_scalar(t, count_id, c, &count);
        if (count.kind == V_UINT) {
            char txt[32];
            snprintf(txt, sizeof txt, "%llu", (unsigned long long)count.u);
            row_set_unfit(b, b->c.sample_count, txt);
        } else {
            row_set_int(b, b->c.sample_count, count.i);
        }
        if (kind != 4) {
            int min_id = kind == 2 ? N_HP_MIN : N_EP_MIN, max_id = kind == 2 ? N_HP_MAX : N_EP_MAX;
            if (has_field(c, t->num[min_id], 1)) {
                od_val v;
                last_scalar(t, min_id, c, &v);
                lo = v.d, has_lo = 1;
                row_set_f64(b, b->c.min_value, lo);
            }
            if (has_field(c, t->num[max_id], 1)) {
                od_val v;
                last_scalar(t, max_id, c, &v);
                hi = v.d, has_hi = 1;
                row_set_f64(b, b->c.max_value, hi);
            }
        }
    }
    if (!isfinite(value) || (has_lo && !isfinite(lo)) || (has_hi && !isfinite(hi))) return 0;
    /* buckets */
    if (kind >= 2) {
        odb *w = &b->text;
        size_t at = w->n;
        if (kind == 2) {
            odb_puts(w, "{\"bounds\":");
            put_f64_list(b, w, p, n, t->num[N_HP_BOUNDS]);
            odb_puts(w, ",\"counts\":");
            put_int_list(w, p, n, t->num[N_HP_COUNTS], field_type(t, N_HP_COUNTS));
            odb_putc(w, '}');
        } else if (kind == 3) {
            od_val scale, zc, zt;
            last_scalar(t, N_EP_SCALE, c, &scale);
            last_scalar(t, N_EP_ZERO_COUNT, c, &zc);
            last_scalar(t, N_EP_ZERO_THRESHOLD, c, &zt);
            odb_puts(w, "{\"scale\":");
            od_dump(d, w, &scale);
            odb_puts(w, ",\"zero_count\":");
            od_dump(d, w, &zc);
            odb_puts(w, ",\"zero_threshold\":");
            od_dump(d, w, &zt);
            for (int side = 0; side < 2; side++) {
                int id = side ? N_EP_NEGATIVE : N_EP_POSITIVE;
                pbc bk;
                pbc_field(&bk, p, n, t->num[id]);
                od_val offset;
                last_scalar(t, N_B_OFFSET, bk, &offset);
                odb_puts(w, side ? ",\"negative\":{\"offset\":" : ",\"positive\":{\"offset\":");
                od_dump(d, w, &offset);
                odb_puts(w, ",\"counts\":[");
                /* bucket counts of every occurrence of the side's message, in order */
                pbc occ;
                pbc_msg(&occ, p, n);
                pbf o;
                int first = 1;
                while (pbc_next(&occ, &o) > 0) {
                    if (o.num != t->num[id] || o.wt != 2) continue;
                    odb tmp = {0};
                    put_int_list(&tmp, o.d, o.n, t->num[N_B_COUNTS], field_type(t, N_B_COUNTS));
                    if (tmp.failed) w->failed = 1;
                    if (tmp.n > 2) {
                        if (!first) odb_putc(w, ',');
                        first = 0;
                        odb_put(w, tmp.p + 1, tmp.n - 2);
                    }
                    odb_free(&tmp);
                }
                odb_put(w, "]}", 2);
            }
            odb_putc(w, '}');
        } else {
            odb_puts(w, "{\"quantiles\":[");
            pbc q;
            pbc_msg(&q, p, n);
            pbf vq;
            int first = 1;
            while (pbc_next(&q, &vq) > 0) {
                if (vq.num != t->num[N_SP_QUANTILES] || vq.wt != 2) continue;
                if (!first) odb_putc(w, ',');
                first = 0;
                pbc e;
                pbc_msg(&e, vq.d, vq.n);
                od_val qq, vv;
                last_scalar(t, N_VQ_QUANTILE, e, &qq);
                last_scalar(t, N_VQ_VALUE, e, &vv);
                odb_puts(w, "{\"quantile\":");
                od_dump(d, w, &qq);
                odb_puts(w, ",\"value\":");
                od_dump(d, w, &vv);
                odb_putc(w, '}');
            }
            odb_put(w, "]}", 2);
        }
        od_slot *s = &b->slot[b->c.buckets];
        s->present = 1;
        s->state = S_TEXT;
        s->off = at;
        s->len = w->n - at;
    }
    odb_put(&b->extras, bs->extra.p, bs->extra.n);
    b->ls[0].n = 0;
    {
        pbc a;
        pbc_msg(&a, p, n);
        pbf kv;
        while (pbc_next(&a, &kv) > 0)
            if (kv.num == t->num[ATTRS[kind]] && kv.wt == 2) spans_push(&b->ls[0], kv.d, kv.n);
        if (b->ls[0].failed) return od_oom(d);
    }
    if (split_list(b, &b->ls[0]) < 0) return -1;
    if (flags.i) {
        extra_key(&b->extras, "metric.flags");
        od_dump(d, &b->extras, &flags);
    }
    if (kind == 0 || kind == 1) put_exemplars(b, p, n, t->num[N_NP_EXEMPLARS]);
    if (kind == 2) put_exemplars(b, p, n, t->num[N_HP_EXEMPLARS]);
    if (kind == 3) put_exemplars(b, p, n, t->num[N_EP_EXEMPLARS]);
    return row_finish(b, ctx);
}

/* --- logs ------------------------------------------------------------------------------- */

static int pb_log(od_builder *b, const uint8_t *p, size_t n, const od_ctx *ctx) {
    const od_tables *t = b->t;
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    late_t late[16];
    int nlate = 0;
    od_val vals[16];
    row_begin(b);
    /* the time first (the row's first key), then the flat fields */
    int ti = -1, oi = -1, ei = -1;
    for (int i = 0; i < s->nfields; i++) {
        if (s->fields[i].number == t->num[N_LR_TIME]) ti = i;
        if (s->fields[i].number == t->num[N_LR_OBSERVED]) oi = i;
        if (s->fields[i].kind == K_TEXT && s->fields[i].col < 0 && !s->fields[i].extra) ei = i;
    }
    const uint32_t lists[2] = {t->num[N_LR_ATTRS], t->num[N_LR_BODY]};
    if (place_fields(b, p, n, late, &nlate, vals, lists, 2) < 0) return -1;
    od_val time = ti >= 0 ? vals[ti] : (od_val){0}, observed = oi >= 0 ? vals[oi] : (od_val){0};
    const od_val *tv = truthy(&time) ? &time : &observed;
    if (truthy(tv))
        row_set_int(b, b->c.time, floor_div1000(tv));
    else
        row_set_null(b, b->c.time);
    /* body */
    if (b->ls[1].n) {
        pbc bc;
        merged(&bc, &b->ls[1], p, n, t->num[N_LR_BODY]);
        od_val body;
        if (pb_any(d, bc, &body) < 0) return -1;
        if (body.kind == V_NONE) {
            row_set_text(b, b->c.body, (const uint8_t *)"", 0);
        } else if (od_is_str(&body)) {
            od_str text = od_val_text(d, &body);
            row_set_text(b, b->c.body, text.p, text.n);
        } else {
            size_t at = b->text.n;
            od_dump(d, &b->text, &body);
            od_slot *sl = &b->slot[b->c.body];
            sl->present = 1, sl->state = S_TEXT, sl->off = at, sl->len = b->text.n - at;
        }
    } else {
        row_set_text(b, b->c.body, (const uint8_t *)"", 0);
    }
    if (split_list(b, &b->ls[0]) < 0) return -1;
    /* event_name: the record's field wins over an event.name attribute (kept then) */
    if (ei >= 0 && vals[ei].s.n) {
        od_slot *held = &b->slot[b->c.event_name];
        if (held->present && held->state == S_TEXT &&
            !(held->len == vals[ei].s.n && !memcmp(b->text.p + held->off, vals[ei].s.p, held->len))) {
            extra_key(&b->extras, "event.name");
            jw_raw_string(&b->extras, b->text.p + held->off, held->len);
        }
        row_set_text(b, b->c.event_name, vals[ei].s.p, vals[ei].s.n);
    }
    if (truthy(&time) && truthy(&observed)) {
        extra_key(&b->extras, "log.observed_time_unix_nano");
        od_dump(d, &b->extras, &observed);
    }
    put_late(b, late, nlate);
    return row_finish(b, ctx);
}

/* --- the walk ----------------------------------------------------------------------------- */

static int build_ctx(od_builder *b, const uint8_t *res, size_t rn, const uint8_t *sc, size_t sn) {
    const od_tables *t = b->t;
    const od_signal *s = b->sig;
    od_dec *d = &b->dec;
    od_ctx *c = &b->w.ctx;
    ctx_reset(c);
    arena_reset(&d->scratch);
    /* resource attributes (the merged resource: every occurrence of ResourceX.resource) */
    pbc rc;
    pbc_field(&rc, res, rn, t->num[s->n_resource]);
    pbf f;
    int r;
    while ((r = pbc_next(&rc, &f)) > 0) {
        if (f.num != t->num[N_RESOURCE_ATTRS] || f.wt != 2) continue;
        od_str key;
        od_val val;
        if (pb_kv(d, f.d, f.n, &key, &val) < 0) return -1;
        if (split_attr(d, c->slot, &c->text, &c->shared, c->held, "resource.", key, &val) < 0) return -1;
    }
    if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf resource");
    pbc whole;
    pbc_msg(&whole, res, rn);
    od_str url = last_string(t, s->n_res_schema, whole);
    if (url.n) {
        extra_key(&c->shared, "resource.schema_url");
        jw_string(&c->shared, url);
    }
    pbc scope;
    pbc_field(&scope, sc, sn, t->num[s->n_scope]);
    od_str name = last_string(t, N_SCOPE_NAME, scope), version = last_string(t, N_SCOPE_VERSION, scope);
    if (name.n) {
        extra_key(&c->shared, "scope.name");
        jw_string(&c->shared, name);
    }
    if (version.n) {
        extra_key(&c->shared, "scope.version");
        jw_string(&c->shared, version);
    }
    while ((r = pbc_next(&scope, &f)) > 0) {
        if (f.num != t->num[N_SCOPE_ATTRS] || f.wt != 2) continue;
        od_str key;
        od_val val;
        if (pb_kv(d, f.d, f.n, &key, &val) < 0) return -1;
        if (ctx_scope_attr(d, c, key, &val, name.n > 0, version.n > 0) < 0) return -1;
    }
    pbc_msg(&whole, sc, sn);
    od_str surl = last_string(t, s->n_scope_schema, whole);
    if (surl.n) {
        extra_key(&c->shared, "scope.schema_url");
        jw_string(&c->shared, surl);
    }
    return ctx_done(d, c);
}

int pb_step(od_builder *b) {
    od_walkstate *w = &b->w;
    od_dec *d = &b->dec;
    const od_signal *s = b->sig;
    pbf f;
    int r;
    for (;;) {
        switch (w->level) {
        case 0:
            pbc_msg(&w->pres, d->data, d->len);
            d->i = -1;
            w->level = 5;
            /* fall through */
        case 5: /* the next resource */
            r = pbc_next(&w->pres, &f);
            if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf message");
            if (r == 0) {
                w->level = 4;
                return 0;
            }
            if (f.num != s->res_num || f.wt != 2) continue;
            d->i++;
            w->res_p = f.d, w->res_n = f.n;
            pbc_msg(&w->pscope, f.d, f.n);
            d->j = -1;
            w->level = 1;
            continue;
        case 1: /* the next scope */
            r = pbc_next(&w->pscope, &f);
            if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf message");
            if (r == 0) {
                w->level = 5;
                continue;
            }
            if (f.num != s->scope_num || f.wt != 2) continue;
            d->j++;
            if (build_ctx(b, w->res_p, w->res_n, f.d, f.n) < 0) return -1;
            pbc_msg(&w->prec, f.d, f.n);
            d->k = -1;
            w->level = 2;
            continue;
        case 2: /* the next record */
            r = pbc_next(&w->prec, &f);
            if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf message");
            if (r == 0) {
                w->level = 1;
                continue;
            }
            if (f.num != s->rec_num || f.wt != 2) continue;
            d->k++;
            if (b->signal == SIG_TRACES) r = pb_span(b, f.d, f.n, &w->ctx);
            else if (b->signal == SIG_LOGS) r = pb_log(b, f.d, f.n, &w->ctx);
            else {
                r = pb_metric(b, f.d, f.n);
                if (r > 0) {
                    w->level = 3;
                    continue;
                }
            }
            if (r != 0) return r;
            continue;
        case 3: { /* the next data point of the metric */
            static const int POINTS[5] = {N_G_POINTS, N_S_POINTS, N_H_POINTS, N_E_POINTS, N_Q_POINTS};
            r = pbc_next(&w->pdata, &f);
            if (r < 0) return od_fail(d, NULL, 0, "malformed protobuf message");
            if (r == 0) {
                w->level = 2;
                continue;
            }
            if (f.num != b->t->num[POINTS[w->base.kind]] || f.wt != 2) continue;
            r = pb_point(b, f.d, f.n, &w->ctx);
            if (r != 0) return r;
            continue;
        }
        default: return 0;
        }
    }
}
