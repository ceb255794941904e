/* Rows: the record being built (slots per column), the attribute split and resource
 * contexts of mapping.py, finish() and the column buffers that become Arrow arrays
 * (RowBuilder: batches of batch_size rows, accumulating across messages). */
#include <stdio.h>

#include "od_walk.h"

/* --- errors ------------------------------------------------------------------- */

int od_fail(od_dec *d, const char *field, int record, const char *fmt, ...) {
    od_error *e = d->err;
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    e->row = -1;
    e->path[0] = 0;
    if (record && d->sig)
        snprintf(e->path, sizeof e->path, "%s[%d].%s[%d].%s[%d]", d->sig->jres, d->i, d->sig->jscope,
                 d->j, d->sig->jrec, d->k);
    return -1;
}

int od_oom(od_dec *d) {
    return od_fail(d, NULL, 0, "out of memory (or a value or batch over 2 GiB)");
}

/* --- the row ------------------------------------------------------------------- */

void row_begin(od_builder *b) {
    int n = b->sig->ncols;
    memset(b->slot, 0, (size_t)n * sizeof *b->slot);
    for (int i = 0; i < n; i++) b->held[i].has = 0;
    b->text.n = 0;
    b->extras.n = 0;
    arena_reset(&b->dec.scratch);
}

static const char *type_name(int type) {
    static const char *names[] = {"timestamp[us, tz=UTC]", "string", "int16", "int32",
                                  "int64", "double", "decimal128", "bool"};
    return type >= 0 && type <= T_BOOL ? names[type] : "?";
}

void row_set_unfit(od_builder *b, int col, const char *what) {
    od_slot *s = &b->slot[col];
    s->present = 1;
    s->state = S_UNFIT;
    s->off = b->text.n;
    odb_printf(&b->text, "%s does not fit %s", what, type_name(b->sig->cols[col].type));
    s->len = b->text.n - s->off;
}

void row_set_int(od_builder *b, int col, int64_t v) {
    if (col < 0) return;
    int type = b->sig->cols[col].type;
    if ((type == T_I16 && (v < -32768 || v > 32767)) ||
        (type == T_I32 && (v < INT32_MIN || v > INT32_MAX))) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)v);
        row_set_unfit(b, col, t);
        return;
    }
    od_slot *s = &b->slot[col];
    s->present = 1;
    s->state = S_INT;
    s->i = v;
}

void row_set_f64(od_builder *b, int col, double v) {
    if (col < 0) return;
    od_slot *s = &b->slot[col];
    s->present = 1;
    s->state = S_F64;
    s->d = v;
}

void row_set_null(od_builder *b, int col) {
    if (col < 0) return;
    od_slot *s = &b->slot[col];
    s->present = 1;
    s->state = S_NULL;
}

void row_set_text(od_builder *b, int col, const uint8_t *p, size_t n) {
    if (col < 0) return;
    od_slot *s = &b->slot[col];
    s->present = 1;
    s->state = S_TEXT;
    s->off = b->text.n;
    odb_put(&b->text, p, n);
    s->len = b->text.n - s->off;
}

int row_text_equals(od_builder *b, int col, od_str v) {
    od_slot *s = &b->slot[col];
    if (s->state != S_TEXT || b->text.failed) return 0;
    od_str plain = od_str_plain(v, &b->dec.scratch);
    return plain.n == s->len && (s->len == 0 || memcmp(plain.p, b->text.p + s->off, s->len) == 0);
}

/* --- extras ---------------------------------------------------------------------- */

void extra_key(odb *w, const char *key) {
    if (w->n) odb_putc(w, ',');
    jw_raw_string(w, (const uint8_t *)key, strlen(key));
    odb_putc(w, ':');
}

void extra_skey(odb *w, od_str key, const char *prefix) {
    if (w->n) odb_putc(w, ',');
    odb_putc(w, '"');
    odb_puts(w, prefix);
    jw_string_body(w, key);
    odb_putc(w, '"');
    odb_putc(w, ':');
}

static int extra_value(od_dec *d, odb *w, const char *prefix, od_str key, const od_val *v) {
    extra_skey(w, key, prefix);
    return od_dump(d, w, v);
}

/* --- the split (mapping.AttributeMap.split / split_kvs) ---------------------------- */

int split_attr(od_dec *d, od_slot *slot, odb *text, odb *extras, od_held *held, const char *prefix,
               od_str key, const od_val *v) {
    od_str plain = od_str_plain(key, &d->scratch);
    const od_rule *r = od_rule_lookup(d->sig, plain.p, plain.n);
    if (!r) return extra_value(d, extras, prefix, plain, v);
    od_slot conv;
    int ok = od_convert(d, r, v, &conv, text);
    if (ok < 0) return -1;
    od_held *h = &held[r->col];
    if (h->has && h->key.n == plain.n && !memcmp(h->key.p, plain.p, plain.n)) h->last = *v;
    if (!ok) {
        if (v->kind != V_NONE) d->b->unusable[r->col]++;
        return extra_value(d, extras, prefix, plain, v);
    }
    if (!h->has || r->rank < h->rank) {
        if (h->has && extra_value(d, extras, prefix, h->key, &h->val) < 0) return -1;
        h->has = 1;
        h->rank = r->rank;
        h->key = plain;
        h->val = *v;
        h->last = *v;
        slot[r->col] = conv;
        return 0;
    }
    return extra_value(d, extras, prefix, plain, v);
}

/* --- resource contexts (mapping.resource) ------------------------------------------- */

void ctx_reset(od_ctx *c) {
    memset(c->slot, 0, sizeof c->slot);
    for (int i = 0; i < OD_MAXCOL; i++) c->held[i].has = 0;
    c->text.n = c->shared.n = c->over.n = 0;
    c->text.failed = c->shared.failed = c->over.failed = 0;
    strset_clear(&c->seen);
}

void ctx_free(od_ctx *c) {
    odb_free(&c->text);
    odb_free(&c->shared);
    odb_free(&c->over);
    free(c->seen.e);
    c->seen.e = NULL;
    c->seen.cap = 0;
}

int ctx_done(od_dec *d, od_ctx *c) {
    /* each column the context fills: "resource.<key>": its last value, kept in the record's
     * attributes when the record has its own */
    for (int col = 0; col < d->sig->ncols; col++) {
        if (!c->held[col].has) continue;
        size_t at = c->over.n;
        c->over_off[col] = at;
        odb_putc(&c->over, '"');
        odb_puts(&c->over, "resource.");
        jw_string_body(&c->over, c->held[col].key);
        odb_put(&c->over, "\":", 2);
        if (od_dump(d, &c->over, &c->held[col].last) < 0) return -1;
        c->over_len[col] = c->over.n - at;
    }
    if (c->text.failed || c->shared.failed || c->over.failed) return od_oom(d);
    return 0;
}

/* scope attributes go in with setdefault(): a key already there stays */
int ctx_scope_attr(od_dec *d, od_ctx *c, od_str key, const od_val *v, int have_name,
                   int have_version) {
    od_str plain = od_str_plain(key, &d->scratch);
    if ((have_name && plain.n == 4 && !memcmp(plain.p, "name", 4)) ||
        (have_version && plain.n == 7 && !memcmp(plain.p, "version", 7)))
        return 0;
    if (strset_add(&c->seen, plain) == 0) return 0; /* (already there) */
    if (c->seen.failed) return od_oom(d);
    extra_skey(&c->shared, plain, "scope.");
    return od_dump(d, &c->shared, v);
}

/* --- a set of strings (open addressing) ------------------------------------------------ */

int strset_add(od_strset *s, od_str k) {
    if (s->failed) return -1;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        od_str *e = calloc(cap, sizeof *e);
        if (!e) {
            s->failed = 1;
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->e[i].p) continue;
            size_t h = (size_t)od_hash(s->e[i].p, s->e[i].n) & (cap - 1);
            while (e[h].p) h = (h + 1) & (cap - 1);
            e[h] = s->e[i];
        }
        free(s->e);
        s->e = e;
        s->cap = cap;
    }
    size_t h = (size_t)od_hash(k.p, k.n) & (s->cap - 1);
    for (; s->e[h].p; h = (h + 1) & (s->cap - 1))
        if (s->e[h].n == k.n && !memcmp(s->e[h].p, k.p, k.n)) return 0;
    s->e[h] = k;
    if (!s->e[h].p) s->e[h].p = (const uint8_t *)""; /* (never NULL: NULL marks empty) */
    s->n++;
    return 1;
}

void strset_clear(od_strset *s) {
    if (s->e) memset(s->e, 0, s->cap * sizeof *s->e);
    s->n = 0;
    s->failed = 0;
}

/* --- columns ----------------------------------------------------------------------- */

static void col_validity(od_col *c, int64_t row, int valid) {
    size_t need = (size_t)(row / 8 + 1);
    if (!c->valid.p && valid) return; /* no null yet: no bitmap */
    if (!c->valid.p || c->valid.n < need) {
        size_t old = c->valid.n;
        if (need > old) {
            if (c->valid.cap - c->valid.n < need - old && odb_grow(&c->valid, need - old)) return;
            /* rows before the first null were valid */
            memset(c->valid.p + old, 0xff, need - old);
            c->valid.n = need;
        }
    }
    if (valid)
        c->valid.p[row / 8] |= (uint8_t)(1u << (row % 8));
    else
        c->valid.p[row / 8] &= (uint8_t)~(1u << (row % 8));
}

/* a fixed-width value (the buffer grows a batch at a time) */
static inline void put_fixed(od_col *c, const void *v, size_t width, int64_t batch) {
    if (c->data.cap - c->data.n < width) {
        size_t want = (size_t)(batch < 65536 ? batch : 65536) * width;
        if (odb_grow(&c->data, want > width ? want : width)) return;
    }
    memcpy(c->data.p + c->data.n, v, width);
    c->data.n += width;
}

static void col_put(od_col *c, const od_slot *s, const uint8_t *text, int64_t row, int64_t batch) {
    int null = !s->present || s->state == S_NULL || s->state == S_UNFIT;
    if (s->state == S_UNFIT && c->unfit_row < 0) {
        c->unfit_row = row;
        size_t n = s->len < sizeof c->unfit - 1 ? s->len : sizeof c->unfit - 1;
        if (n) memcpy(c->unfit, text + s->off, n); /* text is NULL when nothing was written */
        c->unfit[n] = 0;
    }
    if (null) c->nulls++;
    col_validity(c, row, !null);
    switch (c->type) {
    case T_STR: {
        if (row == 0) {
            int32_t zero = 0;
            odb_put(&c->offs, &zero, 4);
        }
        if (!null && s->len) odb_put(&c->data, text + s->off, s->len);
        if (c->data.n > OD_MAX_BUFFER) c->data.failed = 1;
        int32_t end = (int32_t)c->data.n;
        odb_put(&c->offs, &end, 4);
        break;
    }
    case T_TS:
    case T_I64: {
        int64_t v = null ? 0 : s->i;
        put_fixed(c, &v, 8, batch);
        break;
    }
    case T_I32: {
        int32_t v = null ? 0 : (int32_t)s->i;
        put_fixed(c, &v, 4, batch);
        break;
    }
    case T_I16: {
        int16_t v = null ? 0 : (int16_t)s->i;
        put_fixed(c, &v, 2, batch);
        break;
    }
    case T_F64: {
        double v = null ? 0.0 : s->d;
        put_fixed(c, &v, 8, batch);
        break;
    }
    case T_DEC: {
        int64_t v[2] = {null ? 0 : s->i, 0}; /* little-endian two's complement */
        v[1] = v[0] < 0 ? -1 : 0;
        put_fixed(c, v, 16, batch);
        break;
    }
    case T_BOOL: {
        size_t byte = (size_t)(row / 8);
        if (c->data.n <= byte) odb_putc(&c->data, 0);
        if (!null && s->i && c->data.n > byte) c->data.p[byte] |= (uint8_t)(1u << (row % 8));
        break;
    }
    }
}

static void col_reset(od_col *c) {
    memset(&c->data, 0, sizeof c->data);
    memset(&c->offs, 0, sizeof c->offs);
    memset(&c->valid, 0, sizeof c->valid);
    c->nulls = 0;
    c->unfit_row = -1;
}

static int seal(od_builder *b, od_error *err) {
    int n = b->sig->ncols;
    for (int i = 0; i < n; i++) {
        od_col *c = &b->cols[i];
        if (c->unfit_row >= 0) {
            snprintf(err->reason, sizeof err->reason, "%s", c->unfit);
            snprintf(err->field, sizeof err->field, "%s", b->sig->cols[i].name);
            err->path[0] = 0;
            err->row = b->flushed + c->unfit_row;
            return -1;
        }
        if (c->data.failed || c->offs.failed || c->valid.failed) {
            snprintf(err->reason, sizeof err->reason, "out of memory (or a batch over 2 GiB)");
            err->field[0] = err->path[0] = 0;
            err->row = -1;
            return -1;
        }
    }
    od_chunk *ch = calloc(1, sizeof *ch);
    od_column *cols = calloc((size_t)n, sizeof *cols);
    if (!ch || !cols) {
        free(ch);
        free(cols);
        snprintf(err->reason, sizeof err->reason, "out of memory");
        err->field[0] = err->path[0] = 0;
        err->row = -1;
        return -1;
    }
    ch->rows = b->rows;
    ch->ncols = n;
    ch->cols = cols;
    for (int i = 0; i < n; i++) {
        od_col *c = &b->cols[i];
        cols[i].validity = c->valid.p;
        cols[i].validity_len = c->valid.n;
        cols[i].offsets = (int32_t *)c->offs.p;
        cols[i].offsets_len = c->offs.n;
        cols[i].data = c->data.p;
        cols[i].data_len = c->data.n;
        cols[i].null_count = c->nulls;
        col_reset(c);
    }
    b->flushed += b->rows;
    b->rows = 0;
    od_chunk_free(b->ready);
    b->ready = ch;
    return 0;
}

void od_chunk_free(od_chunk *c) {
    if (!c) return;
    for (int i = 0; i < c->ncols; i++) {
        free(c->cols[i].validity);
        free(c->cols[i].offsets);
        free(c->cols[i].data);
    }
    free(c->cols);
    free(c);
}

/* --- finish (mapping.finish) and append ---------------------------------------------- */

int row_finish(od_builder *b, const od_ctx *ctx) {
    od_dec *d = &b->dec;
    int n = b->sig->ncols;
    for (int col = 0; col < n; col++) {
        const od_slot *rs = &ctx->slot[col];
        if (!rs->present) continue;
        if (b->slot[col].present) {
            if (b->extras.n) odb_putc(&b->extras, ',');
            odb_put(&b->extras, ctx->over.p + ctx->over_off[col], ctx->over_len[col]);
        } else {
            od_slot *s = &b->slot[col];
            *s = *rs;
            if (rs->state == S_TEXT || rs->state == S_UNFIT) {
                s->off = b->text.n;
                odb_put(&b->text, ctx->text.p + rs->off, rs->len);
            }
        }
    }
    /* attributes: {shared, own} (jsonb keeps the last of duplicate keys: own wins) */
    int ac = b->c.attributes;
    if (ac >= 0) {
        od_slot *s = &b->slot[ac];
        memset(s, 0, sizeof *s);
        if (ctx->shared.n || b->extras.n) {
            s->present = 1;
            s->state = S_TEXT;
            s->off = b->text.n;
            odb_putc(&b->text, '{');
            odb_put(&b->text, ctx->shared.p, ctx->shared.n);
            if (ctx->shared.n && b->extras.n) odb_putc(&b->text, ',');
            odb_put(&b->text, b->extras.p, b->extras.n);
            odb_putc(&b->text, '}');
            s->len = b->text.n - s->off;
        }
    }
    if (b->text.failed || b->extras.failed || d->scratch.failed) return od_oom(d);
    for (int col = 0; col < n; col++)
        col_put(&b->cols[col], &b->slot[col], b->text.p, b->rows, b->batch_size);
    b->rows++;
    if (b->rows >= b->batch_size) return seal(b, d->err) < 0 ? -1 : 1;
    return 0;
}

void base_reset(od_base *bs) {
    memset(bs->slot, 0, sizeof bs->slot);
    bs->text.n = bs->extra.n = 0;
    bs->text.failed = bs->extra.failed = 0;
}

void base_free(od_base *bs) {
    odb_free(&bs->text);
    odb_free(&bs->extra);
}

/* --- builders ---------------------------------------------------------------------- */

static int col_index(const od_signal *s, const char *name) {
    for (int i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i].name, name)) return i;
    return -1;
}

od_builder *od_builder_new(const od_tables *t, int signal, int64_t batch_size) {
    if (signal < 0 || signal >= t->nsig || batch_size < 1) return NULL;
    od_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->t = t;
    b->sig = &t->sig[signal];
    b->signal = signal;
    b->batch_size = batch_size;
    for (int i = 0; i < b->sig->ncols; i++) {
        b->cols[i].type = b->sig->cols[i].type;
        b->cols[i].unfit_row = -1;
    }
    od_cols *c = &b->c;
    const od_signal *s = b->sig;
    c->attributes = col_index(s, "attributes");
    c->status_code = col_index(s, "status_code");
    c->status_message = col_index(s, "status_message");
    c->error_type = col_index(s, "error_type");
    c->start_time = col_index(s, "start_time");
    c->time = col_index(s, "time");
    c->value = col_index(s, "value");
    c->metric_type = col_index(s, "metric_type");
    c->temporality = col_index(s, "temporality");
    c->sample_count = col_index(s, "sample_count");
    c->min_value = col_index(s, "min_value");
    c->max_value = col_index(s, "max_value");
    c->buckets = col_index(s, "buckets");
    c->body = col_index(s, "body");
    c->event_name = col_index(s, "event_name");
    c->metric_name = col_index(s, "metric_name");
    int ok = c->attributes >= 0;
    if (signal == SIG_TRACES) ok = ok && c->status_code >= 0 && c->status_message >= 0 && c->error_type >= 0;
    if (signal == SIG_METRICS)
        ok = ok && c->time >= 0 && c->value >= 0 && c->metric_type >= 0 && c->temporality >= 0 &&
             c->sample_count >= 0 && c->min_value >= 0 && c->max_value >= 0 && c->buckets >= 0 &&
             c->start_time >= 0;
    if (signal == SIG_LOGS) ok = ok && c->time >= 0 && c->body >= 0 && c->event_name >= 0;
    if (!ok) {
        free(b);
        return NULL;
    }
    for (int i = 0; i < 64; i++) b->fidx[i] = -1;
    for (int i = 0; i < b->sig->nfields && i < 16; i++)
        if (b->sig->fields[i].number < 64) b->fidx[b->sig->fields[i].number] = (int8_t)i;
    b->dec.t = t;
    b->dec.sig = b->sig;
    b->dec.b = b;
    b->w.level = 4;
    return b;
}

void od_builder_free(od_builder *b) {
    if (!b) return;
    for (int i = 0; i < OD_MAXCOL; i++) {
        odb_free(&b->cols[i].data);
        odb_free(&b->cols[i].offs);
        odb_free(&b->cols[i].valid);
    }
    od_chunk_free(b->ready);
    for (int i = 0; i < 4; i++) free(b->ls[i].v);
    odb_free(&b->text);
    odb_free(&b->extras);
    arena_free(&b->dec.scratch);
    ctx_free(&b->w.ctx);
    base_free(&b->w.base);
    free(b);
}

void od_builder_start(od_builder *b, od_msg *m, const char *where) {
    b->msg = m;
    snprintf(b->where, sizeof b->where, "%s", where ? where : "");
    od_dec *d = &b->dec;
    d->enc = m->enc;
    d->data = m->data;
    d->len = m->len;
    d->jidx = m->jidx.e;
    d->jn = m->jidx.n;
    d->where = b->where;
    d->i = d->j = d->k = 0;
    od_walkstate *w = &b->w;
    w->level = 0;
}

od_chunk *od_builder_take(od_builder *b) {
    od_chunk *c = b->ready;
    b->ready = NULL;
    return c;
}

int od_builder_flush(od_builder *b, od_chunk **out, od_error *err) {
    *out = NULL;
    if (b->rows == 0) return 0;
    if (seal(b, err) < 0) return -1;
    *out = od_builder_take(b);
    return 1;
}

int64_t od_builder_unusable(const od_builder *b, int col) {
    return col >= 0 && col < b->sig->ncols ? b->unusable[col] : 0;
}
