"""Price LLM spans that carry a model and tokens but no cost, from a maintained price table.

The table is pydantic's ``genai-prices`` (offline data bundled in the package, knows cache
read/write prices and long-context tiers). Convention (OpenTelemetry's and genai-prices'):
``input_tokens`` includes cached tokens; ``cache_read_tokens`` and
``cache_creation_tokens`` are priced at their own rates and the rest of the input at the
input rate; ``output_tokens`` includes reasoning tokens.

Vectorized: prices are looked up once per distinct (provider, model) of a batch (and cached
for the process), turned into per-token rates by asking genai-prices for a few basis
usages (its prices are linear below a tier), and applied with Arrow compute. Rows above
a long-context tier threshold (rare) are priced one by one by genai-prices itself.

Rules: ``cost_usd`` is filled only where it is null; a producer's cost is never
overwritten and gets ``cost_source = 'producer'``; a priced row gets
``cost_source = 'genai-prices <version>'``; a row with a model and tokens whose model the
table does not know keeps a null cost and is counted (``unpriced_rows``).
"""

from __future__ import annotations

import decimal
import functools
import importlib.metadata
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

PRODUCER = "producer"
_BASIS = 1000  # tokens per basis usage: far below every long-context tier

# gen_ai.provider.name values -> genai-prices provider ids. The provider column is already
# normalized by conform (vocabulary.py: "OpenAI", "Bedrock", "az.ai.openai" arrive as
# openai, aws.bedrock, azure.ai.openai), so only the canonical values are listed.
PROVIDER_IDS: dict[str, str] = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}


@functools.cache
def source_name() -> str:
    return f"genai-prices {importlib.metadata.version('genai-prices')}"


@dataclass(frozen=True)
class Rates:
    """USD per token (and per request) of one model, valid below ``tier_start`` input tokens."""

    request: float
    input: float
    cache_read: float
    cache_write: float
    output: float
    tier_start: int | None  # input tokens above which a long-context tier applies
    provider_id: str | None
    model: str


def _total(usage: dict, model: str, provider_id: str | None) -> decimal.Decimal:
    # lazy: genai-prices costs ~0.07 s of every run's start-up, paid only by rows to price
    from genai_prices import Usage, calc_price

    return calc_price(Usage(**usage), model, provider_id=provider_id).total_price


@functools.lru_cache(maxsize=4096)
def rates(provider: str | None, model: str) -> Rates | None:
    """The model's rates, or None when the price table does not know it."""
    # lazy: genai-prices costs ~0.07 s of every run's start-up, paid only by rows to price
    from genai_prices import Usage, calc_price

    candidates = []
    if provider:
        candidates.append(PROVIDER_IDS.get(provider, provider))
    candidates.append(None)  # the model name alone (genai-prices matches providers by model)
    for provider_id in candidates:
        try:
            found = calc_price(Usage(input_tokens=_BASIS), model, provider_id=provider_id)
        except (LookupError, ValueError, KeyError, TypeError):
            continue
        pid = found.provider.id
        n = decimal.Decimal(_BASIS)
        try:
            request = _total({}, model, pid)
        except (LookupError, ValueError, KeyError, TypeError):
            request = decimal.Decimal(0)

        def rate(usage: dict, pid=pid, request=request, n=n) -> float:
            try:
                return float((_total(usage, model, pid) - request) / n)
            except (LookupError, ValueError, KeyError, TypeError):
                return 0.0

        in_rate = float((found.total_price - request) / n)
        cache_read = rate({"input_tokens": _BASIS, "cache_read_tokens": _BASIS}) or in_rate
        cache_write = rate({"input_tokens": _BASIS, "cache_write_tokens": _BASIS}) or in_rate
        return Rates(float(request), in_rate, cache_read, cache_write,
                     rate({"output_tokens": _BASIS}), _tier_start(found.model_price), pid, model)
    return None


def _tier_start(model_price) -> int | None:
    starts = []
    for value in vars(model_price).values():
        tiers = getattr(value, "tiers", None)
        if tiers:
            starts.extend(t.start for t in tiers)
    return min(starts) if starts else None


_COST = pa.decimal128(18, 9)


class Pricer:
    """Fills ``cost_usd``/``cost_source`` of conformed traces batches; counts unpriced rows."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.source = source_name() if enabled else None
        self.unpriced = 0
        self.priced = 0
        # the rows of the last batch left unpriced (a boolean mask; None: none were), so a
        # batch of several files' rows counts each file's
        self.last_unpriced: pa.Array | None = None

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.last_unpriced = None
        names = batch.schema.names
        cost = batch.column("cost_usd")
        source = batch.column("cost_source")
        # a producer's cost: say so (never recomputed)
        source = pc.if_else(pc.and_(pc.is_valid(cost), pc.is_null(source)),
                            pa.scalar(PRODUCER, pa.string()), source)
        if self.enabled:
            cost, source = self._price(batch, cost, source)
        columns = list(batch.columns)
        columns[names.index("cost_usd")] = cost
        columns[names.index("cost_source")] = source
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema)

    def _price(self, batch: pa.RecordBatch, cost: pa.Array, source: pa.Array):
        model = pc.coalesce(batch.column("response_model"), batch.column("request_model"))
        inputs = batch.column("input_tokens").cast(pa.float64())
        outputs = batch.column("output_tokens").cast(pa.float64())
        has_tokens = pc.or_(pc.is_valid(inputs), pc.is_valid(outputs))
        need = pc.and_(pc.and_(pc.is_null(cost), pc.is_valid(model)), has_tokens)
        if not pc.any(need).as_py():
            return cost, source
        provider = batch.column("provider")
        wanted_providers, wanted_models = pc.filter(provider, need), pc.filter(model, need)
        try:  # text is not validated before the COPY (PostgreSQL checks every value)
            wanted_providers.validate(full=True)
            wanted_models.validate(full=True)
        except pa.ArrowInvalid:  # invalid UTF-8: the COPY refuses the file, naming the row
            return cost, source
        pairs = pa.table({"p": wanted_providers, "m": wanted_models})
        pairs = pairs.group_by(["p", "m"]).aggregate([]).to_pylist()
        inputs, outputs = inputs.fill_null(0.0), outputs.fill_null(0.0)
        cache_read = batch.column("cache_read_tokens").cast(pa.float64()).fill_null(0.0)
        cache_write = batch.column("cache_creation_tokens").cast(pa.float64()).fill_null(0.0)
        uncached = pc.max_element_wise(
            pc.subtract(pc.subtract(inputs, cache_read), cache_write), 0.0)
        computed = pa.nulls(len(batch), pa.float64())
        for pair in pairs:
            r = rates(pair["p"], pair["m"])
            same_model = pc.equal(model, pa.scalar(pair["m"], pa.string()))
            same_provider = (pc.is_null(provider) if pair["p"] is None
                             else pc.equal(provider, pa.scalar(pair["p"], pa.string())))
            mask = pc.and_(need, pc.and_(same_model, same_provider)).fill_null(False)
            if r is None:
                self.unpriced += pc.sum(mask.cast(pa.int64())).as_py() or 0
                self.last_unpriced = mask if self.last_unpriced is None else pc.or_(
                    self.last_unpriced, mask)
                continue
            value = pc.add(
                pc.add(pc.multiply(uncached, r.input), pc.multiply(cache_read, r.cache_read)),
                pc.add(pc.multiply(cache_write, r.cache_write), pc.multiply(outputs, r.output)),
            )
            value = pc.add(value, r.request)
            if r.tier_start is not None:
                value = self._tiered(batch, mask, inputs, value, r)
            computed = pc.if_else(mask, value, computed)
            self.priced += pc.sum(mask.cast(pa.int64())).as_py() or 0
        priced = pc.is_valid(computed)
        new_cost = pc.round(computed, 9).cast(_COST, safe=False)
        cost = pc.if_else(priced, new_cost, cost)
        source = pc.if_else(priced, pa.scalar(self.source, pa.string()), source)
        return cost, source

    def _tiered(self, batch, mask, inputs, value, r: Rates):
        """Rows past a long-context tier: priced one by one by genai-prices (rare)."""
        above = pc.and_(mask, pc.greater(inputs, float(r.tier_start)))
        rows = pc.indices_nonzero(above).to_pylist()
        if not rows:
            return value
        values = value.to_pylist()
        for i in rows:
            usage = {
                "input_tokens": batch.column("input_tokens")[i].as_py() or 0,
                "output_tokens": batch.column("output_tokens")[i].as_py() or 0,
                "cache_read_tokens": batch.column("cache_read_tokens")[i].as_py() or 0,
                "cache_write_tokens": batch.column("cache_creation_tokens")[i].as_py() or 0,
            }
            values[i] = float(_total(usage, r.model, r.provider_id))
        return pa.array(values, pa.float64())
