/* otlpdecode internals shared by the C files (not part of the API in od.h). */
#ifndef OD_INT_H
#define OD_INT_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "od.h"

#define OD_MAXCOL 48
#define OD_MAX_DEPTH 100        /* upb's recursion limit (messages below the root) */
#define OD_JSON_MAX_DEPTH 1024  /* orjson's nesting limit */
#define OD_MAX_MESSAGE 0xfffffff0u
#define OD_MAX_BUFFER 0x7fffffffu /* Arrow string offsets are int32 */

#define OD_UNUSED(x) ((void)(x))

/* --- growable buffer: a failed allocation (or a size over OD_MAX_BUFFER) is sticky;
 * writes after it are dropped and the owner reports it (never a write out of bounds) */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed;
} odb;

int odb_grow(odb *b, size_t extra);
void odb_free(odb *b);
static inline void odb_put(odb *b, const void *s, size_t n) {
    if (n == 0) return;
    if (b->cap - b->n < n && odb_grow(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void odb_putc(odb *b, char c) {
    if (b->cap == b->n && odb_grow(b, 1)) return;
    b->p[b->n++] = (uint8_t)c;
}
static inline void odb_puts(odb *b, const char *s) { odb_put(b, s, strlen(s)); }
void odb_printf(odb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- strings: raw UTF-8, or the inside of a JSON string literal (esc: has escapes) */
typedef struct {
    const uint8_t *p;
    size_t n;
    int esc;
} od_str;

/* --- arena: allocations that never move until reset (decoded strings of a record) */
typedef struct od_ablk {
    struct od_ablk *next;
    size_t n, cap;
    uint8_t data[];
} od_ablk;
typedef struct {
    od_ablk *head;
    int failed;
} od_arena;
void *arena_alloc(od_arena *a, size_t n); /* NULL (and a->failed) when out of memory */
void arena_reset(od_arena *a);
void arena_free(od_arena *a);

/* --- text helpers (od_text.c) */
int od_utf8_valid(const uint8_t *s, size_t n);
size_t od_format_double(double x, char *buf);
int od_json_valid(const uint8_t *s, size_t n);
void jw_double(odb *w, double x);           /* orjson: NaN/Inf -> null */
void jw_int(odb *w, int64_t v);
void jw_uint(odb *w, uint64_t v);
void jw_raw_string(odb *w, const uint8_t *s, size_t n); /* "..." with orjson's escapes */
void jw_string(odb *w, od_str s);           /* from raw or JSON-escaped input */
void jw_string_body(odb *w, od_str s);      /* the same without the quotes */
void jw_base64_string(odb *w, const uint8_t *s, size_t n);
void od_base64(odb *w, const uint8_t *s, size_t n);
void od_unescape(odb *w, const uint8_t *s, size_t n); /* JSON string inside -> UTF-8 */
void od_hex(odb *w, const uint8_t *s, size_t n);
int od_str_eq(od_str a, const char *lit, size_t litn);
/* a string's UTF-8 bytes: s itself, or unescaped into scratch */
od_str od_str_plain(od_str s, od_arena *a);
void od_repr(odb *w, od_str s);             /* Python-repr-like, for error messages */
uint64_t od_hash(const uint8_t *s, size_t n);
int od_json_validate(const uint8_t *s, size_t n, void *index_out, char *err, size_t errlen);

/* --- tables (od_tables.c) */
enum { PB_DOUBLE = 1, PB_FLOAT, PB_INT64, PB_UINT64, PB_INT32, PB_FIXED64, PB_FIXED32, PB_BOOL,
       PB_STRING, PB_GROUP, PB_MESSAGE, PB_BYTES, PB_UINT32, PB_ENUM, PB_SFIXED32, PB_SFIXED64,
       PB_SINT32, PB_SINT64 };

typedef struct {
    uint32_t number;
    uint8_t type, repeated;
    int16_t msg;   /* sub-message index, -1 */
    int16_t oneof; /* -1 */
    char *name, *json;
} od_pbfield;

typedef struct {
    char *name;
    int nfields;
    od_pbfield *fields;
    int16_t by_number[32]; /* index of fields numbered < 32, else -1 (then searched) */
    uint8_t check[32];     /* validation of fields numbered < 32: a CHECK_* (0: unknown) */
} od_pbmsg;

/* what the validator does with a field of a known number and wire type 2 */
enum { CHECK_NONE, CHECK_MESSAGE, CHECK_STRING, CHECK_BYTES, CHECK_PACKED };

typedef struct {
    char *name;
    size_t len;
    int32_t value;
} od_ename;

typedef struct {
    int n;
    od_ename *v;
} od_enames;

enum { K_ID16, K_ID8, K_NANOS, K_UINT, K_TEXT, K_ENUM };
enum { TC_NONE, TC_MICROS, TC_MICROS_OR_NULL, TC_OR_NULL, TC_SPAN_KIND };

typedef struct {
    uint32_t number;
    char *json;
    size_t json_len;
    int kind, col, required, names, to_column;
    int pbtype; /* its protobuf type (from the descriptors) */
    char *extra; /* the attributes key, or NULL */
    size_t extra_len;
} od_field;

enum { T_TS, T_STR, T_I16, T_I32, T_I64, T_F64, T_DEC, T_BOOL };
typedef struct {
    char *name;
    int type, nullable, precision, scale;
} od_coldef;

enum { R_TEXT, R_JSON, R_INTEGER, R_NUMBER, R_DECIMAL };
typedef struct {
    char *name;
    size_t len;
    int col, rank, kind;
    int64_t limit;
    double scale;
    int precision, digits;
} od_rule;

typedef struct {
    char *name;
    int root;           /* pb message index of *Data */
    char *jres, *jscope, *jrec; /* resourceSpans, scopeSpans, spans */
    size_t jres_len, jscope_len, jrec_len;
    uint32_t res_num, scope_num, rec_num; /* their protobuf numbers */
    int rec_msg;                          /* the record's message */
    /* ResourceX.resource / .schema_url, ScopeX.scope / .schema_url (nested ids) */
    int n_resource, n_res_schema, n_scope, n_scope_schema;
    int nfields;
    od_field *fields;
    int ncols;
    od_coldef cols[OD_MAXCOL];
    int nrules;
    od_rule *rules;
    uint32_t hmask;
    int32_t *htab; /* rule index + 1, 0 = empty */
} od_signal;

/* The nested fields walk.py spells out, resolved by (message, field) name from the
 * descriptors in the tables: protobuf number and JSON name of each. */
#define OD_NESTED(X) \
    X(KV_KEY, "common.v1.KeyValue", "key") \
    X(KV_VALUE, "common.v1.KeyValue", "value") \
    X(AV_STRING, "common.v1.AnyValue", "string_value") \
    X(AV_BOOL, "common.v1.AnyValue", "bool_value") \
    X(AV_INT, "common.v1.AnyValue", "int_value") \
    X(AV_DOUBLE, "common.v1.AnyValue", "double_value") \
    X(AV_ARRAY, "common.v1.AnyValue", "array_value") \
    X(AV_KVLIST, "common.v1.AnyValue", "kvlist_value") \
    X(AV_BYTES, "common.v1.AnyValue", "bytes_value") \
    X(ARRAY_VALUES, "common.v1.ArrayValue", "values") \
    X(KVLIST_VALUES, "common.v1.KeyValueList", "values") \
    X(RESOURCE_ATTRS, "resource.v1.Resource", "attributes") \
    X(SCOPE_NAME, "common.v1.InstrumentationScope", "name") \
    X(SCOPE_VERSION, "common.v1.InstrumentationScope", "version") \
    X(SCOPE_ATTRS, "common.v1.InstrumentationScope", "attributes") \
    X(RS_RESOURCE, "trace.v1.ResourceSpans", "resource") \
    X(RS_SCHEMA, "trace.v1.ResourceSpans", "schema_url") \
    X(SS_SCOPE, "trace.v1.ScopeSpans", "scope") \
    X(SS_SCHEMA, "trace.v1.ScopeSpans", "schema_url") \
    X(RM_RESOURCE, "metrics.v1.ResourceMetrics", "resource") \
    X(RM_SCHEMA, "metrics.v1.ResourceMetrics", "schema_url") \
    X(SM_SCOPE, "metrics.v1.ScopeMetrics", "scope") \
    X(SM_SCHEMA, "metrics.v1.ScopeMetrics", "schema_url") \
    X(RL_RESOURCE, "logs.v1.ResourceLogs", "resource") \
    X(RL_SCHEMA, "logs.v1.ResourceLogs", "schema_url") \
    X(SL_SCOPE, "logs.v1.ScopeLogs", "scope") \
    X(SL_SCHEMA, "logs.v1.ScopeLogs", "schema_url") \
    X(SPAN_ATTRS, "trace.v1.Span", "attributes") \
    X(SPAN_STATUS, "trace.v1.Span", "status") \
    X(SPAN_EVENTS, "trace.v1.Span", "events") \
    X(SPAN_LINKS, "trace.v1.Span", "links") \
    X(STATUS_CODE, "trace.v1.Status", "code") \
    X(STATUS_MESSAGE, "trace.v1.Status", "message") \
    X(EV_TIME, "trace.v1.Span.Event", "time_unix_nano") \
    X(EV_NAME, "trace.v1.Span.Event", "name") \
    X(EV_ATTRS, "trace.v1.Span.Event", "attributes") \
    X(EV_DROPPED, "trace.v1.Span.Event", "dropped_attributes_count") \
    X(LN_TRACE, "trace.v1.Span.Link", "trace_id") \
    X(LN_SPAN, "trace.v1.Span.Link", "span_id") \
    X(LN_STATE, "trace.v1.Span.Link", "trace_state") \
    X(LN_ATTRS, "trace.v1.Span.Link", "attributes") \
    X(LN_FLAGS, "trace.v1.Span.Link", "flags") \
    X(M_GAUGE, "metrics.v1.Metric", "gauge") \
    X(M_SUM, "metrics.v1.Metric", "sum") \
    X(M_HIST, "metrics.v1.Metric", "histogram") \
    X(M_EXP, "metrics.v1.Metric", "exponential_histogram") \
    X(M_SUMMARY, "metrics.v1.Metric", "summary") \
    X(M_METADATA, "metrics.v1.Metric", "metadata") \
    X(G_POINTS, "metrics.v1.Gauge", "data_points") \
    X(S_POINTS, "metrics.v1.Sum", "data_points") \
    X(S_TEMPORALITY, "metrics.v1.Sum", "aggregation_temporality") \
    X(S_MONOTONIC, "metrics.v1.Sum", "is_monotonic") \
    X(H_POINTS, "metrics.v1.Histogram", "data_points") \
    X(H_TEMPORALITY, "metrics.v1.Histogram", "aggregation_temporality") \
    X(E_POINTS, "metrics.v1.ExponentialHistogram", "data_points") \
    X(E_TEMPORALITY, "metrics.v1.ExponentialHistogram", "aggregation_temporality") \
    X(Q_POINTS, "metrics.v1.Summary", "data_points") \
    X(NP_ATTRS, "metrics.v1.NumberDataPoint", "attributes") \
    X(NP_START, "metrics.v1.NumberDataPoint", "start_time_unix_nano") \
    X(NP_TIME, "metrics.v1.NumberDataPoint", "time_unix_nano") \
    X(NP_DOUBLE, "metrics.v1.NumberDataPoint", "as_double") \
    X(NP_INT, "metrics.v1.NumberDataPoint", "as_int") \
    X(NP_EXEMPLARS, "metrics.v1.NumberDataPoint", "exemplars") \
    X(NP_FLAGS, "metrics.v1.NumberDataPoint", "flags") \
    X(HP_ATTRS, "metrics.v1.HistogramDataPoint", "attributes") \
    X(HP_START, "metrics.v1.HistogramDataPoint", "start_time_unix_nano") \
    X(HP_TIME, "metrics.v1.HistogramDataPoint", "time_unix_nano") \
    X(HP_COUNT, "metrics.v1.HistogramDataPoint", "count") \
    X(HP_SUM, "metrics.v1.HistogramDataPoint", "sum") \
    X(HP_COUNTS, "metrics.v1.HistogramDataPoint", "bucket_counts") \
    X(HP_BOUNDS, "metrics.v1.HistogramDataPoint", "explicit_bounds") \
    X(HP_EXEMPLARS, "metrics.v1.HistogramDataPoint", "exemplars") \
    X(HP_FLAGS, "metrics.v1.HistogramDataPoint", "flags") \
    X(HP_MIN, "metrics.v1.HistogramDataPoint", "min") \
    X(HP_MAX, "metrics.v1.HistogramDataPoint", "max") \
    X(EP_ATTRS, "metrics.v1.ExponentialHistogramDataPoint", "attributes") \
    X(EP_START, "metrics.v1.ExponentialHistogramDataPoint", "start_time_unix_nano") \
    X(EP_TIME, "metrics.v1.ExponentialHistogramDataPoint", "time_unix_nano") \
    X(EP_COUNT, "metrics.v1.ExponentialHistogramDataPoint", "count") \
    X(EP_SUM, "metrics.v1.ExponentialHistogramDataPoint", "sum") \
    X(EP_SCALE, "metrics.v1.ExponentialHistogramDataPoint", "scale") \
    X(EP_ZERO_COUNT, "metrics.v1.ExponentialHistogramDataPoint", "zero_count") \
    X(EP_POSITIVE, "metrics.v1.ExponentialHistogramDataPoint", "positive") \
    X(EP_NEGATIVE, "metrics.v1.ExponentialHistogramDataPoint", "negative") \
    X(EP_FLAGS, "metrics.v1.ExponentialHistogramDataPoint", "flags") \
    X(EP_EXEMPLARS, "metrics.v1.ExponentialHistogramDataPoint", "exemplars") \
    X(EP_MIN, "metrics.v1.ExponentialHistogramDataPoint", "min") \
    X(EP_MAX, "metrics.v1.ExponentialHistogramDataPoint", "max") \
    X(EP_ZERO_THRESHOLD, "metrics.v1.ExponentialHistogramDataPoint", "zero_threshold") \
    X(B_OFFSET, "metrics.v1.ExponentialHistogramDataPoint.Buckets", "offset") \
    X(B_COUNTS, "metrics.v1.ExponentialHistogramDataPoint.Buckets", "bucket_counts") \
    X(SP_ATTRS, "metrics.v1.SummaryDataPoint", "attributes") \
    X(SP_START, "metrics.v1.SummaryDataPoint", "start_time_unix_nano") \
    X(SP_TIME, "metrics.v1.SummaryDataPoint", "time_unix_nano") \
    X(SP_COUNT, "metrics.v1.SummaryDataPoint", "count") \
    X(SP_SUM, "metrics.v1.SummaryDataPoint", "sum") \
    X(SP_QUANTILES, "metrics.v1.SummaryDataPoint", "quantile_values") \
    X(SP_FLAGS, "metrics.v1.SummaryDataPoint", "flags") \
    X(VQ_QUANTILE, "metrics.v1.SummaryDataPoint.ValueAtQuantile", "quantile") \
    X(VQ_VALUE, "metrics.v1.SummaryDataPoint.ValueAtQuantile", "value") \
    X(X_ATTRS, "metrics.v1.Exemplar", "filtered_attributes") \
    X(X_TIME, "metrics.v1.Exemplar", "time_unix_nano") \
    X(X_DOUBLE, "metrics.v1.Exemplar", "as_double") \
    X(X_INT, "metrics.v1.Exemplar", "as_int") \
    X(X_SPAN, "metrics.v1.Exemplar", "span_id") \
    X(X_TRACE, "metrics.v1.Exemplar", "trace_id") \
    X(LR_BODY, "logs.v1.LogRecord", "body") \
    X(LR_ATTRS, "logs.v1.LogRecord", "attributes") \
    X(M_NAME, "metrics.v1.Metric", "name") \
    X(SPAN_TRACE, "trace.v1.Span", "trace_id") \
    X(SPAN_SPAN, "trace.v1.Span", "span_id") \
    X(LR_TIME, "logs.v1.LogRecord", "time_unix_nano") \
    X(LR_OBSERVED, "logs.v1.LogRecord", "observed_time_unix_nano")

#define OD_NESTED_ENUM(id, msg, field) N_##id,
enum { OD_NESTED(OD_NESTED_ENUM) N_COUNT };

enum { SIG_TRACES = 0, SIG_METRICS = 1, SIG_LOGS = 2 };

/* maps of walk.py / signals.py: STATUS, TEMPORALITY, KINDS (number -> text) */
typedef struct {
    int n;
    int32_t *num;
    char **text;
} od_map;

struct od_tables {
    int npb;
    od_pbmsg *pb;
    int nsig;
    od_signal sig[3];
    int nenames;
    od_enames *enames; /* enum names sets: field.names, and the two below */
    int status_names, temporality_names;
    od_map status, temporality, kinds;
    uint32_t num[N_COUNT];   /* protobuf numbers */
    const char *jname[N_COUNT]; /* JSON names */
    size_t jlen[N_COUNT];
    int nested_msg[N_COUNT];  /* message index of each */
    int canonical_kv;         /* KeyValue/AnyValue JSON names as the fast path expects */
    char *strings;           /* the blob's copy, names point into it */
};

const od_pbfield *od_pb_field(const od_pbmsg *m, uint32_t number);
const od_rule *od_rule_lookup(const od_signal *s, const uint8_t *name, size_t n);
const char *od_map_text(const od_map *m, int64_t num);
int od_enum_lookup(const od_tables *t, int set, od_str s, int32_t *out);

#endif
