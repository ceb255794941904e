/* otlpdecode: OTLP (protobuf or OTLP/JSON) -> Arrow column buffers, in plain C.
 *
 * The pure-C API the CPython module (_otlpdecode.c) and the libFuzzer harnesses
 * (tests/fuzz/od_fuzz.c) call. No Python object is used inside: input bytes and the tables
 * (a text blob written by observatory_storage/ingest/otlp/native.py from signals.py,
 * mapping.rules() and the datasets' Arrow schemas) go in, column buffers come out.
 *
 * The semantics are those of the Python reference (sniff.py, walk.py, mapping.py,
 * proto_access.py, json_access.py); docs/otlp.md describes them.
 */
#ifndef OD_H
#define OD_H

#include <stddef.h>
#include <stdint.h>

#define OD_VERSION 1

enum { OD_PROTO = 0, OD_JSON = 1 };
enum { OD_NONE = -1, OD_ERROR = -2 };

typedef struct od_tables od_tables;
typedef struct od_msg od_msg;
typedef struct od_builder od_builder;

typedef struct {
    char reason[1024];
    char field[96];  /* the OTLP field or column named by the error; "" = none */
    char path[192];  /* the record: "resourceSpans[0].scopeSpans[1].spans[2]"; "" = none */
    int64_t row;     /* >= 0: the dataset row in the file (errors of a batch) */
} od_error;

/* One column of a sealed batch: buffers malloc'd by the decoder, owned by the caller
 * once taken (free() them). */
typedef struct {
    uint8_t *validity; /* NULL: no nulls */
    int32_t *offsets;  /* string columns: rows + 1 offsets */
    uint8_t *data;
    size_t validity_len, offsets_len, data_len;
    int64_t null_count;
} od_column;

typedef struct {
    int64_t rows;
    int ncols;
    od_column *cols;
} od_chunk;

/* Tables ------------------------------------------------------------------------- */
od_tables *od_tables_new(const char *blob, size_t len, char *err, size_t errlen);
void od_tables_free(od_tables *t);
int od_tables_nsignals(const od_tables *t);
const char *od_tables_signal_name(const od_tables *t, int signal);
int od_tables_ncols(const od_tables *t, int signal);
const char *od_tables_col_name(const od_tables *t, int signal, int col);

/* Messages: sniff the signal and validate (as upb / orjson would). The message keeps
 * pointers into `data`, which must outlive it. Returns the signal, OD_NONE (a message
 * without records: nothing to load) or OD_ERROR (err filled). */
int od_prepare(const od_tables *t, int encoding, const uint8_t *data, size_t len,
               od_msg **out, od_error *err);
void od_msg_free(od_msg *m);

/* Builders: one per signal and file; rows accumulate across messages as RowBuilder's. */
od_builder *od_builder_new(const od_tables *t, int signal, int64_t batch_size);
void od_builder_free(od_builder *b);
/* Walk `m` (prepared for this builder's signal); `where` names it in errors. */
void od_builder_start(od_builder *b, od_msg *m, const char *where);
/* 1: a batch is sealed (od_builder_take), 0: the message is done, -1: error. */
int od_builder_step(od_builder *b, od_error *err);
od_chunk *od_builder_take(od_builder *b);
/* The rows left at the end of the file: 1 (chunk in *out), 0 (none), -1 (error). */
int od_builder_flush(od_builder *b, od_chunk **out, od_error *err);
int64_t od_builder_unusable(const od_builder *b, int col);
void od_chunk_free(od_chunk *c);

/* Helpers exposed for tests: orjson's text of a double; JSON validity as orjson.loads. */
size_t od_format_double_c(double x, char *buf); /* buf: >= 32 bytes; "null" if not finite */
int od_json_valid_c(const uint8_t *s, size_t n);

#endif
