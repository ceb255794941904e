"""Writes the committed fuzz corpus (tests/fuzz/corpus/): small OTLP messages made by the
OpenTelemetry SDK and encoded by its own encoders (generate_otlp), both encodings, every
signal, and files in every layout and compression the reader detects (for the atheris
harness, which fuzzes whole files). Re-run after changing generate_otlp:
``python -m tests.fuzz.make_corpus``. Regression inputs (crashes found and fixed) live
next to them as regress-*: never regenerated."""

from __future__ import annotations

import hashlib
from pathlib import Path

from observatory_storage import generate_otlp as otlp

HERE = Path(__file__).resolve().parent / "corpus"


def messages() -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {"proto": {}, "json": {}}
    for seed in range(3):
        spans = otlp.genai_spans(3 + seed, seed=seed)
        items = {"traces": spans, "logs": otlp.sdk_logs(4 + seed, spans=spans, seed=seed)}
        if seed == 0:
            items["metrics"] = otlp.sdk_metrics(seed=seed)
        for signal, it in items.items():
            for encoding in ("proto", "json"):
                out[encoding][f"sdk-{signal}-{seed}"] = otlp.encode(signal, it, encoding)
    return out


def files() -> dict[str, bytes]:
    spans = otlp.genai_spans(4, seed=7)
    out = {}
    for encoding in otlp.ENCODINGS:
        parts = [otlp.encode("traces", spans[:2], encoding), otlp.encode("traces", spans[2:], encoding)]
        for layout in otlp.LAYOUTS:
            if layout == "lines" and encoding == "proto":
                continue
            for compression in otlp.COMPRESSIONS:
                if (compression == "zstd-frames") != (layout == "framed" and compression == "zstd-frames"):
                    continue
                msgs = parts[:1] if layout == "single" else parts
                out[f"sdk-{encoding}-{layout}-{compression}"] = otlp.file_bytes(
                    msgs, layout, compression, pretty=layout == "single" and encoding == "json")
    return out


def main() -> None:
    for encoding, items in messages().items():
        folder = HERE / encoding
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in items.items():
            (folder / name).write_bytes(data)
    folder = HERE / "files"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (folder / name).write_bytes(data)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(HERE.rglob("*")) if p.is_file()))
    print(f"corpus: {total:,} bytes ({digest.hexdigest()[:12]})")


if __name__ == "__main__":
    main()
