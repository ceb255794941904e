"""Structure-aware mutations of real OTLP messages, for the differential fuzzing of the two
decoders (tests/fuzz/otlp_diff.py): seeds made by the OpenTelemetry SDK (generate_otlp),
then the things files in the wild (and attackers) do — wrong JSON types, duplicate keys,
members in any order, escapes, odd numbers and enum names, deep nesting; protobuf fields
repeated, reordered, of the wrong wire type, overlong varints, unknown fields, bad UTF-8,
truncation. Every choice comes from one ``random.Random``: a seed replays a case.
"""

from __future__ import annotations

import json
import random
import struct

from observatory_storage import generate_otlp as otlp
from observatory_storage.datasets import DATASETS


class Obj(list):
    """A JSON object as its member list (duplicates and order kept)."""


def parse(text: bytes):
    return json.loads(text, object_pairs_hook=lambda pairs: Obj([list(p) for p in pairs]))


_NAMES = sorted({name for ds in DATASETS.values() for c in ds.columns for name in c.otel})
_KEYS = ["resourceSpans", "resourceMetrics", "resourceLogs", "resource", "attributes", "scopeSpans",
         "scopeMetrics", "scopeLogs", "scope", "spans", "metrics", "logRecords", "schemaUrl", "name",
         "version", "traceId", "spanId", "parentSpanId", "traceState", "flags", "kind", "status",
         "code", "message", "events", "links", "startTimeUnixNano", "endTimeUnixNano",
         "timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body",
         "eventName", "droppedAttributesCount", "gauge", "sum", "histogram",
         "exponentialHistogram", "summary", "dataPoints", "asDouble", "asInt", "count",
         "explicitBounds", "bucketCounts", "min", "max", "scale", "zeroCount", "zeroThreshold",
         "positive", "negative", "offset", "quantileValues", "quantile", "value", "exemplars",
         "filteredAttributes", "aggregationTemporality", "isMonotonic", "metadata", "unit",
         "description", "key", "stringValue", "intValue", "doubleValue", "boolValue",
         "bytesValue", "arrayValue", "kvlistValue", "values"]
_SCALARS = [None, True, False, 0, 1, -1, 7, 40000, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -2**63,
            0.0, -0.0, 0.5, 1.5, 1e-7, 1e16, 1e300, 123456789.123456789, 0.00023099999999999998,
            "", "0", "1", "-5", " 7 ", "+3", "1.", ".5", "1e5", "1e999", "5_000", "٣", "0x10",
            "NaN", "nan", "Infinity", "-Infinity", "inf", "abc", "true", "null", "[1, 2]",
            '{"a": 1}', "ab" * 16, "AB" * 16, "0" * 32, "0" * 16, "cd" * 8, "ASNFZ4mrze8BI0VniavN7w==",
            "AAEC", "\x00", "a\x00b", "\u00e9t\u00e9", "\U0001f600", "\u2028", "ÉRROR", "ERROR", "OK",
            "unset", "SPAN_KIND_SERVER", "SPAN_KIND_UNSPECIFIED", "STATUS_CODE_ERROR",
            "SEVERITY_NUMBER_WARN", "SEVERITY_NUMBER_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
            "AGGREGATION_TEMPORALITY_UNSPECIFIED", "exception", "exception.type", "stop",
            "999999999.9999999996", "-0.0000000005", "0.0000000015", "1e-400", "123456789012345678901234567890"]
_ANY_KEYS = ["stringValue", "intValue", "doubleValue", "boolValue", "bytesValue", "arrayValue",
             "kvlistValue"]


def random_scalar(rng: random.Random):
    return rng.choice(_SCALARS)


def random_any(rng: random.Random, depth: int = 0):
    """An OTLP/JSON AnyValue (mostly well-formed, sometimes not)."""
    r = rng.random()
    if depth > 3 or r < 0.45:
        key = rng.choice(_ANY_KEYS[:5])
        return Obj([[key, random_scalar(rng)]])
    if r < 0.6:
        return Obj([["arrayValue", Obj([["values", [random_any(rng, depth + 1)
                                                   for _ in range(rng.randrange(4))]]])]])
    if r < 0.75:
        return Obj([["kvlistValue", Obj([["values", [
            Obj([["key", rng.choice(_NAMES + ["a", "a", ""])], ["value", random_any(rng, depth + 1)]])
            for _ in range(rng.randrange(4))]]])]])
    if r < 0.85:  # several members at once
        return Obj([[k, random_scalar(rng)] for k in rng.sample(_ANY_KEYS[:5], 2)])
    return random_scalar(rng)


def random_attribute(rng: random.Random):
    key = rng.choice(_NAMES) if rng.random() < 0.7 else rng.choice(["x", "a.b", "resource.x", "events", ""])
    kv = Obj([["key", key], ["value", random_any(rng)]])
    if rng.random() < 0.05:
        kv.append(["key", rng.choice(_NAMES)])
    return kv


def deep_any(depth: int, kind: str = "array"):
    v = Obj([["stringValue", "x"]])
    for _ in range(depth):
        if kind == "array":
            v = Obj([["arrayValue", Obj([["values", [v]]])]])
        else:
            v = Obj([["kvlistValue", Obj([["values", [Obj([["key", "k"], ["value", v]])]]])]])
    return v


def plain(v):
    """Obj trees as dicts (the last of duplicate keys kept), for json.dumps."""
    if isinstance(v, Obj):
        return {k: plain(x) for k, x in v}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def _nodes(v, path=()):
    """(path, value) of every node."""
    yield path, v
    if isinstance(v, Obj):
        for i, (_, x) in enumerate(v):
            yield from _nodes(x, (*path, i))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _nodes(x, (*path, i))


def _get(v, path):
    for i in path:
        v = v[i][1] if isinstance(v, Obj) else v[i]
    return v


def _set(root, path, new):
    parent = _get(root, path[:-1])
    if isinstance(parent, Obj):
        parent[path[-1]][1] = new
    else:
        parent[path[-1]] = new


_GOOD_ANY = [("stringValue", ["", "x", "stop", "ERROR", "Ok", "{\"role\": \"user\"}", "[1, 2]",
                              "12", " 7 ", "0.0123", "1e-7", "gpt-4o", "\u00e9\U0001f600", "a\x00b",
                              "999999999.9999999996", "NaN"]),
             ("intValue", [0, 5, -3, "12", "-9223372036854775808", "18446744073709551615",
                           2**31, 2**31 - 1, -2**31 - 1, 40000, 2**63]),
             ("doubleValue", [0.0, -0.0, 0.5, 1.5, 0.0123, 0.00023099999999999998, 1e16, 1e-7,
                              2.5e-10, 1e300, "NaN", "Infinity", "-Infinity", "1.5", 3, 2**53 + 1]),
             ("boolValue", [True, False, 0, 1, "", "false"]),
             ("bytesValue", ["", "AAEC", "MTIz", "AAECAwQFBgc="])]


def good_any(rng: random.Random, depth: int = 0):
    """A well-formed AnyValue (the kinds and values producers write)."""
    r = rng.random()
    if depth > 2 or r < 0.7:
        key, values = rng.choice(_GOOD_ANY)
        return Obj([[key, rng.choice(values)]])
    if r < 0.85:
        return Obj([["arrayValue", Obj([["values", [good_any(rng, depth + 1)
                                                   for _ in range(rng.randrange(4))]]])]])
    return Obj([["kvlistValue", Obj([["values", [
        Obj([["key", rng.choice(["a", "b", "a", "x.y", ""])], ["value", good_any(rng, depth + 1)]])
        for _ in range(rng.randrange(4))]]])]])


def mutate_json_mild(doc, rng: random.Random, n: int = 1):
    """Mutations that keep a document loadable, mostly: attributes (mapped names with odd
    but well-typed values), duplicate and reordered members, enum names, ints as text."""
    for _ in range(n):
        nodes = [(p, v) for p, v in _nodes(doc) if isinstance(v, Obj)]
        path, node = rng.choice(nodes)
        op = rng.random()
        attrs = next((m for m in node if m[0] == "attributes" and isinstance(m[1], list)), None)
        if op < 0.5 and attrs is not None:
            name = rng.choice(_NAMES) if rng.random() < 0.8 else rng.choice(["x", "exception.type", "name"])
            attrs[1].insert(rng.randrange(len(attrs[1]) + 1),
                            Obj([["key", name], ["value", good_any(rng)]]))
        elif op < 0.65 and node:
            i = rng.randrange(len(node))
            node.insert(rng.randrange(len(node) + 1), [node[i][0], node[i][1]])
        elif op < 0.75:
            rng.shuffle(node)
        elif op < 0.85:
            for m in node:
                if m[0] == "kind" and isinstance(m[1], int):
                    m[1] = rng.choice(["SPAN_KIND_CLIENT", "SPAN_KIND_UNSPECIFIED", 0, 6, "3"])
                elif m[0] == "code":
                    m[1] = rng.choice(["STATUS_CODE_ERROR", "STATUS_CODE_OK", 0, 1, 2, 3, "2"])
                elif m[0] == "severityNumber":
                    m[1] = rng.choice(["SEVERITY_NUMBER_WARN", "SEVERITY_NUMBER_UNSPECIFIED", 0, 24, 40000, "9"])
                elif m[0] == "aggregationTemporality":
                    m[1] = rng.choice(["AGGREGATION_TEMPORALITY_DELTA", 0, 1, 2, 3])
        elif op < 0.92:
            for m in node:
                if isinstance(m[1], str) and m[1].isdigit():
                    m[1] = int(m[1]) if rng.random() < 0.5 else f" {m[1]} "
                elif isinstance(m[1], int) and not isinstance(m[1], bool):
                    m[1] = str(m[1])
        else:
            node.append(["status", Obj([["code", rng.choice([0, 2, "STATUS_CODE_ERROR"])],
                                        ["message", rng.choice(["", "boom", "\u00e9"])]])])
    return doc


def mutate_json(doc, rng: random.Random, n: int = 1):
    for _ in range(n):
        nodes = list(_nodes(doc))
        path, node = rng.choice(nodes)
        op = rng.random()
        if op < 0.3 and path:
            _set(doc, path, random_scalar(rng) if rng.random() < 0.6 else random_any(rng))
        elif op < 0.42 and isinstance(node, Obj) and node:
            i = rng.randrange(len(node))
            if rng.random() < 0.5:
                del node[i]
            else:  # a duplicate member, before or after, with another value
                node.insert(rng.randrange(len(node) + 1), [node[i][0], random_scalar(rng)])
        elif op < 0.5 and isinstance(node, Obj):
            node.append([rng.choice(_KEYS), random_scalar(rng) if rng.random() < 0.5 else random_any(rng)])
        elif op < 0.56 and isinstance(node, Obj):
            rng.shuffle(node)
        elif op < 0.75 and isinstance(node, Obj):
            attrs = next((m for m in node if m[0] == "attributes" and isinstance(m[1], list)), None)
            if attrs is not None:
                attrs[1].insert(rng.randrange(len(attrs[1]) + 1), random_attribute(rng))
            else:
                node.append(["attributes", [random_attribute(rng) for _ in range(rng.randrange(1, 4))]])
        elif op < 0.8 and isinstance(node, list) and node:
            node.append(node[rng.randrange(len(node))])
        elif op < 0.84 and path:
            _set(doc, path, [node] if rng.random() < 0.5 else Obj([["x", node]]))
        elif op < 0.87 and isinstance(node, Obj):
            node.append(["attributes", [Obj([["key", "deep"], ["value", deep_any(
                rng.choice([30, 31, 32, 45, 46, 47, 48, 49, 60]), rng.choice(["array", "kvlist"]))]])]])
        elif op < 0.92 and isinstance(node, Obj):  # an event or link
            node.append([rng.choice(["events", "links", "exemplars"]), [Obj([
                ["name", rng.choice(["exception", "other", 5])], ["timeUnixNano", random_scalar(rng)],
                ["traceId", rng.choice(["ab" * 16, "AB" * 16, "0" * 32, "", None, 5])],
                ["spanId", rng.choice(["cd" * 8, "", "0" * 16])],
                ["attributes", [Obj([["key", "exception.type"], ["value", random_any(rng)]])]]])]])
        elif path:
            _set(doc, path, random_scalar(rng))
    return doc


def _escape_char(c: str) -> str:
    o = ord(c)
    if o >= 0x10000:
        o -= 0x10000
        return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04X}"
    return f"\\u{o:04x}"


def dump_json(v, rng: random.Random, escapes: float = 0.02, spaces: float = 0.05) -> str:
    def ws():
        return rng.choice([" ", "\n", "\t", "\r\n  "]) if rng.random() < spaces else ""

    def string(s: str) -> str:
        out = []
        for c in s:
            if c in '"\\' or ord(c) < 0x20:
                out.append(json.dumps(c)[1:-1])
            elif rng.random() < escapes:
                out.append(_escape_char(c) if rng.random() < 0.8 else {"/": "\\/"}.get(c, c))
            else:
                out.append(c)
        return '"' + "".join(out) + '"'

    def go(x) -> str:
        if isinstance(x, Obj):
            return "{" + ws() + ",".join(f"{ws()}{string(k)}{ws()}:{ws()}{go(val)}{ws()}"
                                        for k, val in x) + "}"
        if isinstance(x, list):
            return "[" + ",".join(ws() + go(e) + ws() for e in x) + "]"
        if isinstance(x, str):
            return string(x)
        if isinstance(x, float):
            if x != x or x in (float("inf"), float("-inf")):
                return "null"
            return rng.choice([repr(x), f"{x:.17g}", f"{x:e}"]) if rng.random() < 0.2 else repr(x)
        if isinstance(x, bool) or x is None:
            return json.dumps(x)
        if isinstance(x, int) and floats and rng.random() < 0.3:
            return f"{x}.0" if rng.random() < 0.5 else f"{x}e0"
        return str(x)

    floats = rng.random() < 0.05  # integers written as floats (refused where ints are due)
    return go(v)


# --- protobuf ------------------------------------------------------------------------------

def _varint(n: int, extra: int = 0) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n or extra:
            out.append(b | 0x80)
            if not n:
                extra -= 1
                while extra > 0:
                    out.append(0x80)
                    extra -= 1
                out.append(0)
                return bytes(out)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def parse_pb(data: bytes, depth: int = 0):
    """A wire-format tree: [num, wt, value] with value int, bytes, or a sub-tree (list)
    when a length-delimited payload parses as a message."""
    fields, i = [], 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        num, wt = tag >> 3, tag & 7
        if num == 0:
            raise ValueError
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 1:
            if i + 8 > len(data):
                raise ValueError
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            if i + 4 > len(data):
                raise ValueError
            v, i = data[i:i + 4], i + 4
        elif wt == 2:
            n, i = _read_varint(data, i)
            if i + n > len(data):
                raise ValueError
            v, i = data[i:i + n], i + n
            if depth < 12 and v:
                try:
                    v = parse_pb(v, depth + 1)
                except ValueError:
                    pass
        else:
            raise ValueError
        fields.append([num, wt, v])
    return fields


def dump_pb(fields, rng: random.Random | None = None) -> bytes:
    out = bytearray()
    for num, wt, v in fields:
        extra = 1 if rng is not None and rng.random() < 0.02 else 0
        out += _varint(num << 3 | wt)
        if wt == 0:
            out += _varint(v, extra)
        elif wt in (1, 5):
            out += v
        elif wt == 2:
            payload = dump_pb(v, rng) if isinstance(v, list) else v
            out += _varint(len(payload), extra) + payload
        elif wt == 3:
            out += dump_pb(v, rng) + _varint(num << 3 | 4)
    return bytes(out)


_PB_INTS = [0, 1, 2, 3, 5, 7, 99, 40000, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 3, 2**63 - 1, 2**63,
            2**64 - 1, 1700000000000000000]
_PB_BYTES = [b"", b"\x00" * 16, b"\x01" * 16, b"\x02" * 8, b"\x00" * 8, b"\x01" * 15, b"abc",
             b"\xff", b"\xed\xa0\x80", b"\xc0\x80", "é\U0001f600".encode(), b"a\x00b",
             b'{"a": 1}', b"[1,2]", b"1e5", b"  12 ", b"0.000231", b"NaN", b"ERROR", b"exception",
             b"gen_ai.usage.cost", b"gen_ai.usage.input_tokens", b"exception.type", b"service.name"]


def _pb_nodes(fields, path=()):
    for i, f in enumerate(fields):
        yield (*path, i), fields, f
        if isinstance(f[2], list):
            yield from _pb_nodes(f[2], (*path, i))


def mutate_pb(fields, rng: random.Random, n: int = 1):
    for _ in range(n):
        nodes = list(_pb_nodes(fields))
        if not nodes:
            fields.append([rng.randrange(1, 20), 2, b""])
            continue
        _, parent, f = rng.choice(nodes)
        op = rng.random()
        if op < 0.2:  # the same field again (merge semantics), maybe mutated
            copy = [f[0], f[1], f[2] if not isinstance(f[2], list) else [list(x) for x in f[2]]]
            parent.insert(rng.randrange(len(parent) + 1), copy)
        elif op < 0.3:
            parent.remove(f)
        elif op < 0.45 and f[1] == 0:
            f[2] = rng.choice(_PB_INTS)
        elif op < 0.55 and f[1] in (1, 5):
            size = 8 if f[1] == 1 else 4
            f[2] = rng.choice([struct.pack("<d", rng.choice([float("nan"), float("inf"), -0.0, 1e300, 0.5,
                                                            0.00023099999999999998]))[:size],
                               rng.randbytes(size), b"\x00" * size, b"\xff" * size])
        elif op < 0.65 and f[1] == 2:
            f[2] = rng.choice(_PB_BYTES)
        elif op < 0.72:  # another wire type for the same number
            wt = rng.choice([0, 1, 2, 5])
            f[1], f[2] = wt, {0: rng.choice(_PB_INTS), 1: b"\x00" * 8, 2: b"", 5: b"\x00" * 4}[wt]
        elif op < 0.8:  # an unknown field
            wt = rng.choice([0, 1, 2, 5, 3])
            v = {0: rng.choice(_PB_INTS), 1: rng.randbytes(8), 2: rng.randbytes(rng.randrange(6)),
                 5: rng.randbytes(4), 3: [[rng.randrange(1, 30), 0, 1]]}[wt]
            parent.insert(rng.randrange(len(parent) + 1), [rng.choice([20, 30, 99, 536870911]), wt, v])
        elif op < 0.87 and isinstance(f[2], list):
            rng.shuffle(f[2])
        elif op < 0.92:
            rng.shuffle(parent)
        else:
            f[0] = rng.randrange(1, 16)
    return fields


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    op = rng.random()
    if not b:
        return bytes(rng.randbytes(rng.randrange(1, 8)))
    if op < 0.3:
        b[rng.randrange(len(b))] = rng.randrange(256)
    elif op < 0.5:
        return bytes(b[: rng.randrange(len(b))])
    elif op < 0.7:
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randrange(1, 5))
    else:
        i = rng.randrange(len(b))
        del b[i: i + rng.randrange(1, 5)]
    return bytes(b)


# --- seeds -------------------------------------------------------------------------------------

def seed_messages(seed: int = 0) -> dict[str, list[bytes]]:
    """Small SDK-made messages of each signal, per encoding."""
    spans = otlp.genai_spans(6, seed=seed)
    items = {"traces": spans, "metrics": otlp.sdk_metrics(seed=seed),
             "logs": otlp.sdk_logs(6, spans=spans, seed=seed)}
    return {enc: [otlp.encode(sig, it, enc) for sig, it in items.items()] for enc in ("proto", "json")}


def case(rng: random.Random, seeds: dict[str, list[bytes]]) -> tuple[str, bytes]:
    """(encoding, message) — one random mutation case."""
    enc = rng.choice(["proto", "json"])
    base = rng.choice(seeds[enc])
    rounds = rng.choice([1, 1, 2, 3, 5])
    if enc == "json":
        r = rng.random()
        if r < 0.08:
            return enc, mutate_bytes(base, rng)
        doc = parse(base)
        if r < 0.6:
            doc = mutate_json_mild(doc, rng, rounds * 2)
        else:
            doc = mutate_json(doc, rng, rounds)
        return enc, dump_json(doc, rng).encode()
    if rng.random() < 0.15:
        return enc, mutate_bytes(base, rng)
    return enc, dump_pb(mutate_pb(parse_pb(base), rng, rounds), rng)
