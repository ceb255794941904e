/* libFuzzer harness of the compiled OTLP decoder's pure-C core (no Python): one input is
 * one OTLP message, protobuf or OTLP/JSON (-DOD_FUZZ_JSON=0/1 at build time). Built with
 * -fsanitize=fuzzer,address,undefined by scripts/build-fuzz-decoder.sh; the tables come
 * from native.tables_blob() (OTLPDECODE_TABLES names the file).
 *
 * Beyond "no crash, no undefined behaviour, no leak": every batch's buffers must be
 * well-formed Arrow (offsets ascending within the data, bitmaps long enough), strings
 * valid UTF-8, and every jsonb column value valid JSON (as orjson reads it). */
#include <stdio.h>
#include <stdlib.h>

#include "od_int.h"

#ifndef OD_FUZZ_JSON
#define OD_FUZZ_JSON 0
#endif

static od_tables *T;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = getenv("OTLPDECODE_TABLES");
    if (!path) path = "build/fuzz/tables.txt";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "od_fuzz: cannot open the tables %s (set OTLPDECODE_TABLES)\n", path);
        abort();
    }
    static char blob[1 << 20];
    size_t n = fread(blob, 1, sizeof blob, f);
    fclose(f);
    char err[300];
    T = od_tables_new(blob, n, err, sizeof err);
    if (!T) {
        fprintf(stderr, "od_fuzz: %s\n", err);
        abort();
    }
    return 0;
}

static int jsonb(const char *name) {
    return !strcmp(name, "attributes") || !strcmp(name, "input_payload") ||
           !strcmp(name, "output_payload") || !strcmp(name, "buckets");
}

static void check(const od_signal *s, const od_chunk *c) {
    static const size_t width[] = {8, 0, 2, 4, 8, 8, 16, 0};
    if (c->ncols != s->ncols || c->rows < 1) abort();
    for (int i = 0; i < c->ncols; i++) {
        const od_column *col = &c->cols[i];
        int type = s->cols[i].type;
        if (col->validity && col->validity_len < (size_t)(c->rows + 7) / 8) abort();
        if (!col->validity && col->null_count) abort();
        if (col->null_count < 0 || col->null_count > c->rows) abort();
        if (type == T_STR) {
            if (col->offsets_len != (size_t)(c->rows + 1) * 4) abort();
            for (int64_t r = 0; r < c->rows; r++) {
                int32_t a = col->offsets[r], b = col->offsets[r + 1];
                if (a < 0 || b < a || (size_t)b > col->data_len) abort();
                const uint8_t *v = col->data ? col->data + a : (const uint8_t *)"";
                int valid = !col->validity || (col->validity[r / 8] >> (r % 8) & 1);
                if (!od_utf8_valid(v, (size_t)(b - a))) abort();
                if (valid && jsonb(s->cols[i].name) && !od_json_valid_c(v, (size_t)(b - a))) {
                    fprintf(stderr, "od_fuzz: %s row %lld is not JSON: %.*s\n", s->cols[i].name,
                            (long long)r, (int)(b - a), (const char *)v);
                    abort();
                }
            }
        } else if (col->data_len != (size_t)c->rows * width[type]) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    od_msg *m;
    od_error err;
    int s = od_prepare(T, OD_FUZZ_JSON ? OD_JSON : OD_PROTO, data, size, &m, &err);
    if (s < 0) return 0;
    /* small batches (sealed often), and the message twice: rows accumulate across messages */
    od_builder *b = od_builder_new(T, s, 1 + (int64_t)(size % 3));
    if (!b) abort();
    for (int pass = 0; pass < 2; pass++) {
        od_builder_start(b, m, pass ? "message 2" : "message 1");
        int r;
        while ((r = od_builder_step(b, &err)) > 0) {
            od_chunk *c = od_builder_take(b);
            check(&T->sig[s], c);
            od_chunk_free(c);
        }
        if (r < 0) {
            if (!err.reason[0]) abort(); /* an error always says why */
            break;
        }
        if (pass == 1) {
            od_chunk *c;
            if (od_builder_flush(b, &c, &err) > 0) {
                check(&T->sig[s], c);
                od_chunk_free(c);
            }
        }
    }
    od_builder_free(b);
    od_msg_free(m);
    return 0;
}

#ifdef OD_FUZZ_MAIN
/* Replay without libFuzzer (e.g. under valgrind): od_replay_proto FILE... */
int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
        if (!data || (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)) abort();
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        free(data);
    }
    od_tables_free(T);
    return 0;
}
#endif
