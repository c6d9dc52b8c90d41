"""Rule scores written batch by batch (what keeps `rule_scores`' memory to the rows themselves, see
bench/load_rules.py) are the same table, row for row and in order, as scoring everything at once."""

from __future__ import annotations

from rm_resources import ray_scoring
from rm_resources.datasets import DatasetSourceResource
from rm_resources.store import Store
from rm_rewards.core.apply import ScoreSummary, apply_rewards, rule_rewards, summarize
from rm_rewards.datasets.convert import convert_rows


def _samples():
    source = DatasetSourceResource(mode="bundled")
    samples = []
    for dataset in ("helpsteer2", "hh_rlhf_harmless"):
        rows = source.load_rows(dataset)[:40]
        samples += convert_rows(dataset, rows, format=source.info(dataset).format).samples
    # Sorted by id as `read_samples` returns them: pointwise and pairwise samples interleave.
    return sorted(samples, key=lambda s: s.id)


def test_batch_by_batch_scores_are_the_whole_partition_table(tmp_path):
    samples, rewards = _samples(), rule_rewards()
    store = Store(str(tmp_path / "w.duckdb"))
    store.write_converted("mixed", samples, [], "run")

    whole = apply_rewards(samples, rewards)
    expected = store.write_scores("rule_scores", "all_at_once", whole, samples, "run")
    scored = list(ray_scoring.score_rules_batches(store.iter_sample_batches("mixed", 7), rewards))
    summary = ScoreSummary()
    frame = store.write_score_batches("rule_scores", "batched", summary.counting(iter(scored)), "run",
                                      reward_order=[r.name for r in rewards])

    assert [len(batch) for batch, _ in scored] == [min(7, len(samples) - k) for k in range(0, len(samples), 7)]
    assert [s for batch, _ in scored for s in batch] == samples  # the store's batches, in id order
    keys = [(r.reward_name, r.sample_id) for r in whole]
    arrived = [(r.reward_name, r.sample_id) for _, results in scored for r in results]
    assert sorted(arrived) == sorted(keys) and arrived != keys  # same results, another order: regrouped
    assert frame.equals(expected)
    stored = store.read_partition("rule_scores", "batched").drop(columns="partition")
    assert stored.equals(store.read_partition("rule_scores", "all_at_once").drop(columns="partition"))
    assert summary.as_dict() == summarize(whole) and summary.n_samples == len(samples)
