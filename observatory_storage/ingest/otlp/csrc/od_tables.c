/* The tables: parsed once from the text blob native.py writes (signals.py, mapping.rules,
 * the datasets' Arrow schemas, the protobuf descriptors of opentelemetry-proto). */
#include <stdio.h>

#include "od_int.h"

#define NESTED_NAME(id, msg, field) {msg, field},
static const struct {
    const char *msg, *field;
} NESTED[N_COUNT] = {OD_NESTED(NESTED_NAME)};

static int grow(void **p, int *cap, int n, size_t size) {
    if (n < *cap) return 0;
    int c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int type_of(const char *s) {
    static const char *names[] = {"timestamp_us", "string", "int16", "int32", "int64", "float64",
                                  "decimal128", "bool"};
    static const int types[] = {T_TS, T_STR, T_I16, T_I32, T_I64, T_F64, T_DEC, T_BOOL};
    for (int i = 0; i < 8; i++)
        if (!strcmp(s, names[i])) return types[i];
    return -1;
}

static int kind_of(const char *s) {
    static const char *names[] = {"id16", "id8", "nanos", "uint", "text", "enum"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static int rule_kind_of(const char *s) {
    static const char *names[] = {"text", "json", "integer", "number", "decimal"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static int to_column_of(const char *s) {
    static const char *names[] = {"-", "micros", "micros_or_null", "or_null", "span_kind"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

const od_pbfield *od_pb_field(const od_pbmsg *m, uint32_t number) {
    if (number < 32) {
        int i = m->by_number[number];
        return i >= 0 ? &m->fields[i] : NULL;
    }
    for (int i = 0; i < m->nfields; i++)
        if (m->fields[i].number == number) return &m->fields[i];
    return NULL;
}

const od_rule *od_rule_lookup(const od_signal *s, const uint8_t *name, size_t n) {
    if (!s->htab) return NULL;
    uint64_t h = od_hash(name, n);
    for (uint32_t i = (uint32_t)h & s->hmask;; i = (i + 1) & s->hmask) {
        int32_t e = s->htab[i];
        if (!e) return NULL;
        const od_rule *r = &s->rules[e - 1];
        if (r->len == n && memcmp(r->name, name, n) == 0) return r;
    }
}

const char *od_map_text(const od_map *m, int64_t num) {
    for (int i = 0; i < m->n; i++)
        if (m->num[i] == num) return m->text[i];
    return NULL;
}

int od_enum_lookup(const od_tables *t, int set, od_str s, int32_t *out) {
    if (set < 0 || set >= t->nenames) return 0;
    const od_enames *e = &t->enames[set];
    for (int i = 0; i < e->n; i++)
        if (od_str_eq(s, e->v[i].name, e->v[i].len)) {
            *out = e->v[i].value;
            return 1;
        }
    return 0;
}

static void map_free(od_map *m) {
    free(m->num);
    free(m->text);
}

void od_tables_free(od_tables *t) {
    if (!t) return;
    for (int i = 0; i < t->npb; i++) free(t->pb[i].fields);
    free(t->pb);
    for (int i = 0; i < t->nsig; i++) {
        free(t->sig[i].fields);
        free(t->sig[i].rules);
        free(t->sig[i].htab);
    }
    for (int i = 0; i < t->nenames; i++) free(t->enames[i].v);
    free(t->enames);
    map_free(&t->status);
    map_free(&t->temporality);
    map_free(&t->kinds);
    free(t->strings);
    free(t);
}

static int find_msg(const od_tables *t, const char *name) {
    for (int i = 0; i < t->npb; i++)
        if (!strcmp(t->pb[i].name, name)) return i;
    return -1;
}

static const od_pbfield *find_field(const od_tables *t, int msg, const char *name) {
    if (msg < 0) return NULL;
    const od_pbmsg *m = &t->pb[msg];
    for (int i = 0; i < m->nfields; i++)
        if (!strcmp(m->fields[i].name, name)) return &m->fields[i];
    return NULL;
}

static int map_add(od_map *m, int *cap, int32_t num, char *text) {
    if (m->n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        int32_t *a = realloc(m->num, (size_t)c * sizeof *a);
        if (!a) return -1;
        m->num = a;
        char **b = realloc(m->text, (size_t)c * sizeof *b);
        if (!b) return -1;
        m->text = b;
        *cap = c;
    }
    m->num[m->n] = num;
    m->text[m->n] = text;
    m->n++;
    return 0;
}

#define FAIL(...)                                \
    do {                                         \
        snprintf(err, errlen, __VA_ARGS__);      \
        goto fail;                               \
    } while (0)

od_tables *od_tables_new(const char *blob, size_t len, char *err, size_t errlen) {
    od_tables *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int pbcap = 0, encap = 0, fcap[3] = {0}, rcap[3] = {0}, mcap[3] = {0};
    int *pbfcap = NULL;
    t->strings = malloc(len + 1);
    if (!t->strings) FAIL("out of memory");
    memcpy(t->strings, blob, len);
    t->strings[len] = 0;
    t->status_names = t->temporality_names = -1;
    char *line = t->strings;
    int lineno = 0, ended = 0;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        char *tok[12];
        int nt = 0;
        for (char *p = line; nt < 12;) {
            tok[nt++] = p;
            char *tab = strchr(p, '\t');
            if (!tab) break;
            *tab = 0;
            p = tab + 1;
        }
        const char *k = tok[0];
#define NEED(n) \
    if (nt != (n)) FAIL("tables line %d (%s): %d fields, expected %d", lineno, k, nt, (n))
        if (lineno == 1) {
            if (nt != 2 || strcmp(k, "otlpdecode-tables") || atoi(tok[1]) != OD_VERSION)
                FAIL("not otlpdecode tables of version %d", OD_VERSION);
        } else if (!strcmp(k, "pbmsg")) {
            NEED(3);
            if (atoi(tok[1]) != t->npb) FAIL("tables line %d: messages out of order", lineno);
            if (grow((void **)&t->pb, &pbcap, t->npb, sizeof *t->pb)) FAIL("out of memory");
            int *c = realloc(pbfcap, (size_t)pbcap * sizeof *c);
            if (!c) FAIL("out of memory");
            pbfcap = c;
            od_pbmsg *m = &t->pb[t->npb];
            memset(m, 0, sizeof *m);
            m->name = tok[2];
            for (int i = 0; i < 32; i++) m->by_number[i] = -1;
            pbfcap[t->npb++] = 0;
        } else if (!strcmp(k, "pbfield")) {
            NEED(9);
            int mi = atoi(tok[1]);
            if (mi < 0 || mi >= t->npb) FAIL("tables line %d: no message %d", lineno, mi);
            od_pbmsg *m = &t->pb[mi];
            if (grow((void **)&m->fields, &pbfcap[mi], m->nfields, sizeof *m->fields))
                FAIL("out of memory");
            od_pbfield *f = &m->fields[m->nfields];
            long num = atol(tok[2]);
            if (num < 1 || num >= (1 << 29)) FAIL("tables line %d: field number %ld", lineno, num);
            f->number = (uint32_t)num;
            f->name = tok[3];
            f->json = tok[4];
            f->type = (uint8_t)atoi(tok[5]);
            f->repeated = (uint8_t)atoi(tok[6]);
            f->msg = (int16_t)atoi(tok[7]);
            f->oneof = (int16_t)atoi(tok[8]);
            if (f->type < PB_DOUBLE || f->type > PB_SINT64) FAIL("tables line %d: type", lineno);
            if (f->number < 32) m->by_number[f->number] = (int16_t)m->nfields;
            m->nfields++;
        } else if (!strcmp(k, "enames")) {
            NEED(2);
            if (atoi(tok[1]) != t->nenames) FAIL("tables line %d: enum names out of order", lineno);
            if (grow((void **)&t->enames, &encap, t->nenames, sizeof *t->enames)) FAIL("out of memory");
            t->enames[t->nenames].n = 0;
            t->enames[t->nenames].v = NULL;
            t->nenames++;
        } else if (!strcmp(k, "ename")) {
            NEED(4);
            int si = atoi(tok[1]);
            if (si < 0 || si >= t->nenames) FAIL("tables line %d: no names set %d", lineno, si);
            od_enames *e = &t->enames[si];
            od_ename *v = realloc(e->v, (size_t)(e->n + 1) * sizeof *v);
            if (!v) FAIL("out of memory");
            e->v = v;
            v[e->n].name = tok[2];
            v[e->n].len = strlen(tok[2]);
            v[e->n].value = (int32_t)atol(tok[3]);
            e->n++;
        } else if (!strcmp(k, "statusnames")) {
            NEED(2);
            t->status_names = atoi(tok[1]);
        } else if (!strcmp(k, "temporalitynames")) {
            NEED(2);
            t->temporality_names = atoi(tok[1]);
        } else if (!strcmp(k, "map")) {
            NEED(4);
            od_map *m = !strcmp(tok[1], "status") ? &t->status
                        : !strcmp(tok[1], "temporality") ? &t->temporality
                        : !strcmp(tok[1], "kinds") ? &t->kinds : NULL;
            int *cap = m == &t->status ? &mcap[0] : m == &t->temporality ? &mcap[1] : &mcap[2];
            if (!m) FAIL("tables line %d: map %s", lineno, tok[1]);
            if (map_add(m, cap, (int32_t)atol(tok[2]), tok[3])) FAIL("out of memory");
        } else if (!strcmp(k, "signal")) {
            NEED(7);
            if (atoi(tok[1]) != t->nsig || t->nsig >= 3) FAIL("tables line %d: signals", lineno);
            od_signal *s = &t->sig[t->nsig++];
            s->name = tok[2];
            s->root = atoi(tok[3]);
            if (s->root < 0 || s->root >= t->npb) FAIL("tables line %d: root", lineno);
            s->jres = tok[4], s->jscope = tok[5], s->jrec = tok[6];
            s->jres_len = strlen(s->jres), s->jscope_len = strlen(s->jscope), s->jrec_len = strlen(s->jrec);
        } else if (!strcmp(k, "column")) {
            NEED(8);
            int si = atoi(tok[1]);
            if (si < 0 || si >= t->nsig) FAIL("tables line %d: signal", lineno);
            od_signal *s = &t->sig[si];
            if (atoi(tok[2]) != s->ncols || s->ncols >= OD_MAXCOL) FAIL("tables line %d: columns", lineno);
            od_coldef *c = &s->cols[s->ncols++];
            c->name = tok[3];
            c->type = type_of(tok[4]);
            c->nullable = atoi(tok[5]);
            c->precision = atoi(tok[6]);
            c->scale = atoi(tok[7]);
            if (c->type < 0) FAIL("tables line %d: column type %s", lineno, tok[4]);
            if (c->type == T_DEC && (c->precision != 18 || c->scale < 0 || c->scale > 18))
                FAIL("tables line %d: only decimal128(18, s) columns are supported", lineno);
        } else if (!strcmp(k, "field")) {
            NEED(10);
            int si = atoi(tok[1]);
            if (si < 0 || si >= t->nsig) FAIL("tables line %d: signal", lineno);
            od_signal *s = &t->sig[si];
            if (grow((void **)&s->fields, &fcap[si], s->nfields, sizeof *s->fields)) FAIL("out of memory");
            od_field *f = &s->fields[s->nfields++];
            f->number = (uint32_t)atol(tok[2]);
            f->json = tok[3];
            f->json_len = strlen(tok[3]);
            f->kind = kind_of(tok[4]);
            f->col = atoi(tok[5]);
            f->extra = strcmp(tok[6], "-") ? tok[6] : NULL;
            f->extra_len = f->extra ? strlen(f->extra) : 0;
            f->required = atoi(tok[7]);
            f->names = atoi(tok[8]);
            f->to_column = to_column_of(tok[9]);
            if (f->kind < 0 || f->to_column < 0 || f->col < -1 || f->col >= s->ncols ||
                f->names >= t->nenames)
                FAIL("tables line %d: field %s", lineno, tok[3]);
        } else if (!strcmp(k, "rule")) {
            NEED(10);
            int si = atoi(tok[1]);
            if (si < 0 || si >= t->nsig) FAIL("tables line %d: signal", lineno);
            od_signal *s = &t->sig[si];
            if (grow((void **)&s->rules, &rcap[si], s->nrules, sizeof *s->rules)) FAIL("out of memory");
            od_rule *r = &s->rules[s->nrules++];
            r->name = tok[2];
            r->len = strlen(tok[2]);
            r->col = atoi(tok[3]);
            r->rank = atoi(tok[4]);
            r->kind = rule_kind_of(tok[5]);
            r->limit = strtoll(tok[6], NULL, 10);
            r->scale = strtod(tok[7], NULL);
            r->precision = atoi(tok[8]);
            r->digits = atoi(tok[9]);
            if (r->kind < 0 || r->col < 0 || r->col >= s->ncols) FAIL("tables line %d: rule %s", lineno, r->name);
            if (r->kind == R_DECIMAL && (r->precision != 18 || r->digits < 0 || r->digits > 17))
                FAIL("tables line %d: decimal rules need numeric(18, s)", lineno);
        } else if (!strcmp(k, "end")) {
            ended = 1;
            break;
        } else {
            FAIL("tables line %d: unknown line %s", lineno, k);
        }
        line = next;
    }
    if (!ended) FAIL("tables: no end line (truncated?)");
    if (t->nsig != 3) FAIL("tables: %d signals, expected traces, metrics, logs", t->nsig);
    if (strcmp(t->sig[0].name, "traces") || strcmp(t->sig[1].name, "metrics") ||
        strcmp(t->sig[2].name, "logs"))
        FAIL("tables: signals must be traces, metrics, logs in that order");
    for (int i = 0; i < t->npb; i++)
        for (int j = 0; j < t->pb[i].nfields; j++) {
            od_pbfield *f = &t->pb[i].fields[j];
            if (f->msg >= t->npb || (f->type == PB_MESSAGE && f->msg < 0)) FAIL("tables: bad sub-message");
            if (f->number >= 32) continue;
            int packable = f->repeated && f->type != PB_MESSAGE && f->type != PB_STRING &&
                           f->type != PB_BYTES && f->type != PB_GROUP;
            t->pb[i].check[f->number] = f->type == PB_MESSAGE  ? CHECK_MESSAGE
                                        : f->type == PB_STRING ? CHECK_STRING
                                        : f->type == PB_BYTES  ? CHECK_BYTES
                                        : packable             ? CHECK_PACKED
                                                               : CHECK_NONE;
        }
    /* nested fields, by name */
    for (int i = 0; i < N_COUNT; i++) {
        char name[160];
        snprintf(name, sizeof name, "opentelemetry.proto.%s", NESTED[i].msg);
        int mi = find_msg(t, name);
        const od_pbfield *f = find_field(t, mi, NESTED[i].field);
        if (!f) FAIL("tables: no field %s.%s in the protobuf descriptors", name, NESTED[i].field);
        t->num[i] = f->number;
        t->jname[i] = f->json;
        t->jlen[i] = strlen(f->json);
        t->nested_msg[i] = mi;
    }
    t->canonical_kv = !strcmp(t->jname[N_KV_KEY], "key") && !strcmp(t->jname[N_KV_VALUE], "value") &&
                      !strcmp(t->jname[N_AV_STRING], "stringValue") && !strcmp(t->jname[N_AV_INT], "intValue") &&
                      !strcmp(t->jname[N_AV_DOUBLE], "doubleValue") && !strcmp(t->jname[N_AV_BOOL], "boolValue");
    static const int res_ids[3][4] = {{N_RS_RESOURCE, N_RS_SCHEMA, N_SS_SCOPE, N_SS_SCHEMA},
                                      {N_RM_RESOURCE, N_RM_SCHEMA, N_SM_SCOPE, N_SM_SCHEMA},
                                      {N_RL_RESOURCE, N_RL_SCHEMA, N_SL_SCOPE, N_SL_SCHEMA}};
    for (int si = 0; si < 3; si++) {
        od_signal *s = &t->sig[si];
        const od_pbmsg *root = &t->pb[s->root];
        const od_pbfield *res = NULL, *scope = NULL, *rec = NULL;
        for (int j = 0; j < root->nfields; j++)
            if (!strcmp(root->fields[j].json, s->jres)) res = &root->fields[j];
        if (res && res->msg >= 0)
            for (int j = 0; j < t->pb[res->msg].nfields; j++)
                if (!strcmp(t->pb[res->msg].fields[j].json, s->jscope)) scope = &t->pb[res->msg].fields[j];
        if (scope && scope->msg >= 0)
            for (int j = 0; j < t->pb[scope->msg].nfields; j++)
                if (!strcmp(t->pb[scope->msg].fields[j].json, s->jrec)) rec = &t->pb[scope->msg].fields[j];
        if (!res || !scope || !rec || rec->msg < 0) FAIL("tables: containers of %s", s->name);
        s->res_num = res->number, s->scope_num = scope->number, s->rec_num = rec->number;
        s->rec_msg = rec->msg;
        for (int f = 0; f < s->nfields; f++) {
            const od_pbfield *pf = od_pb_field(&t->pb[rec->msg], s->fields[f].number);
            if (!pf) FAIL("tables: %s field %s is not in the descriptors", s->name, s->fields[f].json);
            s->fields[f].pbtype = pf->type;
        }
        s->n_resource = res_ids[si][0], s->n_res_schema = res_ids[si][1];
        s->n_scope = res_ids[si][2], s->n_scope_schema = res_ids[si][3];
        uint32_t size = 16;
        while (size < 2u * (uint32_t)s->nrules) size *= 2;
        s->hmask = size - 1;
        s->htab = calloc(size, sizeof *s->htab);
        if (!s->htab) FAIL("out of memory");
        for (int r = 0; r < s->nrules; r++) {
            uint32_t i = (uint32_t)od_hash((const uint8_t *)s->rules[r].name, s->rules[r].len) & s->hmask;
            while (s->htab[i]) {
                const od_rule *o = &s->rules[s->htab[i] - 1];
                if (o->len == s->rules[r].len && !memcmp(o->name, s->rules[r].name, o->len))
                    FAIL("tables: rule %s twice", o->name);
                i = (i + 1) & s->hmask;
            }
            s->htab[i] = r + 1;
        }
    }
    if (t->status_names < 0 || t->temporality_names < 0 || t->status_names >= t->nenames ||
        t->temporality_names >= t->nenames)
        FAIL("tables: status / temporality names");
    free(pbfcap);
    return t;
fail:
    free(pbfcap);
    od_tables_free(t);
    return NULL;
}

int od_tables_nsignals(const od_tables *t) { return t->nsig; }
const char *od_tables_signal_name(const od_tables *t, int s) {
    return s >= 0 && s < t->nsig ? t->sig[s].name : NULL;
}
int od_tables_ncols(const od_tables *t, int s) { return s >= 0 && s < t->nsig ? t->sig[s].ncols : 0; }
const char *od_tables_col_name(const od_tables *t, int s, int c) {
    return s >= 0 && s < t->nsig && c >= 0 && c < t->sig[s].ncols ? t->sig[s].cols[c].name : NULL;
}
