"""Benchmark loaders on the bundled samples, on local files, and on the hub path (offline)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rm_rewards.benchmarks.items import items_to_samples
from rm_rewards.benchmarks.loaders import BenchmarkFormatError, load_benchmark, load_files, load_from_hub
from rm_rewards.datasets.bundled import bundled_path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def bundled_rows(*parts: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bundled_path(*parts).read_text(encoding="utf-8").splitlines()]


# --- bundled samples: counts as in each folder's README ------------------------------------------


def test_rm_bench_bundled_counts_per_domain() -> None:
    items = load_benchmark("rm_bench")
    assert Counter(i.domain for i in items) == {
        "chat": 65,
        "code": 46,
        "safety-refuse": 57,
        "safety-response": 53,
    }
    assert all(len(i.responses) == 6 and i.n_correct == 3 for i in items)
    # ids repeat across domain files upstream (chat and code both have id 8), so the domain is in the id
    assert {"chat:8", "code:8"} <= {i.id for i in items}


def test_rm_bench_keeps_style_order_and_fields() -> None:
    row = bundled_rows("rm_bench", "code_filtered.jsonl")[0]
    first = load_benchmark("rm_bench")[65]  # files load in order: chat (65 rows) then code
    assert first.id == f"code:{row['id']}"
    assert first.correct == row["chosen"] and first.incorrect == row["rejected"]
    assert first.input[0].content == row["prompt"]
    assert first.metadata["language"] == row["language"] and first.metadata["task_id"] == row["task_id"]


def test_reward_bench_2_bundled_subsets() -> None:
    items = load_benchmark("reward_bench_2")
    assert Counter(i.domain for i in items) == {"Factuality": 1, "Ties": 14}
    factuality = next(i for i in items if i.domain == "Factuality")
    assert (factuality.id, factuality.n_correct, len(factuality.responses)) == ("0", 1, 4)
    ties = [i for i in items if i.domain == "Ties"]
    assert Counter(i.id.split(":")[0] for i in ties) == {"ref": 7, "tied": 7}
    tied_44 = next(i for i in ties if i.id == "tied:44")
    assert (tied_44.n_correct, len(tied_44.responses)) == (9, 21)  # num_correct 9, num_incorrect 12


def test_rmb_bundled_pairwise_and_bon() -> None:
    pairwise = load_benchmark("rmb_pairwise")
    bon = load_benchmark("rmb_bon")
    assert len(pairwise) == 138 and len(bon) == 98
    assert Counter(i.domain.split("/")[0] for i in pairwise) == {"Helpfulness": 105, "Harmlessness": 33}
    raw = bundled_rows("rmb", "pairwise.jsonl")[0]
    first = pairwise[0]
    assert first.id == raw["pair_uid"] and first.domain == "Harmlessness/S1"
    assert first.responses == [raw["chosen"]["answer"], raw["reject"]["answer"]]
    assert Counter(len(i.responses) for i in bon) == {3: 80, 4: 13, 5: 5}  # bon_best + 2..4 losers
    multi_turn = [i for i in bon if len(i.input) > 1]
    # earlier turns alternate user / assistant and the conversation ends with the user
    assert Counter(len(i.input) for i in multi_turn) == {3: 11, 5: 2}
    assert all(
        [m.role for m in i.input] == ["user", "assistant"] * (len(i.input) // 2) + ["user"]
        for i in multi_turn
    )


def test_bundled_items_become_samples() -> None:
    samples = items_to_samples(load_benchmark("rmb_bon"))
    assert len({s.id for s in samples}) == 98
    assert all(s.source == "rmb_bon" and s.preference == 0 and s.split == "test" for s in samples)


# --- malformed rows: errors name the row and the field -------------------------------------------


def test_rm_bench_wrong_number_of_responses(tmp_path: Path) -> None:
    rows = bundled_rows("rm_bench", "chat_filtered.jsonl")[:2]
    rows[1]["rejected"] = rows[1]["rejected"][:2]
    path = write_jsonl(tmp_path / "chat_filtered.jsonl", rows)
    with pytest.raises(
        BenchmarkFormatError, match=r"chat_filtered.jsonl row 1, field 'rejected': expected 3"
    ):
        load_files("rm_bench", [path])


def test_rm_bench_domain_must_come_from_file_or_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mystery.jsonl", bundled_rows("rm_bench", "chat_filtered.jsonl")[:1])
    with pytest.raises(BenchmarkFormatError, match=r"mystery.jsonl row 0, field 'domain'"):
        load_files("rm_bench", [path])


def test_rmb_pairwise_rejected_key_is_named(tmp_path: Path) -> None:
    row = bundled_rows("rmb", "pairwise.jsonl")[0]
    row["rejected"] = row.pop("reject")
    path = write_jsonl(tmp_path / "pairwise.jsonl", [row])
    with pytest.raises(BenchmarkFormatError, match=r"row 0, field 'reject'.*not 'rejected'"):
        load_files("rmb_pairwise", [path])


def test_rmb_bon_bad_loser_is_named(tmp_path: Path) -> None:
    row = bundled_rows("rmb", "bon.jsonl")[0]
    row["loser_list"][1] = {"llm_name": "x"}
    path = write_jsonl(tmp_path / "bon.jsonl", [row])
    with pytest.raises(BenchmarkFormatError, match=r"row 0, field 'loser_list\[1\]'"):
        load_files("rmb_bon", [path])


def test_reward_bench_2_counts_must_match(tmp_path: Path) -> None:
    rows = bundled_rows("reward_bench_2", "test_sample.jsonl")[:3]
    rows[2]["num_correct"] = 2
    path = write_jsonl(tmp_path / "rb2.jsonl", rows)
    with pytest.raises(BenchmarkFormatError, match=r"rb2.jsonl row 2, field 'num_correct'"):
        load_files("reward_bench_2", [path])


def test_reward_bench_2_ties_id_format(tmp_path: Path) -> None:
    rows = bundled_rows("reward_bench_2", "test_sample.jsonl")[1:2]
    rows[0]["id"] = "44"
    path = write_jsonl(tmp_path / "rb2.jsonl", rows)
    with pytest.raises(BenchmarkFormatError, match=r"row 0, field 'id'.*'ref:<n>'"):
        load_files("reward_bench_2", [path])


def test_bad_json_line_and_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "pairwise.jsonl"
    path.write_text(json.dumps(bundled_rows("rmb", "pairwise.jsonl")[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match="pairwise.jsonl:2: not valid JSON"):
        load_files("rmb_pairwise", [path])
    row = bundled_rows("rmb", "pairwise.jsonl")[0]
    write_jsonl(path, [row, row])
    with pytest.raises(BenchmarkFormatError, match="appears more than once"):
        load_files("rmb_pairwise", [path])


def test_json_array_files_as_in_the_upstream_repositories(tmp_path: Path) -> None:
    rows = bundled_rows("rm_bench", "safety-refuse_filtered.jsonl")[:4]
    path = tmp_path / "safety-refuse_filtered.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    items = load_files("rm_bench", [path])
    assert [i.domain for i in items] == ["safety-refuse"] * 4


def test_unknown_benchmark_and_source() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'judgebench'"):
        load_benchmark("judgebench")
    with pytest.raises(ValueError, match="unknown source 'ftp'"):
        load_benchmark("rm_bench", source="ftp")


# --- the hub path, offline -----------------------------------------------------------------------


def test_hub_defaults_go_to_the_official_datasets() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_loader(repo_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append((repo_id, kwargs))
        return bundled_rows("reward_bench_2", "test_sample.jsonl")

    items = load_benchmark("reward_bench_2", source="hub", dataset_loader=fake_loader)
    assert len(items) == 15
    assert calls == [("allenai/reward-bench-2", {"split": "test"})]
    with pytest.raises(ValueError, match="no official hub dataset"):
        load_from_hub("rmb_pairwise", dataset_loader=fake_loader)


def test_hub_path_through_datasets_on_a_local_file(tmp_path: Path) -> None:
    """The real `datasets.load_dataset` on a local JSON Lines file stands in for the hub."""
    import datasets

    rows = (
        bundled_rows("rm_bench", "chat_filtered.jsonl")[:3]
        + bundled_rows("rm_bench", "code_filtered.jsonl")[:2]
    )
    for row, domain in zip(rows, ["chat"] * 3 + ["code"] * 2):
        row["domain"] = domain  # as in RM-Bench's total_dataset.json on the hub
    path = write_jsonl(tmp_path / "total_dataset.jsonl", rows)

    def local_loader(repo_id: str, split: str, **kwargs: Any) -> Any:
        assert (repo_id, split) == ("THU-KEG/RM-Bench", "train")
        return datasets.load_dataset(
            "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
        )

    items = load_from_hub("rm_bench", dataset_loader=local_loader)
    assert [i.id for i in items] == [f"{r['domain']}:{r['id']}" for r in rows]
    assert items[0].responses == rows[0]["chosen"] + rows[0]["rejected"]
    assert items[3].metadata["language"] == rows[3]["language"]  # code-only field survives
