"""Load RM-Bench, RewardBench 2, RMB and JudgeBench in their own formats into `BenchmarkItem`s.

Three sources, one parser per benchmark:

- bundled samples in the package (`load_bundled`), the default and what tests use (JudgeBench has
  none: its rows are not bundled);
- local files in the benchmark's own format (`load_files`): JSON Lines, a JSON array (as in the
  benchmarks' repositories: RM-Bench `data/*_filtered.json`, RMB `RMB_dataset/**/*.json`) or
  parquet, read by `rm_rewards.datasets.sources.read_rows_file`;
- the Hugging Face hub (`load_from_hub`), through `datasets.load_dataset`, imported only there.

A malformed row raises `BenchmarkFormatError` naming the file (or hub id), the row and the field;
so does a file that cannot be read (damaged or truncated parquet or gzip, not UTF-8) or holds no rows.

Which source a benchmark uses is a `BenchmarkSource` (`benchmark_source(name, mode=..., files=...)`):
files configured for it, else the hub in hub mode, else its bundled sample. A benchmark with none
of these (JudgeBench by default; RMB in hub mode, which has no hub dataset) has no source:
`benchmark_source` raises `NoBenchmarkSource` saying how to configure one, and callers that plan
runs (`rmforge run`, the schedules) skip it with that reason. Never a silent fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rm_rewards.benchmarks.items import BENCHMARK_NAMES, BenchmarkItem, BenchmarkName
from rm_rewards.benchmarks.judge_bench import category_of
from rm_rewards.core.schema import ChatMessage
from rm_rewards.datasets.bundled import bundled_path
from rm_rewards.datasets.sources import RowsFileError, read_rows_file

RM_BENCH_DOMAINS = ("chat", "code", "math", "safety-refuse", "safety-response")
RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")

# What the package bundles (see each folder's README); RM-Bench has no math rows here.
BUNDLED_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "rm_bench": tuple(
        ("rm_bench", f"{domain}_filtered.jsonl")
        for domain in ("chat", "code", "safety-refuse", "safety-response")
    ),
    "reward_bench_2": (("reward_bench_2", "test_sample.jsonl"),),
    "rmb_pairwise": (("rmb", "pairwise.jsonl"),),
    "rmb_bon": (("rmb", "bon.jsonl"),),
}

# Where each benchmark lives on the hub, and its split. RMB's authors publish on GitHub only, so a
# hub id for RMB must be given explicitly.
HUB_DEFAULTS: dict[str, tuple[str, str] | None] = {
    "rm_bench": ("THU-KEG/RM-Bench", "train"),
    "reward_bench_2": ("allenai/reward-bench-2", "test"),
    "rmb_pairwise": None,
    "rmb_bon": None,
    # JudgeBench's two splits by response model (GPT-4o: 350 pairs, Claude-3.5-Sonnet: 270).
    "judge_bench": ("ScalerLab/JudgeBench", "gpt+claude"),
}
JUDGE_BENCH_LABELS = ("A>B", "B>A")

DatasetLoader = Callable[..., Iterable[dict[str, Any]]]


class BenchmarkFormatError(ValueError):
    """A row that does not match its benchmark's format."""


class _Row:
    """Typed field access on one raw row; every error names the origin, row and field."""

    def __init__(self, row: Any, origin: str, index: int) -> None:
        self.where = f"{origin} row {index}"
        if not isinstance(row, dict):
            raise BenchmarkFormatError(f"{self.where}: expected a JSON object, got {type(row).__name__}")
        self.row = row

    def fail(self, field: str, problem: str) -> BenchmarkFormatError:
        return BenchmarkFormatError(f"{self.where}, field {field!r}: {problem}")

    def get(self, field: str) -> Any:
        if field not in self.row:
            raise self.fail(field, f"missing (fields present: {sorted(self.row)})")
        return self.row[field]

    def text(self, field: str) -> str:
        value = self.get(field)
        if not isinstance(value, str):
            raise self.fail(field, f"expected a string, got {type(value).__name__}")
        return value

    def identifier(self, field: str) -> str:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(field, f"expected a string or integer id, got {type(value).__name__}")
        return str(value)

    def integer(self, field: str) -> int:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"expected an integer, got {value!r}")
        return value

    def texts(self, field: str, length: int | None = None) -> list[str]:
        value = self.get(field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(field, "expected a list of strings")
        if length is not None and len(value) != length:
            raise self.fail(field, f"expected {length} responses, got {len(value)}")
        return list(value)

    def answer(self, field: str, position: int | None = None) -> str:
        """An RMB answer object {"llm_name": ..., "answer": "..."}, or one inside a list field."""
        value = self.get(field)
        label = field
        if position is not None:
            value, label = value[position], f"{field}[{position}]"
        if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
            raise self.fail(label, 'expected an object with a string "answer"')
        return value["answer"]


# --- per-benchmark row parsers -------------------------------------------------------------------


def _rm_bench_item(row: _Row, domain: str | None) -> BenchmarkItem:
    # The per-domain files carry no domain (it is the file name); the hub's total_dataset has one.
    row_domain = row.text("domain") if "domain" in row.row else None
    if row_domain is not None and domain is not None and row_domain != domain:
        raise row.fail("domain", f"{row_domain!r} disagrees with the file's domain {domain!r}")
    domain = row_domain or domain
    if domain not in RM_BENCH_DOMAINS:
        raise row.fail(
            "domain", f"expected one of {RM_BENCH_DOMAINS} (from the field or file name), got {domain!r}"
        )
    metadata = {
        k: row.row[k] for k in ("subset", "language", "task_id", "error_key", "error") if k in row.row
    }
    return BenchmarkItem(
        benchmark="rm_bench",
        id=f"{domain}:{row.identifier('id')}",
        domain=domain,
        input=[ChatMessage(role="user", content=row.text("prompt"))],
        responses=row.texts("chosen", 3) + row.texts("rejected", 3),
        n_correct=3,
        metadata={"source_id": row.row["id"], "styles": list(RM_BENCH_STYLES), **metadata},
    )


def _reward_bench_2_item(row: _Row, domain: str | None) -> BenchmarkItem:
    item_id, subset = row.identifier("id"), row.text("subset")
    chosen, rejected = row.texts("chosen"), row.texts("rejected")
    num_correct, num_incorrect = row.integer("num_correct"), row.integer("num_incorrect")
    if num_correct != len(chosen) or num_correct < 1:
        raise row.fail("num_correct", f"{num_correct} does not match {len(chosen)} chosen responses")
    if num_incorrect != len(rejected) or num_incorrect < 1:
        raise row.fail("num_incorrect", f"{num_incorrect} does not match {len(rejected)} rejected responses")
    if "total_completions" in row.row and row.integer("total_completions") != num_correct + num_incorrect:
        raise row.fail("total_completions", "is not num_correct + num_incorrect")
    if subset.lower() == "ties" and item_id.split(":", 1)[0] not in ("ref", "tied"):
        raise row.fail("id", f"a Ties id must look like 'ref:<n>' or 'tied:<n>', got {item_id!r}")
    return BenchmarkItem(
        benchmark="reward_bench_2",
        id=item_id,
        domain=subset,
        input=[ChatMessage(role="user", content=row.text("prompt"))],
        responses=chosen + rejected,
        n_correct=num_correct,
        metadata={k: row.row[k] for k in ("models", "additional_metadata") if k in row.row},
    )


def _rmb_conversation(row: _Row) -> tuple[list[ChatMessage], list[str | None]]:
    turns = row.get("conversation_input")
    if not isinstance(turns, list) or not turns:
        raise row.fail("conversation_input", "expected a non-empty list of messages")
    messages, languages = [], []
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant", "system"):
            raise row.fail("conversation_input", f"message {position} needs role user/assistant/system")
        if not isinstance(turn.get("content"), str):
            raise row.fail("conversation_input", f"message {position} needs a string 'content'")
        messages.append(ChatMessage(role=turn["role"], content=turn["content"]))
        languages.append(turn.get("language"))
    return messages, languages


def _rmb_domain(row: _Row, prefix: str) -> tuple[str, str]:
    path = row.text("category_path")
    if not path.startswith(prefix):
        raise row.fail("category_path", f"expected it to start with {prefix!r}, got {path!r}")
    return path, path[len(prefix) :]


def _rmb_pairwise_item(row: _Row, domain: str | None) -> BenchmarkItem:
    if "reject" not in row.row and "rejected" in row.row:
        raise row.fail("reject", "missing; RMB names the losing answer 'reject', not 'rejected'")
    messages, languages = _rmb_conversation(row)
    path, rmb_domain = _rmb_domain(row, "Pairwise_set/")
    return BenchmarkItem(
        benchmark="rmb_pairwise",
        id=row.identifier("pair_uid"),
        domain=rmb_domain,
        input=messages,
        responses=[row.answer("chosen"), row.answer("reject")],
        n_correct=1,
        metadata={
            "category_path": path,
            "languages": languages,
            "models": [row.row["chosen"].get("llm_name"), row.row["reject"].get("llm_name")],
        },
    )


def _rmb_bon_item(row: _Row, domain: str | None) -> BenchmarkItem:
    messages, languages = _rmb_conversation(row)
    path, rmb_domain = _rmb_domain(row, "BoN_set/")
    losers = row.get("loser_list")
    if not isinstance(losers, list) or not losers:
        raise row.fail("loser_list", "expected a non-empty list of answers")
    return BenchmarkItem(
        benchmark="rmb_bon",
        id=row.identifier("bon_uid"),
        domain=rmb_domain,
        input=messages,
        responses=[row.answer("bon_best")] + [row.answer("loser_list", i) for i in range(len(losers))],
        n_correct=1,
        metadata={
            "category_path": path,
            "languages": languages,
            "models": [row.row["bon_best"].get("llm_name")] + [loser.get("llm_name") for loser in losers],
        },
    )


def _judge_bench_item(row: _Row, domain: str | None) -> BenchmarkItem:
    label = row.text("label")
    if label not in JUDGE_BENCH_LABELS:
        raise row.fail("label", f"expected one of {JUDGE_BENCH_LABELS}, got {label!r}")
    response_a, response_b = row.text("response_A"), row.text("response_B")
    source = row.text("source")
    a_index = 0 if label == "A>B" else 1  # responses are stored correct first
    return BenchmarkItem(
        benchmark="judge_bench",
        id=row.identifier("pair_id"),
        domain=category_of(source),
        input=[ChatMessage(role="user", content=row.text("question"))],
        responses=[response_a, response_b] if a_index == 0 else [response_b, response_a],
        n_correct=1,
        metadata={
            "label": label,
            "a_index": a_index,
            "source": source,
            "original_id": row.identifier("original_id"),
            "response_model": row.text("response_model"),
        },
    )


_PARSERS: dict[str, Callable[[_Row, str | None], BenchmarkItem]] = {
    "rm_bench": _rm_bench_item,
    "reward_bench_2": _reward_bench_2_item,
    "rmb_pairwise": _rmb_pairwise_item,
    "rmb_bon": _rmb_bon_item,
    "judge_bench": _judge_bench_item,
}


def _check_name(name: str) -> BenchmarkName:
    if name not in BENCHMARK_NAMES:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {BENCHMARK_NAMES}")
    return name  # type: ignore[return-value]


def parse_rows(
    name: str, rows: Iterable[Any], *, origin: str, domain: str | None = None
) -> list[BenchmarkItem]:
    """Items from raw rows of one benchmark. `domain` is RM-Bench's file-name domain, if any."""
    parser = _PARSERS[_check_name(name)]
    items = []
    for index, raw in enumerate(rows):
        row = _Row(raw, origin, index)
        try:
            items.append(parser(row, domain))
        except BenchmarkFormatError:
            raise
        except ValueError as exc:  # pydantic validation of the item itself
            raise BenchmarkFormatError(f"{row.where}: {exc}") from exc
    return items


def _unique(items: list[BenchmarkItem]) -> list[BenchmarkItem]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkFormatError(f"{item.benchmark}: item id {item.id!r} appears more than once")
        seen.add(item.id)
    return items


# --- sources -------------------------------------------------------------------------------------


def rm_bench_domain_from_path(path: Path) -> str | None:
    """`safety-refuse_filtered.jsonl` -> "safety-refuse"; None for files like total_dataset.json."""
    stem = Path(path).name.split(".")[0].removesuffix("_filtered")
    return stem if stem in RM_BENCH_DOMAINS else None


def load_files(name: str, paths: Sequence[str | Path]) -> list[BenchmarkItem]:
    """Items from local files in the benchmark's own format (.jsonl/.json[.gz] or .parquet)."""
    name = _check_name(name)
    items: list[BenchmarkItem] = []
    for path in map(Path, paths):
        domain = rm_bench_domain_from_path(path) if name == "rm_bench" else None
        try:
            rows = read_rows_file(path)
        except RowsFileError as error:
            raise BenchmarkFormatError(f"{name}: {error}") from None
        if not rows:
            raise BenchmarkFormatError(f"{name}: {path} holds no rows")
        items.extend(parse_rows(name, rows, origin=path.name, domain=domain))
    return _unique(items)


def load_bundled(name: str) -> list[BenchmarkItem]:
    """The sample of the benchmark bundled with the package (RM-Bench: no math domain)."""
    name = _check_name(name)
    if name not in BUNDLED_FILES:
        raise NoBenchmarkSource(f"{name} has no bundled rows; {HOW_TO_CONFIGURE.format(name=name)}")
    return load_files(name, [bundled_path(*parts) for parts in BUNDLED_FILES[name]])


def load_from_hub(
    name: str,
    repo_id: str | None = None,
    split: str | None = None,
    *,
    dataset_loader: DatasetLoader | None = None,
    **load_kwargs: Any,
) -> list[BenchmarkItem]:
    """Items from the Hugging Face hub via `datasets.load_dataset(repo_id, split=split, **load_kwargs)`.

    `dataset_loader` replaces `datasets.load_dataset` (tests pass one that reads a local file).
    RM-Bench rows from the hub must carry their `domain` field (its `total_dataset.json` does).
    A split "a+b" loads each split in turn (JudgeBench's default: both response-model splits).
    """
    name = _check_name(name)
    default = HUB_DEFAULTS[name]
    if repo_id is None:
        if default is None:
            raise ValueError(f"{name} has no official hub dataset; pass repo_id explicitly")
        repo_id = default[0]
    if split is None:
        split = default[1] if default is not None else "train"
    if dataset_loader is None:
        from datasets import load_dataset  # heavy; only the hub path needs it

        dataset_loader = load_dataset
    items: list[BenchmarkItem] = []
    for part in split.split("+"):
        rows = dataset_loader(repo_id, split=part, **load_kwargs)
        items.extend(parse_rows(name, rows, origin=f"{repo_id} [{part}]"))
    return _unique(items)


def load_benchmark(name: str, source: str = "bundled", **kwargs: Any) -> list[BenchmarkItem]:
    """One entry point: source "bundled", "hub" (kwargs of `load_from_hub`) or "files" (`paths=`)."""
    if source == "bundled":
        return load_bundled(name, **kwargs)
    if source == "hub":
        return load_from_hub(name, **kwargs)
    if source == "files":
        return load_files(name, **kwargs)
    raise ValueError(f"unknown source {source!r}; expected 'bundled', 'hub' or 'files'")


# --- which source a benchmark uses ---------------------------------------------------------------

FILES_HINT = (
    "give it a local file in its own format (RMFORGE_BENCHMARK_FILES={name}=path/to/{name}.jsonl, or "
    "the DatasetSourceResource config benchmark_files: {{{name}: [path/to/{name}.jsonl]}})"
)
HOW_TO_CONFIGURE = FILES_HINT + " or use the hub (DatasetSourceResource mode: hub)"


class NoBenchmarkSource(ValueError):
    """A benchmark with no configured source (nothing bundled, no files, no hub in this mode)."""


class BenchmarkSource(BaseModel):
    """Where one benchmark's items come from: bundled sample, local files or the hub."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmark: BenchmarkName
    kind: Literal["bundled", "files", "hub"]
    paths: tuple[str, ...] = ()
    repo_id: str | None = None
    split: str | None = None

    def describe(self) -> str:
        if self.kind == "files":
            return f"files: {', '.join(self.paths)}"
        if self.kind == "hub":
            return f"hub: {self.repo_id} [{self.split}]"
        return "bundled: " + ", ".join("/".join(parts) for parts in BUNDLED_FILES[self.benchmark])

    def load(self, **hub_kwargs: Any) -> list[BenchmarkItem]:
        if self.kind == "files":
            return load_files(self.benchmark, self.paths)
        if self.kind == "hub":
            return load_from_hub(self.benchmark, self.repo_id, self.split, **hub_kwargs)
        return load_bundled(self.benchmark)


def benchmark_source(
    name: str, *, mode: str = "bundled", files: Mapping[str, Sequence[str]] | None = None
) -> BenchmarkSource:
    """The source of `name`: its configured files, else the hub when mode is "hub", else its
    bundled sample (modes "bundled" and "local"; "local" is about datasets, not benchmarks).
    Raises `NoBenchmarkSource`, with how to configure one, when there is none."""
    name = _check_name(name)
    unknown = sorted(set(files or {}) - set(BENCHMARK_NAMES))
    if unknown:
        raise ValueError(f"benchmark_files for unknown benchmarks {unknown}; expected some of {BENCHMARK_NAMES}")
    paths = tuple(str(p) for p in (files or {}).get(name, ()))
    if paths:
        return BenchmarkSource(benchmark=name, kind="files", paths=paths)
    if mode == "hub":
        default = HUB_DEFAULTS[name]
        if default is None:
            raise NoBenchmarkSource(
                f"{name} has no hub dataset (its authors publish on GitHub only); {FILES_HINT.format(name=name)}"
            )
        return BenchmarkSource(benchmark=name, kind="hub", repo_id=default[0], split=default[1])
    if name in BUNDLED_FILES:
        return BenchmarkSource(benchmark=name, kind="bundled")
    raise NoBenchmarkSource(f"{name} has no bundled rows; {HOW_TO_CONFIGURE.format(name=name)}")
