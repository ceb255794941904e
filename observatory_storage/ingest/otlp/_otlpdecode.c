/* _otlpdecode: the CPython face of the compiled OTLP decoder (csrc/, plain C).
 *
 * Tables(blob) parses the tables once; Tables.prepare(encoding, data) sniffs and validates
 * one message; Tables.builder(signal, batch_size) accumulates rows like mapping.RowBuilder;
 * Builder.start(msg, where) / step() / flush() hand out sealed batches as column buffers
 * (Buffer objects owning the memory the C code filled, for pyarrow.Array.from_buffers).
 * The C code holds no Python object; the GIL is released while it runs.
 * observatory_storage/ingest/otlp/native.py is the Python side. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "csrc/od.h"

static PyObject *DecodeError; /* args: (reason, field, path, row) */

/* --- Buffer ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD void *p;
    Py_ssize_t n;
} Buffer;

static void Buffer_dealloc(Buffer *self) {
    free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Buffer_getbuffer(Buffer *self, Py_buffer *view, int flags) {
    static char empty[8];
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p ? self->p : empty, self->n, 1, flags);
}

static PyBufferProcs Buffer_as_buffer = {(getbufferproc)Buffer_getbuffer, NULL};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_otlpdecode.Buffer",
    .tp_basicsize = sizeof(Buffer),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_buffer = &Buffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory filled by the decoder (read-only, freed with the object).",
};

/* takes ownership of p (freed on failure too); NULL p -> None */
static PyObject *buffer_new(void *p, size_t n) {
    if (!p) Py_RETURN_NONE;
    Buffer *b = PyObject_New(Buffer, &BufferType);
    if (!b) {
        free(p);
        return NULL;
    }
    b->p = p;
    b->n = (Py_ssize_t)n;
    return (PyObject *)b;
}

/* --- Tables, Msg, Builder ----------------------------------------------------------- */

typedef struct {
    PyObject_HEAD od_tables *t;
} Tables;

typedef struct {
    PyObject_HEAD od_msg *m;
    Py_buffer view;
    int has_view;
    int signal;
} Msg;

typedef struct {
    PyObject_HEAD od_builder *b;
    PyObject *tables;
    PyObject *msg;
    int signal;
} Builder;

static PyTypeObject TablesType, MsgType, BuilderType;

static PyObject *text(const char *s) {
    /* (a reason cut at its buffer's end may end inside a UTF-8 sequence) */
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *raise_error(const od_error *e) {
    PyObject *reason = text(e->reason), *field = text(e->field), *path = text(e->path);
    PyObject *args = reason && field && path ? Py_BuildValue("(OOOL)", reason, field, path, (long long)e->row) : NULL;
    Py_XDECREF(reason);
    Py_XDECREF(field);
    Py_XDECREF(path);
    if (args) {
        PyErr_SetObject(DecodeError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static int Tables_init(Tables *self, PyObject *args, PyObject *kw) {
    Py_buffer blob;
    static char *names[] = {"blob", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*", names, &blob)) return -1;
    char err[300] = "";
    od_tables_free(self->t);
    self->t = od_tables_new(blob.buf, (size_t)blob.len, err, sizeof err);
    PyBuffer_Release(&blob);
    if (!self->t) {
        PyErr_Format(PyExc_ValueError, "otlpdecode tables: %s", err);
        return -1;
    }
    return 0;
}

static void Tables_dealloc(Tables *self) {
    od_tables_free(self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Tables_prepare(Tables *self, PyObject *args) {
    int encoding;
    PyObject *data;
    if (!self->t) return PyErr_Format(PyExc_RuntimeError, "tables not initialized");
    if (!PyArg_ParseTuple(args, "iO", &encoding, &data)) return NULL;
    Msg *m = PyObject_New(Msg, &MsgType);
    if (!m) return NULL;
    m->m = NULL;
    m->has_view = 0;
    m->signal = -1;
    if (PyObject_GetBuffer(data, &m->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    m->has_view = 1;
    od_error e;
    int r;
    Py_BEGIN_ALLOW_THREADS r = od_prepare(self->t, encoding, m->view.buf, (size_t)m->view.len, &m->m, &e);
    Py_END_ALLOW_THREADS if (r == OD_ERROR) {
        Py_DECREF(m);
        return raise_error(&e);
    }
    if (r == OD_NONE) {
        Py_DECREF(m);
        return Py_BuildValue("(iO)", -1, Py_None);
    }
    m->signal = r;
    PyObject *out = Py_BuildValue("(iO)", r, (PyObject *)m);
    Py_DECREF(m);
    return out;
}

static PyObject *Tables_builder(Tables *self, PyObject *args) {
    int signal;
    long long batch;
    if (!self->t) return PyErr_Format(PyExc_RuntimeError, "tables not initialized");
    if (!PyArg_ParseTuple(args, "iL", &signal, &batch)) return NULL;
    if (batch < 1) return PyErr_Format(PyExc_ValueError, "batch_size must be >= 1");
    Builder *b = PyObject_New(Builder, &BuilderType);
    if (!b) return NULL;
    b->msg = NULL;
    b->signal = signal;
    b->tables = (PyObject *)self;
    Py_INCREF(self);
    b->b = od_builder_new(self->t, signal, batch);
    if (!b->b) {
        Py_DECREF(b);
        return PyErr_Format(PyExc_ValueError, "no builder for signal %d (columns missing?)", signal);
    }
    return (PyObject *)b;
}

static PyObject *Tables_columns(Tables *self, PyObject *args) {
    int signal;
    if (!PyArg_ParseTuple(args, "i", &signal)) return NULL;
    int n = od_tables_ncols(self->t, signal);
    PyObject *out = PyList_New(n);
    for (int i = 0; out && i < n; i++) PyList_SET_ITEM(out, i, PyUnicode_FromString(od_tables_col_name(self->t, signal, i)));
    return out;
}

static PyMethodDef Tables_methods[] = {
    {"prepare", (PyCFunction)Tables_prepare, METH_VARARGS,
     "prepare(encoding, data) -> (signal, msg): sniff and validate one message (signal -1: no records)"},
    {"builder", (PyCFunction)Tables_builder, METH_VARARGS, "builder(signal, batch_size) -> Builder"},
    {"columns", (PyCFunction)Tables_columns, METH_VARARGS, "columns(signal) -> column names"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_otlpdecode.Tables",
    .tp_basicsize = sizeof(Tables),
    .tp_dealloc = (destructor)Tables_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tables(blob): the decoder's tables, parsed once.",
    .tp_methods = Tables_methods,
    .tp_init = (initproc)Tables_init,
    .tp_new = PyType_GenericNew,
};

static void Msg_dealloc(Msg *self) {
    od_msg_free(self->m);
    if (self->has_view) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject MsgType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_otlpdecode.Msg",
    .tp_basicsize = sizeof(Msg),
    .tp_dealloc = (destructor)Msg_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A validated message (keeps its bytes alive).",
};

static void Builder_dealloc(Builder *self) {
    od_builder_free(self->b);
    Py_XDECREF(self->msg);
    Py_XDECREF(self->tables);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *chunk_to_python(od_chunk *c) {
    PyObject *cols = PyList_New(c->ncols);
    if (!cols) {
        od_chunk_free(c);
        return NULL;
    }
    for (int i = 0; i < c->ncols; i++) {
        od_column *col = &c->cols[i];
        PyObject *v = buffer_new(col->validity, col->validity_len);
        col->validity = NULL;
        PyObject *o = buffer_new(col->offsets, col->offsets_len);
        col->offsets = NULL;
        PyObject *d = buffer_new(col->data, col->data_len);
        col->data = NULL;
        PyObject *item = (v && o && d) ? Py_BuildValue("(OOOL)", v, o, d, (long long)col->null_count) : NULL;
        Py_XDECREF(v);
        Py_XDECREF(o);
        Py_XDECREF(d);
        if (!item) {
            Py_DECREF(cols);
            od_chunk_free(c);
            return NULL;
        }
        PyList_SET_ITEM(cols, i, item);
    }
    PyObject *out = Py_BuildValue("(LO)", (long long)c->rows, cols);
    Py_DECREF(cols);
    od_chunk_free(c);
    return out;
}

static PyObject *Builder_start(Builder *self, PyObject *args) {
    PyObject *msg;
    const char *where;
    if (!PyArg_ParseTuple(args, "O!s", &MsgType, &msg, &where)) return NULL;
    Msg *m = (Msg *)msg;
    if (!m->m) return PyErr_Format(PyExc_ValueError, "an empty message");
    Py_INCREF(msg);
    Py_XSETREF(self->msg, msg);
    od_builder_start(self->b, m->m, where);
    Py_RETURN_NONE;
}

static PyObject *Builder_step(Builder *self, PyObject *unused) {
    (void)unused;
    od_error e;
    int r;
    if (!self->msg) Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS r = od_builder_step(self->b, &e);
    Py_END_ALLOW_THREADS if (r < 0) return raise_error(&e);
    if (r == 0) {
        Py_CLEAR(self->msg);
        Py_RETURN_NONE;
    }
    return chunk_to_python(od_builder_take(self->b));
}

static PyObject *Builder_flush(Builder *self, PyObject *unused) {
    (void)unused;
    od_error e;
    od_chunk *c;
    int r = od_builder_flush(self->b, &c, &e);
    if (r < 0) return raise_error(&e);
    if (r == 0) Py_RETURN_NONE;
    return chunk_to_python(c);
}

static PyObject *Builder_unusable(Builder *self, PyObject *unused) {
    (void)unused;
    int n = od_tables_ncols(((Tables *)self->tables)->t, self->signal);
    PyObject *out = PyList_New(n);
    for (int i = 0; out && i < n; i++) {
        PyObject *v = PyLong_FromLongLong((long long)od_builder_unusable(self->b, i));
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyMethodDef Builder_methods[] = {
    {"start", (PyCFunction)Builder_start, METH_VARARGS, "start(msg, where): walk this message next"},
    {"step", (PyCFunction)Builder_step, METH_NOARGS,
     "step() -> (rows, columns) of a sealed batch, or None when the message is done"},
    {"flush", (PyCFunction)Builder_flush, METH_NOARGS, "flush() -> the rows left, or None"},
    {"unusable", (PyCFunction)Builder_unusable, METH_NOARGS,
     "unusable() -> per column: attribute values kept in attributes (did not fit)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_otlpdecode.Builder",
    .tp_basicsize = sizeof(Builder),
    .tp_dealloc = (destructor)Builder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Rows of one signal, in batches (as mapping.RowBuilder).",
    .tp_methods = Builder_methods,
};

/* --- module -------------------------------------------------------------------------- */

static PyObject *format_double(PyObject *self, PyObject *arg) {
    (void)self;
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    char buf[40];
    size_t n = od_format_double_c(x, buf);
    return PyUnicode_FromStringAndSize(buf, (Py_ssize_t)n);
}

static PyObject *json_valid(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    int r = od_json_valid_c(b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyBool_FromLong(r);
}

static PyMethodDef module_methods[] = {
    {"format_double", format_double, METH_O, "orjson's text of a double (tests)"},
    {"json_valid", json_valid, METH_O, "whether orjson.loads accepts these bytes (tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_otlpdecode",
                                       "Compiled OTLP -> Arrow decoder (see native.py).", -1,
                                       module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__otlpdecode(void) {
    if (PyType_Ready(&BufferType) < 0 || PyType_Ready(&TablesType) < 0 || PyType_Ready(&MsgType) < 0 ||
        PyType_Ready(&BuilderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    DecodeError = PyErr_NewException("_otlpdecode.DecodeError", NULL, NULL);
    if (!DecodeError || PyModule_AddObject(m, "DecodeError", DecodeError) < 0) goto fail;
    Py_INCREF(DecodeError);
    Py_INCREF(&TablesType);
    if (PyModule_AddObject(m, "Tables", (PyObject *)&TablesType) < 0) goto fail;
    PyModule_AddIntConstant(m, "VERSION", OD_VERSION);
#ifndef OD_SOURCE_HASH
#define OD_SOURCE_HASH ""
#endif
    PyModule_AddStringConstant(m, "SOURCE_HASH", OD_SOURCE_HASH);
    PyModule_AddIntConstant(m, "PROTO", OD_PROTO);
    PyModule_AddIntConstant(m, "JSON", OD_JSON);
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
