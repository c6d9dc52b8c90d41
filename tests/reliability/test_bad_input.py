"""Bad input: a corpus of malformed rows for every dataset format, mixed with valid rows, through the
real path from a configured local file (datasets file → `DatasetSourceResource.load_rows` → the
`raw_rows` table → `convert_rows` → the `converted_samples` and `quarantine` tables), and once
through the Dagster assets themselves. Every bad row lands in quarantine naming its row and field;
every valid row is kept (counted exactly). Damaged files (truncated parquet or gzip, bytes that are
not UTF-8, empty) fail naming the file, as dataset sources and as benchmark files.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rm_resources.datasets import DatasetSourceResource
from rm_resources.store import Store
from rm_rewards.benchmarks.loaders import BenchmarkFormatError, load_files
from rm_rewards.datasets.catalog import FORMATS, DatasetConfigError
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.datasets.quarantine import raw_row_json
from rm_rewards.datasets.sources import RowsFileError

ROOT = Path(__file__).resolve().parents[2]
MEGABYTE_TEXT = ("word " * 210_000).strip()  # ~1 MB: long texts are valid and must survive the whole path


# --- valid rows per format: (row, samples it becomes) -----------------------------------------


def _trl(i: int) -> dict:
    return {"prompt": f"Question {i}: how do tides work?", "chosen": f"The moon pulls the sea ({i}).",
            "rejected": f"No idea {i}."}


def _chat_pairs(i: int) -> dict:
    user = {"role": "user", "content": f"Tell me about bees, part {i}."}
    return {"chosen": [user, {"role": "assistant", "content": f"Bees pollinate flowers ({i})."}],
            "rejected": [user, {"role": "assistant", "content": f"Bees are fish ({i})."}]}


def _helpsteer2(i: int) -> dict:
    return {"prompt": f"Name a colour, take {i}.", "response": f"Blue, take {i}.", "helpfulness": 3,
            "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 1}


def _helpsteer2_preference(i: int) -> dict:
    return {"prompt": f"Explain rain, take {i}.", "response_1": f"Water falls ({i}).",
            "response_2": f"Clouds condense and drops fall ({i}).", "preference_strength": 2}


def _helpsteer3(i: int) -> dict:
    return {"context": [{"role": "user", "content": f"Sort this list, case {i}."}], "response1": f"sorted() ({i})",
            "response2": f"Do it by hand ({i})", "overall_preference": -2, "domain": "code", "language": "en",
            "individual_preference": [{"score": -2, "reasoning": "shorter"}]}


def _hh_rlhf(i: int) -> dict:
    return {"chosen": f"\n\nHuman: How do I bake bread, try {i}?\n\nAssistant: Knead, rise, bake ({i}).",
            "rejected": f"\n\nHuman: How do I bake bread, try {i}?\n\nAssistant: Buy it ({i})."}


def _rm_gallery(i: int) -> dict:
    def answer(text: str, preference: str) -> dict:
        return {"answer": {"role": "assistant", "content": text, "label": {"preference": preference}}}

    return {"unique_id": f"u{i}", "input": [{"role": "user", "content": f"Is {i} prime?"}],
            "output": [answer(f"Let me check {i} carefully.", "chosen"), answer(f"Yes, {i} is.", "rejected")]}


# Each valid row becomes this many samples (pairs come A/B-swapped; every HelpSteer2 prompt below
# is distinct, so a rating row is one pointwise sample and makes no rating pair).
VALID: dict[str, tuple[Callable[[int], dict], int]] = {
    "trl": (_trl, 2), "chat_pairs": (_chat_pairs, 2), "helpsteer2": (_helpsteer2, 1),
    "helpsteer2_preference": (_helpsteer2_preference, 2), "helpsteer3": (_helpsteer3, 2),
    "hh_rlhf": (_hh_rlhf, 2), "rm_gallery": (_rm_gallery, 2),
}
# Where each format keeps a response text: valid rows with odd text (1 MB, lone surrogate, U+2028
# line separator, emoji) put it there.
RESPONSE_TEXT: dict[str, tuple[Any, ...]] = {
    "trl": ("chosen",), "chat_pairs": ("chosen", 1, "content"), "helpsteer2": ("response",),
    "helpsteer2_preference": ("response_1",), "helpsteer3": ("response1",), "hh_rlhf": ("chosen",),
    "rm_gallery": ("output", 0, "answer", "content"),
}


def _set(row: dict, path: tuple, value: Any) -> dict:
    row = copy.deepcopy(row)
    target = row
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return row


def _drop(row: dict, path: tuple) -> dict:
    row = copy.deepcopy(row)
    target = row
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return row


def _odd_texts(fmt: str, base: int) -> list[dict]:
    """Valid rows whose text is unusual but real: each must be kept, text intact."""
    make, path = VALID[fmt][0], RESPONSE_TEXT[fmt]
    texts = [MEGABYTE_TEXT, "Red \ud800 broken surrogate", "one\u2028two\u2029three\x85four", "naïve 🐝 蜜蜂"]
    rows = []
    for k, text in enumerate(texts):
        row = make(base + k)
        if fmt == "hh_rlhf":  # the reply is inside the dialogue string
            text = row["chosen"].rsplit("Assistant: ", 1)[0] + "Assistant: " + text
        rows.append(_set(row, path, text))
    return rows


# --- bad rows per format: (row, the field its quarantine entry must name) -------------------


def _bad_rows(fmt: str) -> list[tuple[Any, str | None]]:
    make = VALID[fmt][0]
    row = make(900)
    not_objects = [("a bare string", "row"), (42, "row"), (None, "row"), ([row], "row")]
    # Built per format: each list reads its own format's valid row.
    specific: dict[str, Callable[[dict], list[tuple[Any, str | None]]]] = {
        "trl": lambda row: [
            (_drop(row, ("chosen",)), "chosen"),
            (_set(row, ("rejected",), 17), "rejected"),
            (_set(row, ("prompt",), "   "), "prompt"),
            (_set(row, ("prompt",), {"role": "user", "content": "q"}), "prompt"),  # an object, not a list
            (_set(row, ("margin",), float("nan")), None),  # NaN margin = absent (pandas' null): valid
            (_set(row, ("margin",), -1.0), "margin"),
            (_set(row, ("margin",), float("inf")), "margin"),
            (_set(row, ("margin",), 10**400), "margin"),  # past float range: must not crash the load
            (_set(row, ("margin",), "big"), "margin"),
            (_set(_set(row, ("chosen",), [{"role": "assistant", "content": {"text": "x"}}]), ("rejected",),
                  [{"role": "assistant", "content": "y"}]), "chosen[0].content"),
            (_set(row, ("rejected",), row["chosen"]), "rejected"),
        ],
        "chat_pairs": lambda row: [
            (_drop(row, ("rejected",)), "rejected"),
            (_set(row, ("chosen",), {"role": "user", "content": "q"}), "chosen"),
            (_set(row, ("chosen", 1, "content"), ["part one", "part two"]), "chosen[1].content"),
            (_set(row, ("chosen", 0, "role"), "robot"), "chosen[0].role"),
            (_set(row, ("chosen", 1, "content"), ""), "chosen"),
            (_set(row, ("rejected",), row["rejected"][:1]), "rejected"),  # ends on the user turn
            (_set(row, ("chosen",), []), "chosen"),
        ],
        "helpsteer2": lambda row: [
            (_drop(row, ("response",)), "response"),
            (_set(row, ("response",), 123), "response"),
            (_set(row, ("prompt",), ""), "prompt"),
            (_set(row, ("prompt",), ["q"]), "prompt"),
            (_set(row, ("helpfulness",), float("nan")), "helpfulness"),
            (_set(row, ("correctness",), 7), "correctness"),
            (_set(row, ("coherence",), -1), "coherence"),
            (_set(row, ("complexity",), "3"), "complexity"),
            (_set(row, ("verbosity",), True), "verbosity"),
            (_set(row, ("helpfulness",), 2.5), "helpfulness"),
            (_set(row, ("helpfulness",), 10**400), "helpfulness"),
        ],
        "helpsteer2_preference": lambda row: [
            (_drop(row, ("response_1",)), "response_1"),
            (_set(row, ("response_2",), row["response_1"]), "response_2"),
            (_set(row, ("preference_strength",), float("nan")), "preference_strength"),
            (_set(row, ("preference_strength",), 4), "preference_strength"),
            (_set(row, ("preference_strength",), float("-inf")), "preference_strength"),
            (_set(row, ("prompt",), None), "prompt"),
        ],
        "helpsteer3": lambda row: [
            (_set(row, ("context",), "Sort this list"), "context"),
            (_set(row, ("context",), []), "context"),
            (_drop(row, ("context", 0, "content")), "context[0].content"),
            (_set(row, ("context",), [{"role": "assistant", "content": "hi"}]), "context"),
            (_set(row, ("overall_preference",), float("nan")), "overall_preference"),
            (_set(row, ("overall_preference",), 5), "overall_preference"),
            (_set(row, ("overall_preference",), 1.5), "overall_preference"),
            (_set(row, ("individual_preference",), [{"score": 9}]), "individual_preference[0].score"),
            (_set(row, ("individual_preference",), {"score": 1}), "individual_preference"),
            (_set(row, ("domain",), 3), "domain"),
            (_drop(row, ("response2",)), "response2"),
        ],
        "hh_rlhf": lambda row: [
            (_set(row, ("chosen",), "Knead, rise, bake."), "chosen"),  # no Human:/Assistant: turns
            (_set(row, ("rejected",), 5), "rejected"),
            (_set(row, ("rejected",), row["rejected"] + "\n\nHuman: more?\n\nAssistant: no"), "rejected"),
            (_set(row, ("chosen",), row["chosen"].rsplit("Assistant: ", 1)[0] + "Assistant: "), "chosen"),
            (_drop(_drop(row, ("chosen",)), ("rejected",)), "chosen"),
            ({"evaluation_sample": "not an object"}, "evaluation_sample"),
            ({"evaluation_sample": {"input": [{"role": "user", "content": "q"}],
                                    "outputs": [{"content": "a", "content_label": "best"}]}},
             "evaluation_sample.outputs[0].content_label"),
        ],
        "rm_gallery": lambda row: [
            (_drop(row, ("input",)), "input"),
            (_drop(row, ("unique_id",)), "unique_id"),
            (_set(row, ("output",), []), "output"),
            (_set(row, ("output",), {"answer": "flat"}), "output"),
            (_set(row, ("output", 0, "answer", "label", "preference"), "best"), "output[0].answer.label.preference"),
            (_set(row, ("output", 0, "answer", "role"), "user"), "output[0].answer.role"),
            (_set(row, ("output", 1, "answer", "label", "score"), float("nan")), "output[1].answer.label.score"),
            (_set(row, ("output", 1, "answer", "label", "score"), 10**400), "output[1].answer.label.score"),
            (_set(row, ("output", 0, "steps"), [{"content": "s", "label": {"correctness": ["x"]}}]),
             "output[0].steps[0].label.correctness"),
            (_set(row, ("output", 0, "answer", "label"), {"rank": 10**400}), "output[0].answer.label.rank"),
            (_set(row, ("input", 0, "content"), None), "input[0].content"),
        ],
    }
    return not_objects + specific[fmt](row)


def corpus(fmt: str) -> tuple[list[Any], dict[int, str], int]:
    """Valid and bad rows interleaved: (rows, {bad row index: field}, samples the valid rows make)."""
    make, per_row = VALID[fmt]
    valid = [make(i) for i in range(6)] + _odd_texts(fmt, 100)
    bad = [(row, field) for row, field in _bad_rows(fmt) if field is not None]
    also_valid = [row for row, field in _bad_rows(fmt) if field is None]
    valid += also_valid
    rows: list[Any] = []
    expected_bad: dict[int, str] = {}
    for k in range(max(len(valid), len(bad))):
        if k < len(valid):
            rows.append(valid[k])
        if k < len(bad):
            expected_bad[len(rows)] = bad[k][1]
            rows.append(bad[k][0])
    # An exact repeat of the first row would give samples with the same ids: quarantined.
    expected_bad[len(rows)] = "row"
    rows.append(copy.deepcopy(valid[0]))
    return rows, expected_bad, per_row * len(valid)


def _jsonl(path: Path, rows: list) -> Path:
    # json.dumps escapes lone surrogates (\ud800) and writes NaN/Infinity, which json.loads reads back.
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _register(monkeypatch, tmp_path: Path, entries: dict[str, tuple[str, Path]]) -> None:
    lines = ["datasets:"]
    for name, (fmt, path) in entries.items():
        lines += [f"  {name}:", f"    format: {fmt}", f"    path: {path}"]
    config = tmp_path / "datasets.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("RMFORGE_DATASETS_FILE", str(config))


def run_conversion(store: Store, source: DatasetSourceResource, dataset: str):
    """What `raw_rows` then `converted_samples` do, through the same store and functions."""
    store.write_raw_rows(dataset, source.load_rows(dataset), "run-raw")
    rows = store.read_raw_rows(dataset)
    result = convert_rows(dataset, rows, format=source.info(dataset).format)
    store.write_converted(dataset, result.samples, result.quarantined, "run-convert")
    return rows, result


def check_partition(store: Store, dataset: str, rows: list, expected_bad: dict[int, str], n_samples: int) -> None:
    quarantine = store.read_quarantine(dataset)
    assert dict(zip(quarantine["row_index"], quarantine["field"])) == expected_bad
    assert len(quarantine) == len(expected_bad)  # one entry per bad row
    for index, reason, row_json in zip(quarantine["row_index"], quarantine["reason"], quarantine["row_json"]):
        assert reason.strip(), index
        assert row_json == raw_row_json(rows[index])  # the row itself, to inspect
        if expected_bad[index] == "row" and isinstance(rows[index], dict):
            assert reason == "duplicate of row 0 (same content)"
    samples = store.read_samples(dataset)
    assert len(samples) == n_samples
    kept_rows = {i for s in samples for i in s.metadata["raw_row_indices"]}
    assert kept_rows == set(range(len(rows))) - set(expected_bad)  # every valid row, no bad one
    texts = [r.text for s in samples for r in s.responses]
    assert MEGABYTE_TEXT in texts
    assert "Red \ud800 broken surrogate" in texts
    assert "one\u2028two\u2029three\x85four" in texts  # not cut at Unicode line breaks


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_bad_row_is_quarantined_naming_its_field_and_every_valid_row_is_kept(fmt, tmp_path, monkeypatch):
    rows, expected_bad, n_samples = corpus(fmt)
    _register(monkeypatch, tmp_path, {"mixed": (fmt, _jsonl(tmp_path / "mixed.jsonl", rows))})
    store = Store(str(tmp_path / "w.duckdb"))

    loaded, result = run_conversion(store, DatasetSourceResource(), "mixed")

    assert len(loaded) == len(rows) and store.row_count("raw_rows", "mixed") == len(rows)
    for entry in result.quarantined:  # the message a person reads names the dataset, row and field
        assert entry.message.startswith(f"mixed row {entry.row_index}, field {entry.field!r}: ")
    check_partition(store, "mixed", rows, expected_bad, n_samples)


def test_same_source_id_with_different_content_is_two_samples_and_an_exact_repeat_is_one(tmp_path):
    first, second = _rm_gallery(1), _rm_gallery(2)
    second["unique_id"] = first["unique_id"]  # ids are content hashes, so a reused source id cannot collide
    result = convert_rows("g", [first, second, copy.deepcopy(first)], format="rm_gallery")
    assert len(result.samples) == 4 and len({s.id for s in result.samples}) == 4
    assert [(q.row_index, q.field, q.reason) for q in result.quarantined] == [
        (2, "row", "duplicate of row 0 (same content)")
    ]


def test_a_parquet_source_with_nulls_and_nan_labels_keeps_its_valid_rows(tmp_path, monkeypatch):
    rows = [_helpsteer2(i) for i in range(5)]
    rows[1]["response"] = None  # a null cell
    rows[2]["helpfulness"] = float("nan")  # pandas' null in a number column
    rows[3]["correctness"] = 9
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hs2.parquet")
    # A binary column (bytes that are not UTF-8) where the format wants text.
    binary = [{**_helpsteer2(i), "response": b"\xff\xfe not utf-8" if i else "Blue".encode()} for i in range(2)]
    pq.write_table(pa.Table.from_pylist(binary), tmp_path / "hs2_bytes.parquet")
    _register(monkeypatch, tmp_path, {"hs2_parquet": ("helpsteer2", tmp_path / "hs2.parquet"),
                                      "hs2_bytes": ("helpsteer2", tmp_path / "hs2_bytes.parquet")})
    store = Store(str(tmp_path / "w.duckdb"))

    run_conversion(store, DatasetSourceResource(), "hs2_parquet")
    run_conversion(store, DatasetSourceResource(), "hs2_bytes")

    quarantine = store.read_quarantine("hs2_parquet")
    assert list(zip(quarantine["row_index"], quarantine["field"])) == [(1, "response"), (2, "helpfulness"),
                                                                       (3, "correctness")]
    assert store.row_count("converted_samples", "hs2_parquet") == 2  # rows 0 and 4, distinct prompts
    # Bytes that are UTF-8 are text (row 0 is kept); others cannot pass for text: quarantined.
    quarantine = store.read_quarantine("hs2_bytes")
    assert list(zip(quarantine["row_index"], quarantine["field"])) == [(1, "response")]
    assert quarantine["reason"][0] == "expected a string, got bytes that are not UTF-8"
    assert b"\xff\xfe not utf-8".hex() in quarantine["row_json"][0]  # the bytes stay, to inspect
    assert [s.responses[0].text for s in store.read_samples("hs2_bytes")] == ["Blue"]


def _truncated_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_parquet_dataset_fails_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "prefs.parquet"
    pq.write_table(pa.Table.from_pylist([_trl(i) for i in range(50)]), path)
    _register(monkeypatch, tmp_path, {"prefs": ("trl", path)})
    source = DatasetSourceResource()
    assert len(source.load_rows("prefs")) == 50
    _truncated_parquet(path, [_trl(i) for i in range(50)])  # damaged after it was registered

    with pytest.raises(RowsFileError) as error:
        source.load_rows("prefs")
    assert str(path) in str(error.value) and "not a readable parquet file" in str(error.value)
    # And when it is already damaged as the datasets file is read, the load names dataset and file.
    with pytest.raises(DatasetConfigError, match=r"dataset 'prefs'.*prefs\.parquet.*not a readable parquet"):
        _register(monkeypatch, tmp_path, {"prefs": ("trl", path)})
        source.info("prefs")


def test_bytes_that_are_not_utf8_fail_naming_the_file_and_line(tmp_path, monkeypatch):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(_trl(i)).encode() for i in range(4)]
    lines[2] = lines[2].replace(b"tides", b"ti\xffdes")
    path.write_bytes(b"\n".join(lines) + b"\n")
    _register(monkeypatch, tmp_path, {"pairs": ("trl", path)})  # row 0 is readable: registration passes

    with pytest.raises(RowsFileError, match=rf"{path}:3: not valid UTF-8 \(byte b'\\xff' at offset \d+"):
        DatasetSourceResource().load_rows("pairs")
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines[:2]) + b"\n")  # a byte-order mark is not an error
    assert len(DatasetSourceResource().load_rows("pairs")) == 2
    path.write_bytes(b"\x80" + lines[0])
    with pytest.raises(DatasetConfigError, match=r"dataset 'pairs'.*pairs\.jsonl:1: not valid UTF-8"):
        _register(monkeypatch, tmp_path, {"pairs": ("trl", path)})
        DatasetSourceResource().info("pairs")


def test_a_truncated_gzip_file_fails_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "pairs.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(_hh_rlhf(i)) + "\n" for i in range(200)).encode()))
    _register(monkeypatch, tmp_path, {"pairs": ("hh_rlhf", path)})
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(RowsFileError, match=rf"{path}: not a readable gzip file"):
        DatasetSourceResource().load_rows("pairs")


# --- benchmark files ---------------------------------------------------------------------------


def _judge_bench(i: int) -> dict:
    return {"pair_id": f"p{i}", "original_id": f"o{i}", "source": "mmlu-pro-physics", "question": f"Q{i}?",
            "response_model": "gpt-4o", "response_A": f"right {i}", "response_B": f"wrong {i}", "label": "A>B"}


def _rmb_pairwise(i: int) -> dict:
    return {"pair_uid": str(i), "conversation_input": [{"role": "user", "content": f"Q{i}", "language": "en"}],
            "chosen": {"llm_name": "a", "answer": f"good {i}"}, "reject": {"llm_name": "b", "answer": f"bad {i}"},
            "category_path": "Pairwise_set/Helpfulness/Chat/Discussion"}


@pytest.mark.parametrize(
    ("benchmark", "make", "bad", "names"),
    [
        ("judge_bench", _judge_bench, _set(_judge_bench(9), ("label",), "A=B"), ["row 2", "'label'", "A=B"]),
        ("judge_bench", _judge_bench, _drop(_judge_bench(9), ("response_B",)), ["row 2", "'response_B'", "missing"]),
        ("judge_bench", _judge_bench, _set(_judge_bench(9), ("pair_id",), float("nan")), ["row 2", "'pair_id'"]),
        ("judge_bench", _judge_bench, "not an object", ["row 2", "expected a JSON object"]),
        ("judge_bench", _judge_bench, _judge_bench(1), ["'p1'", "more than once"]),  # duplicate id
        ("rmb_pairwise", _rmb_pairwise, _set(_rmb_pairwise(9), ("conversation_input",), {"role": "user"}),
         ["row 2", "'conversation_input'"]),
        ("rmb_pairwise", _rmb_pairwise, _set(_rmb_pairwise(9), ("chosen",), "good"), ["row 2", "'chosen'"]),
        ("rm_bench", lambda i: {"id": i, "prompt": f"p{i}", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]},
         {"id": 9, "prompt": "p", "chosen": ["a", "b"], "rejected": ["d", "e", "f"]}, ["row 2", "'chosen'", "3"]),
    ],
)
def test_a_bad_benchmark_row_fails_naming_file_row_and_field(tmp_path, benchmark, make, bad, names):
    name = "chat_filtered.jsonl" if benchmark == "rm_bench" else f"{benchmark}.jsonl"
    path = _jsonl(tmp_path / name, [make(0), make(1), bad, make(3)])
    with pytest.raises(BenchmarkFormatError) as error:
        load_files(benchmark, [path])
    message = str(error.value)
    if "more than once" not in message:
        assert name in message
    for part in names:
        assert part in message, message


def test_benchmark_files_with_the_wrong_schema_empty_or_damaged_fail_naming_the_file(tmp_path):
    wrong = _jsonl(tmp_path / "judge_bench.jsonl", [_rmb_pairwise(0)])  # another benchmark's rows
    with pytest.raises(BenchmarkFormatError, match=r"judge_bench\.jsonl row 0, field 'label': missing"):
        load_files("judge_bench", [wrong])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=rf"judge_bench: {empty} holds no rows"):
        load_files("judge_bench", [empty])
    truncated = _truncated_parquet(tmp_path / "judge_bench.parquet", [_judge_bench(i) for i in range(40)])
    with pytest.raises(BenchmarkFormatError, match=rf"judge_bench: {truncated}: not a readable parquet file"):
        load_files("judge_bench", [truncated])
    not_utf8 = tmp_path / "rmb.jsonl"
    not_utf8.write_bytes(json.dumps(_rmb_pairwise(0)).encode() + b"\n\xc3\x28\n")
    with pytest.raises(BenchmarkFormatError, match=rf"{not_utf8}:2: not valid UTF-8"):
        load_files("rmb_pairwise", [not_utf8])
    not_json = tmp_path / "rmb2.jsonl"
    not_json.write_text(json.dumps(_rmb_pairwise(0)) + "\n{\"pair_uid\": \n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=rf"{not_json}:2: not valid JSON"):
        load_files("rmb_pairwise", [not_json])
    assert len(load_files("judge_bench", [_jsonl(tmp_path / "ok.jsonl", [_judge_bench(i) for i in range(3)])])) == 3


# --- the same corpus through the Dagster assets ---------------------------------------------

_MATERIALIZE = """
import json, sys
import dagster as dg
from rm_assets.data.assets import converted_samples, raw_rows
from rm_resources.datasets import DatasetSourceResource
from rm_resources.warehouse import WarehouseResource
resources = {"datasets": DatasetSourceResource(), "warehouse": WarehouseResource(database=sys.argv[1])}
with dg.instance_for_test() as instance:
    for partition in sys.argv[2:]:
        result = dg.materialize([raw_rows, converted_samples], resources=resources, partition_key=partition,
                                instance=instance)
        metadata = result.asset_materializations_for_node("converted_samples")[0].metadata
        print(json.dumps({"partition": partition, "quarantined_rows": metadata["quarantined_rows"].value}))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_corpus_through_the_assets_lands_the_same_quarantine_and_samples(tmp_path):
    entries, expected = {}, {}
    for fmt in sorted(FORMATS):
        rows, expected_bad, n_samples = corpus(fmt)
        name = f"bad_{fmt}"
        entries[name] = (fmt, _jsonl(tmp_path / f"{name}.jsonl", rows))
        expected[name] = (rows, expected_bad, n_samples)
    config = tmp_path / "datasets.yaml"
    config.write_text("datasets:\n" + "".join(
        f"  {name}:\n    format: {fmt}\n    path: {path}\n" for name, (fmt, path) in entries.items()
    ), encoding="utf-8")
    database = tmp_path / "w.duckdb"
    env = {**os.environ, "RMFORGE_DATASETS_FILE": str(config), "DAGSTER_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-c", _MATERIALIZE, str(database), *entries], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    reported = {r["partition"]: r["quarantined_rows"] for r in map(json.loads, run.stdout.strip().splitlines())}
    store = Store(str(database))
    for name, (rows, expected_bad, n_samples) in expected.items():
        assert reported[name] == len(expected_bad)
        check_partition(store, name, rows, expected_bad, n_samples)
