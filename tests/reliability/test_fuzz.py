"""Fuzz (hypothesis) of what reads untrusted text and rows: judge output parsing (structured output
and the judges' output models, once through a judge over real HTTP), the dataset converters and
the benchmark loaders.

Properties: only the documented error types escape (`StructuredOutputError`; converters raise
nothing for a bad row, they quarantine it; `BenchmarkFormatError` / `RowsFileError`), and a parse
failure is an error, never a score: every answer is generated together with what it must parse
to, and a score appears only when the answer held exactly that score.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rm_rewards.benchmarks.loaders import BenchmarkFormatError, load_files, parse_rows
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.datasets.catalog import FORMATS
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.datasets.quarantine import raw_row_json
from rm_rewards.datasets.sources import RowsFileError
from rm_rewards.judging.judges import PointwiseJudge
from rm_rewards.judging.templates import (
    PairwiseJudgement,
    listwise_output_model,
    pointwise_output_model,
    stepwise_output_model,
)
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.structured import (
    StructuredOutputError,
    extract_json_object,
    extract_number_tag,
    parse_model,
)
from tests.reliability.test_bad_input import VALID, _judge_bench, _rmb_pairwise
from tests.support.fake_openai import reply

# Bounded so the file runs in well under a minute on a loaded 2-core machine.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_FORMAT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OVER_HTTP = settings(max_examples=20, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

MISSING = object()  # the key is left out of the generated object
MAX_SCORE, N_PRINCIPLES = 4, 3

# Any JSON value (and the numbers JSON text can hold that Python floats cannot: 10**400 → int,
# 1e400 → inf), as rows and model answers may contain.
JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just(10**400), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


# --- structured output: any text ------------------------------------------------------------


@FAST
@given(st.one_of(st.text(max_size=300), JSON_VALUES.map(json.dumps), st.text(alphabet="{}[]\":,0123 ", max_size=80)))
def test_any_text_is_an_object_or_a_structured_output_error(text):
    try:
        found = extract_json_object(text)
    except StructuredOutputError:
        return
    assert isinstance(found, dict)


def _wrap(kind: str, body: str) -> str:
    """How models dress the JSON: bare, a code fence, prose around it, a reasoning block first."""
    if kind == "fence":
        return f"```json\n{body}\n```"
    if kind == "prose":
        return f"My verdict follows.\n{body}\nThat is all."
    if kind == "think":  # a draft inside <think> must never be taken for the answer
        return '<think>{"critique": "draft", "violated": [], "score": 0}</think>\n' + body
    return body


WRAPPERS = st.sampled_from(["bare", "fence", "prose", "think"])


# --- pointwise: generated with the score it must parse to (or None: must fail) ----------------

SCORE_VALUES = st.one_of(
    st.integers(-3, MAX_SCORE + 3), st.floats(-2, 7, allow_nan=False).map(lambda f: round(f * 2) / 2),
    st.sampled_from([True, False, None, "3", "three", "", "4.5", [3], {"score": 3}, 1e400, 10**400, MISSING]),
)
VIOLATED_VALUES = st.one_of(
    st.lists(st.one_of(st.integers(-1, N_PRINCIPLES + 1), st.booleans(), st.just("x")), max_size=5),
    st.sampled_from([MISSING, None, 2, "1, 2"]),
)


def expected_score(score: Any) -> int | None:
    """The grade a pointwise answer holds, or None when it holds none (then parsing must fail)."""
    if score is MISSING or isinstance(score, bool):
        return None
    if isinstance(score, int) and 0 <= score <= MAX_SCORE:
        return score
    if isinstance(score, float) and math.isfinite(score) and score.is_integer() and 0 <= score <= MAX_SCORE:
        return int(score)
    if score == "3":  # a number written as text is still that number
        return 3
    return None


def violated_ok(violated: Any) -> bool:
    if violated is MISSING or not isinstance(violated, list):
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= N_PRINCIPLES for v in violated)


def pointwise_answer(score: Any, violated: Any, critique: Any) -> str:
    answer = {"critique": critique, "violated": violated, "score": score}
    return json.dumps({key: value for key, value in answer.items() if value is not MISSING})


@FAST
@given(SCORE_VALUES, VIOLATED_VALUES, st.one_of(st.text(max_size=40), st.just(MISSING), st.just(5)), WRAPPERS)
def test_a_pointwise_answer_parses_to_exactly_its_score_or_fails(score, violated, critique, wrapper):
    text = _wrap(wrapper, pointwise_answer(score, violated, critique))
    model = pointwise_output_model(N_PRINCIPLES, MAX_SCORE)
    expected = expected_score(score) if violated_ok(violated) and critique != 5 else None
    try:
        parsed = parse_model(text, model)
    except StructuredOutputError:
        assert expected is None, text
        return
    assert expected is not None, f"{text!r} parsed to {parsed!r}: a score the answer does not hold"
    assert parsed.score == expected and type(parsed.score) is int


@FAST
@given(st.one_of(st.sampled_from(["A", "b", "Answer A", "response B", " tie. ", "TIE", "A.", "neither", "", "AB",
                                  "A or B", 1, True, None]), st.text(max_size=8)), WRAPPERS)
def test_a_pairwise_winner_is_a_b_or_tie_as_written_or_the_answer_fails(winner, wrapper):
    text = _wrap(wrapper, json.dumps({"critique": "c", "winner": winner}))
    # As the template documents: "tie", or A / B optionally after "answer" / "response", any case,
    # surrounding spaces and full stops ignored.
    expected = None
    if isinstance(winner, str):
        said = winner.strip().strip(".").strip()
        letter = re.fullmatch(r"(?:answer|response)?\s*([ab])", said, re.IGNORECASE)
        expected = "tie" if said.lower() == "tie" else (letter.group(1).upper() if letter else None)
    try:
        parsed = parse_model(text, PairwiseJudgement)
    except StructuredOutputError:
        assert expected is None, text
        return
    assert parsed.winner == expected, (winner, parsed.winner)


@FAST
@given(st.integers(2, 5), st.lists(st.one_of(st.integers(0, 6), st.booleans()), max_size=7), WRAPPERS)
def test_a_listwise_ranking_is_a_permutation_or_the_answer_fails(n, ranking, wrapper):
    text = _wrap(wrapper, json.dumps({"critique": "c", "ranking": ranking}))
    valid = not any(isinstance(r, bool) for r in ranking) and sorted(ranking) == list(range(1, n + 1))
    try:
        parsed = parse_model(text, listwise_output_model(n))
    except StructuredOutputError:
        assert not valid, text
        return
    assert valid and parsed.ranking == ranking


@FAST
@given(st.integers(1, 4), st.lists(st.fixed_dictionaries(
    {"step": st.one_of(st.integers(0, 5), st.booleans()), "correct": st.one_of(st.booleans(), st.just("maybe"))}
), max_size=5), WRAPPERS)
def test_stepwise_verdicts_cover_every_step_once_or_the_answer_fails(n, steps, wrapper):
    text = _wrap(wrapper, json.dumps({"critique": "c", "steps": steps}))
    numbers = [s["step"] for s in steps]
    valid = (not any(isinstance(k, bool) for k in numbers) and sorted(numbers) == list(range(1, n + 1))
             and all(isinstance(s["correct"], bool) for s in steps))
    try:
        parsed = parse_model(text, stepwise_output_model(n))
    except StructuredOutputError:
        assert not valid, text
        return
    assert valid
    assert [v.correct for v in parsed.steps] == [s["correct"] for s in sorted(steps, key=lambda s: s["step"])]


NUMBER_TEXT = st.one_of(st.integers(-10, 20).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["3/5", "three", "", " 2 ", "1e999", "+.5", "4.", "-0"]))


@FAST
@given(st.text(max_size=20), NUMBER_TEXT, st.text(max_size=20), st.integers(0, 2))
def test_a_number_tag_reads_its_number_in_range_or_fails(before, content, after, copies):
    text = before + f"<score>{content}</score>" * copies + after
    try:
        value = extract_number_tag(text, "score", low=0, high=10)
    except StructuredOutputError:
        return
    # Read only from a tag the text really holds once, with a number in range.
    assert 0 <= value <= 10 and math.isfinite(value)
    assert text.lower().count("<score") == 1
    assert float(re.search(r"<score\s*>(.*?)</score\s*>", text, re.I | re.S).group(1).strip()) == value


# --- a judge over real HTTP: a failed parse is an error on the response, never a score -------


@OVER_HTTP
@given(SCORE_VALUES, VIOLATED_VALUES, WRAPPERS, st.integers(0, 10**9))
def test_the_pointwise_judge_scores_only_what_the_model_said(fake_openai, llm_config, score, violated, wrapper, nonce):
    answer = _wrap(wrapper, pointwise_answer(score, violated, "ok"))
    fake_openai.reset()
    fake_openai.set_default(reply(answer))
    client = LLMClient(llm_config(fake_openai, max_retries=0))
    judge = PointwiseJudge(client=client, principles=["Be correct.", "Be concise.", "Be kind."])
    sample = Sample(id=f"s{nonce}", source="fuzz", input=[ChatMessage(role="user", content=f"Question {nonce}")],
                    responses=[Response(message=ChatMessage(role="assistant", content="An answer."))])

    [result] = judge.evaluate_batch([sample])

    [scored] = result.scores
    expected = expected_score(score) if violated_ok(violated) else None
    if expected is None:
        assert scored.score is None and scored.error, (answer, scored)
    else:
        assert scored.error is None and scored.score == float(expected), (answer, scored)


# --- dataset converters ---------------------------------------------------------------------


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path inside a row, to mutate one at a time."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += _paths(inner, (*prefix, index))
    return out


@st.composite
def mutated_rows(draw, fmt: str) -> Any:
    """A valid row of `fmt` with one to three places replaced by any JSON value or removed, or any value."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    row = VALID[fmt][0](draw(st.integers(0, 3)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(row)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        target = row
        for key in path[:-1]:
            target = target[key]
        if draw(st.booleans()) and isinstance(target, dict):
            del target[path[-1]]
        else:
            target[path[-1]] = draw(JSON_VALUES)
    return row


def _converted(fmt: str, rows: list) -> tuple[list[str], list[tuple[int, str]]]:
    result = convert_rows("fuzz", rows, format=fmt)
    return sorted(s.id for s in result.samples), [(q.row_index, q.field) for q in result.quarantined]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_converter_quarantines_or_keeps_every_row_and_never_raises(fmt):
    @PER_FORMAT
    @given(st.lists(mutated_rows(fmt), min_size=1, max_size=6))
    def check(rows):
        result = convert_rows("fuzz", rows, format=fmt)
        quarantined = [q.row_index for q in result.quarantined]
        assert len(quarantined) == len(set(quarantined))  # each bad row once
        kept = {i for s in result.samples for i in s.metadata["raw_row_indices"]}
        assert kept.isdisjoint(quarantined) and kept | set(quarantined) == set(range(len(rows)))
        for entry in result.quarantined:
            assert entry.field and entry.reason
            # The catch-all in read_rows is for readers' own bugs: a fuzzed row must be named by its field.
            assert not entry.reason.startswith("unreadable ("), entry.message
        # The asset converts the rows as stored in raw_rows (JSON text): that changes nothing.
        stored = [json.loads(raw_row_json(row)) for row in rows]
        assert _converted(fmt, stored) == _converted(fmt, rows)

    check()


# --- benchmark loaders --------------------------------------------------------------------------


def _rm_bench(i: int) -> dict:
    return {"id": i, "prompt": f"p{i}", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}


def _rmb_bon(i: int) -> dict:
    return {"bon_uid": str(i), "conversation_input": [{"role": "user", "content": f"Q{i}"}],
            "bon_best": {"llm_name": "a", "answer": "best"}, "loser_list": [{"llm_name": "b", "answer": "worse"}],
            "category_path": "BoN_set/Helpfulness/Chat/Discussion"}


def _reward_bench_2(i: int) -> dict:
    return {"id": str(i), "subset": "Factuality", "prompt": f"p{i}", "chosen": ["right"],
            "rejected": ["wrong 1", "wrong 2"], "num_correct": 1, "num_incorrect": 2}


BENCHMARK_ROWS = {"judge_bench": _judge_bench, "rmb_pairwise": _rmb_pairwise, "rm_bench": _rm_bench,
                  "rmb_bon": _rmb_bon, "reward_bench_2": _reward_bench_2}


@pytest.mark.parametrize("benchmark", sorted(BENCHMARK_ROWS))
def test_a_benchmark_row_is_an_item_or_a_format_error_naming_the_row(benchmark):
    @PER_FORMAT
    @given(st.data())
    def check(data):
        row = BENCHMARK_ROWS[benchmark](0)
        if data.draw(st.booleans()):
            path = data.draw(st.sampled_from(_paths(row)))
            target = row
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(JSON_VALUES)
        else:
            row = data.draw(JSON_VALUES)
        try:
            items = parse_rows(benchmark, [BENCHMARK_ROWS[benchmark](1), row], origin="fuzz.jsonl",
                               domain="chat" if benchmark == "rm_bench" else None)
        except BenchmarkFormatError as error:
            assert str(error).startswith("fuzz.jsonl row 1"), str(error)
            return
        assert len(items) == 2 and all(1 <= item.n_correct < len(item.responses) for item in items)

    check()


@FAST
@given(st.binary(max_size=300), st.sampled_from(["x.jsonl", "x.json", "x.jsonl.gz", "x.parquet", "gz.jsonl.gz"]))
def test_any_file_bytes_are_rows_or_a_format_error_naming_the_file(tmp_path_factory, data, name):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(gzip.compress(data) if name.startswith("gz") else data)
    try:
        items = load_files("judge_bench", [path])
    except BenchmarkFormatError as error:
        assert path.name in str(error), str(error)
        return
    assert items  # a file that loads holds items


@FAST
@given(st.binary(max_size=300), st.sampled_from(["x.jsonl", "x.json", "x.parquet", "x.jsonl.gz"]))
@example(b"\x1c", "x.jsonl")  # blank to str, not to bytes: first_row indexed an empty row list
def test_any_dataset_file_bytes_are_rows_or_a_rows_file_error(tmp_path_factory, data, name):
    from rm_rewards.datasets.sources import first_row, read_rows_file

    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    for read in (read_rows_file, first_row):
        try:
            read(path)
        except RowsFileError as error:
            assert str(path) in str(error)
