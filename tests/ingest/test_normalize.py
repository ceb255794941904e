"""provider and operation hold the GenAI conventions' values whatever the input spelled."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from observatory_storage import vocabulary
from observatory_storage.datasets import get_dataset
from observatory_storage.ingest import pricing
from observatory_storage.ingest.normalize import normalize
from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.mapping import RowBuilder
from tests.ingest.test_conform import col, conform, rejected, span_columns

SPELLINGS = {
    "openai": ["OpenAI", " openai ", "OPENAI"],
    "anthropic": ["Anthropic", "anthropic"],
    "aws.bedrock": ["Bedrock", "aws_bedrock", "aws.bedrock"],
    "azure.ai.openai": ["azure", "AzureOpenAI", "az.ai.openai"],
    "gcp.vertex_ai": ["vertex_ai", "VertexAI", "google_vertexai"],
    "gcp.gemini": ["gemini", "google", "google_genai", "Gemini"],
    "mistral_ai": ["mistralai", "MistralAI"],
    "x_ai": ["xai"],
    "ibm.watsonx.ai": ["watsonx", "Watsonx"],
    "cohere": ["Cohere"], "groq": ["Groq"], "deepseek": ["DeepSeek"],
    "perplexity": ["Perplexity"],
}


@pytest.mark.parametrize("canonical", sorted(SPELLINGS))
def test_provider_spellings_become_the_convention_value(canonical):
    spelled = SPELLINGS[canonical]
    table = conform(**span_columns(len(spelled)), provider=spelled)
    assert col(table, "provider") == [canonical] * len(spelled)


def test_unknown_provider_is_lowercased_and_blank_is_null():
    table = conform(**span_columns(4), provider=[" MyProvider ", "Ollama", "  ", None])
    assert col(table, "provider") == ["myprovider", "ollama", None, None]


def test_operation_values_of_openllmetry_and_openinference():
    given = ["completion", "chat", "embedding", "rerank", "LLM", "EMBEDDING", "TOOL", "AGENT",
             "CHAIN", "RETRIEVER", "RERANKER", "GUARDRAIL", "EVALUATOR", "chat", None]
    wanted = ["text_completion", "chat", "embeddings", "rerank", "chat", "embeddings",
              "execute_tool", "invoke_agent", "chain", "retriever", "reranker", "guardrail",
              "evaluator", "chat", None]
    table = conform(**span_columns(len(given)), operation=given)
    assert col(table, "operation") == wanted


def test_metrics_provider_and_dictionary_columns_are_normalized_too():
    table = conform("metrics", time=span_columns(2)["start_time"], metric_name=["m", "m"],
                    value=[1.0, 2.0],
                    provider=pa.array(["OpenAI", "Anthropic"]).dictionary_encode())
    assert col(table, "provider") == ["openai", "anthropic"]


def test_canonical_column_is_returned_as_it_is():
    array = pa.array(["openai", None, "anthropic"])
    assert normalize(array, "providers") is array


def test_invalid_utf8_is_kept_byte_for_byte_for_postgresql_to_refuse():
    raw = pa.array([b"OpenAI", b"\xefpenAI", None, b"x\x00y"], pa.binary()).view(pa.string())
    out = normalize(raw, "providers")
    assert out.view(pa.binary()).to_pylist() == [b"openai", b"\xefpenAI", None, b"x\x00y"]


def test_every_alias_is_lowercase_free_of_space_and_maps_to_one_value():
    seen: dict[str, str] = {}
    for name, table in vocabulary.VOCABULARIES.items():
        for value, aliases in table.items():
            for spelling in (value, *aliases):
                assert spelling == spelling.strip().lower(), spelling
                assert seen.setdefault(f"{name}:{spelling}", value) == value


def test_pricing_is_asked_with_the_normalized_provider(monkeypatch):
    asked = []
    monkeypatch.setattr(pricing, "rates", lambda provider, model: asked.append(provider))
    table = conform(**span_columns(2), provider=["OpenAI", "Bedrock"],
                    request_model=["gpt-4o-mini", "x"], input_tokens=[10, 10])
    pricing.Pricer().apply(table.to_batches()[0])
    assert sorted(asked) == ["aws.bedrock", "openai"]


# --- error texts name values plainly ----------------------------------------------------

def test_conform_errors_show_values_not_python_reprs():
    error = rejected(**span_columns(1, start_time=["2026-13-01"]))
    assert '"2026-13-01"' in str(error)
    error = rejected(**span_columns(1),
                     cost_usd=pa.array([Decimal("123456789012.5")], pa.decimal128(20, 1)))
    assert "123456789012.5" in str(error) and "Decimal(" not in str(error)


def test_otlp_row_errors_show_values_not_python_reprs():
    builder = RowBuilder(get_dataset("traces"), 10)
    builder.rows.append({"start_time": 1, "trace_id": "t", "span_id": "s", "name": "n",
                         "cost_usd": Decimal("0.00023099999999999998")})
    with pytest.raises(OtlpError) as info:
        builder.flush()
    assert "0.00023099999999999998 does not fit" in str(info.value)
    assert "Decimal(" not in str(info.value)


def test_file_heads_are_shown_as_text():
    from observatory_storage.ingest.plain import plain

    assert plain(b"id,name\n") == '"id,name\\x0a"'
    assert plain(Decimal("0.00023")) == "0.00023"
    assert plain("a\"b") == '"a\\"b"'
