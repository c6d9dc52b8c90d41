"""End to end through the embedded llama.cpp server (SmolLM2-135M): the default LLM of a fresh
machine. The model's verdicts are not meaningful; what is checked is the wiring: a real server,
schema-constrained JSON, judging both orders, the cache serving the swapped copy of a pair."""

from __future__ import annotations

import dagster as dg
import pytest

from rm_assets.data.assets import converted_samples, raw_rows
from rm_assets.judging.assets import LLMScoreConfig, llm_scores
from rm_resources.datasets import DatasetSourceResource
from rm_resources.embedded_llm import EMBEDDED_MODEL_NAME, EmbeddedLLMServer
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    server = EmbeddedLLMServer(n_ctx=2048, log_path=tmp_path_factory.mktemp("llm") / "server.log").start()
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.embedded_llm
def test_llm_scores_through_the_embedded_server(embedded_server, tmp_path):
    resources = {
        "datasets": DatasetSourceResource(mode="bundled", limit=3),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "llm": LLMClientResource(
            base_url=embedded_server.base_url, model=EMBEDDED_MODEL_NAME, structured_output="json_object_schema",
            max_concurrency=2, timeout_s=120, max_retries=1, cache_path=str(tmp_path / "cache.sqlite"),
        ),
        "ray": RayClusterResource(),  # llm_scores judges in process (no address)
    }
    result = dg.materialize(
        [raw_rows, converted_samples, llm_scores], resources=resources, partition_key="hh_rlhf_helpful",
        run_config=dg.RunConfig(ops={"llm_scores": LLMScoreConfig(max_samples=2)}),
    )
    assert result.success
    scores = Store(str(tmp_path / "w.duckdb")).read_partition("llm_scores", "hh_rlhf_helpful")
    assert len(scores) == 2  # a pair and its A/B-swapped copy
    for values, errors in zip(scores["scores"], scores["response_errors"]):
        for value, error in zip(values, errors):
            assert (value is not None) != (error is not None)  # scored, or an error that says why
    metadata = result.asset_materializations_for_node("llm_scores")[0].metadata
    # The swapped copy asks the same two orders again: served from the cache, not the server.
    assert metadata["llm_requests"].value == 2
    assert metadata["llm_cache_hits"].value == 2
