/* The walk shared by both encodings: values, rows, the attribute split, resource
 * contexts, record finishing (mapping.py / walk.py), the column buffers. The encodings
 * (od_proto.c, od_json.c) read records and call these. */
#ifndef OD_WALK_H
#define OD_WALK_H

#include "od_int.h"
#include "od_json.h"

/* --- protobuf cursor: the fields of a message, or of the concatenation of every
 * occurrence of field `filter` in a base message (protobuf merges repeated occurrences
 * of a singular message field: parsing their concatenation is the same) */
typedef struct {
    const uint8_t *p, *end;   /* fields being read */
    const uint8_t *bp, *bend; /* the base, when filter != 0 */
    uint32_t filter;
} pbc;

typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;        /* varint, fixed64, fixed32 */
    const uint8_t *d;  /* length-delimited payload */
    size_t n;
} pbf;

void pbc_msg(pbc *c, const uint8_t *p, size_t n);
void pbc_field(pbc *c, const uint8_t *base, size_t n, uint32_t filter);
int pbc_next(pbc *c, pbf *f); /* 1 field, 0 end, -1 malformed */

/* positions of a record's repeated or nested fields, collected in one pass over it */
typedef struct {
    const uint8_t *p;
    size_t n;
} od_span;
typedef struct {
    od_span *v;
    size_t n, cap;
    int failed;
} od_spans;
static inline void spans_push(od_spans *s, const uint8_t *p, size_t n) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        od_span *v = s->failed ? NULL : realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->failed = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].p = p;
    s->v[s->n].n = n;
    s->n++;
}

/* --- values: what an AnyValue (or a field) is, referring into the input */
enum { V_NONE, V_BOOL, V_INT, V_UINT, V_F64, V_STR, V_B64, V_ARR, V_KVL };

typedef struct {
    uint8_t kind, enc; /* enc: OD_PROTO / OD_JSON (for V_ARR, V_KVL) */
    uint8_t b;
    int depth;         /* JSON: the AnyValue depth of this value */
    int64_t i;
    uint64_t u;
    double d;
    od_str s;          /* V_STR text; V_B64 bytes */
    pbc cur;           /* protobuf V_ARR/V_KVL: the AnyValue from its final oneof run */
    uint32_t member;   /* ... the member's field number (array_value or kvlist_value) */
    uint32_t list;     /* direct lists (a record's attributes): the field of the entries */
    uint8_t direct;    /* a record's KeyValue list, not an AnyValue's kvlist_value */
    uint8_t keyreq;    /* JSON: entries need "key" (attrs()) rather than defaulting to "" */
    const uint8_t *jp; /* JSON V_ARR/V_KVL: the "values" list ('['), NULL when empty */
    uint32_t jent;
    int jlevel;        /* nesting level of that list in the document */
} od_val;

/* --- JSON positions and iterators */
typedef struct {
    const uint8_t *p; /* first byte of the value */
    uint32_t ent;     /* index entry, when the value is an indexed container */
    int level;        /* its nesting level (top-level value: 1) */
    const uint8_t *e; /* just past its end, when known (NULL: scan for it) */
} jpos;

typedef struct {
    const uint8_t *p, *end; /* next byte; end of the container */
    uint32_t ent;           /* next index entry */
    int level;              /* of the members */
    int first;
} jit;

typedef struct od_dec od_dec;

/* iteration over the elements of a V_ARR or the (key, value) entries of a V_KVL */
typedef struct {
    int enc, kvl, direct, keyreq;
    uint32_t member, values; /* protobuf: array_value/kvlist_value, and their .values */
    pbc outer, inner;        /* protobuf: AnyValue fields, then each member payload's list */
    int in_inner;
    jit j;             /* JSON */
    int depth;
} od_vit;

/* --- row slots */
enum { S_NULL, S_INT, S_F64, S_TEXT, S_UNFIT };
typedef struct {
    uint8_t present, state;
    int64_t i;  /* S_INT (decimal columns: the unscaled value) */
    double d;
    size_t off, len; /* S_TEXT: in the owner's text buffer */
} od_slot;

/* the best-ranked attribute held for a column while splitting */
typedef struct {
    int has, rank;
    od_str key; /* plain */
    od_val val;
    od_val last; /* the key's last value so far (mapping.resource: dict(attributes)[key]) */
} od_held;

typedef struct {
    od_str *e;
    size_t n, cap;
    int failed;
} od_strset;
int strset_add(od_strset *s, od_str k); /* 1 added, 0 already there, -1 out of memory */
void strset_clear(od_strset *s);

/* A resource + scope's contribution to each of its records (mapping.Resource). */
typedef struct {
    od_slot slot[OD_MAXCOL];
    odb text;
    odb shared;                /* extras members (resource.*, scope.*), comma-separated */
    odb over;                  /* "resource.<key>":<value> of each column it fills */
    size_t over_off[OD_MAXCOL], over_len[OD_MAXCOL];
    od_held held[OD_MAXCOL];
    od_strset seen; /* scope attribute keys */
} od_ctx;

/* the metric a run of data points belongs to (walk.metrics' base) */
typedef struct {
    od_slot slot[OD_MAXCOL];
    odb text;
    odb extra; /* base_extra members */
    int kind;  /* 0 gauge, 1 sum, 2 histogram, 3 exponential_histogram, 4 summary */
} od_base;

typedef struct {
    int type;
    odb data, offs, valid;
    int64_t nulls;
    int64_t unfit_row;
    char unfit[160];
} od_col;

/* semantic columns walk.py names */
typedef struct {
    int attributes, status_code, status_message, error_type, start_time;
    int time, value, metric_type, temporality, sample_count, min_value, max_value, buckets;
    int body, event_name, metric_name;
} od_cols;

struct od_dec {
    const od_tables *t;
    const od_signal *sig;
    int enc;
    const uint8_t *data; /* the message */
    size_t len;
    const od_jent *jidx; /* JSON index */
    size_t jn;
    od_arena scratch;    /* decoded strings of the record being built */
    od_error *err;
    const char *where;
    int i, j, k;         /* resource, scope, record of the record being built */
    od_builder *b;
};

struct od_msg {
    int enc, signal;
    const uint8_t *data;
    size_t len;
    od_jindex jidx;
    jpos root; /* JSON: the signal's resource list */
};

/* the walk of one message, resumable after each sealed batch */
typedef struct {
    int level; /* 0 resources, 1 scopes, 2 records, 3 data points, 4 done */
    pbc pres, pscope, prec; /* protobuf: resources, scopes, records */
    const uint8_t *res_p;   /* ... the current resource */
    size_t res_n;
    jit jres, jscope, jrec, jpt; /* JSON: resources, scopes, records, data points */
    jpos jres_v, jscope_v;       /* ... the current resource's attributes and schemaUrl */
    od_ctx ctx;
    od_base base;
    /* metrics: the current metric's data (protobuf: from the oneof's final run, its data
     * points read from it; JSON: the list of data points) */
    pbc pdata;
    jpos jdata;
} od_walkstate;

struct od_builder {
    const od_tables *t;
    const od_signal *sig;
    int signal;
    int64_t batch_size;
    od_col cols[OD_MAXCOL];
    int64_t rows, flushed;
    od_chunk *ready;
    int64_t unusable[OD_MAXCOL];
    od_cols c;
    /* the row being built */
    od_slot slot[OD_MAXCOL];
    odb text;
    odb extras;
    od_held held[OD_MAXCOL];
    int failed;
    od_spans ls[4];      /* protobuf: a record's attributes, status, events, links, ... */
    int8_t fidx[64];     /* protobuf: record field number -> index in the signal's fields */
    /* the message being walked */
    od_msg *msg;
    char where[160];
    od_dec dec;
    od_walkstate w;
};

/* --- errors */
int od_fail(od_dec *d, const char *field, int record, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int od_oom(od_dec *d);

/* --- values (od_values.c) */
void vit_init(od_dec *d, od_vit *it, const od_val *v);
int vit_next(od_dec *d, od_vit *it, od_str *key, od_val *elem); /* 1, 0 end, -1 error */
int od_dump(od_dec *d, odb *w, const od_val *v);                /* orjson.dumps(v) */
int od_is_str(const od_val *v); /* a Python str: V_STR or V_B64 (base64 text) */
od_str od_val_text(od_dec *d, const od_val *v); /* V_STR / V_B64 as UTF-8 bytes */
/* attribute -> column value: 1 (slot filled, texts in `text`), 0 (SKIP) , -1 error */
int od_convert(od_dec *d, const od_rule *r, const od_val *v, od_slot *slot, odb *text);

/* --- rows (od_rows.c) */
void row_begin(od_builder *b);
void row_set_int(od_builder *b, int col, int64_t v);
void row_set_f64(od_builder *b, int col, double v);
void row_set_null(od_builder *b, int col);
void row_set_text(od_builder *b, int col, const uint8_t *s, size_t n);
void row_set_unfit(od_builder *b, int col, const char *what);
int row_text_equals(od_builder *b, int col, od_str s);
/* extras: members of the record's `attributes` object, in assignment order */
void extra_key(odb *w, const char *key);   /* ,"key": (a literal key) */
void extra_skey(odb *w, od_str key, const char *prefix);
/* the split of one attribute (mapping.AttributeMap.split / split_kvs) */
int split_attr(od_dec *d, od_slot *slot, odb *text, odb *extras, od_held *held,
               const char *prefix, od_str key, const od_val *v);
int ctx_done(od_dec *d, od_ctx *c);
int ctx_scope_attr(od_dec *d, od_ctx *c, od_str key, const od_val *v, int have_name,
                   int have_version);
void ctx_reset(od_ctx *c);
void ctx_free(od_ctx *c);
/* the record's row: finish (resource merge, attributes) and append; may seal a batch */
int row_finish(od_builder *b, const od_ctx *ctx);
void base_reset(od_base *bs);
void base_free(od_base *bs);

/* --- the encodings */
int pb_prepare(const od_tables *t, const uint8_t *data, size_t len, od_msg *m, od_error *err);
int pb_step(od_builder *b);
int js_prepare(const od_tables *t, const uint8_t *data, size_t len, od_msg *m, od_error *err);
int js_step(od_builder *b);

/* JSON helpers used by od_values.c */
int jit_open(od_dec *d, jit *it, jpos v); /* v is '[' or '{' */
int jarr_next(od_dec *d, jit *it, jpos *v);
int jobj_next(od_dec *d, jit *it, od_str *key, jpos *v);
int js_any(od_dec *d, jpos v, int depth, od_val *out, int validate);
int js_kv(od_dec *d, jpos kv, int key_default, int depth, od_str *key, od_val *val, int validate);
int pb_any(od_dec *d, pbc c, od_val *out);
int pb_kv(od_dec *d, const uint8_t *p, size_t n, od_str *key, od_val *val);

#endif
