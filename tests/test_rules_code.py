"""Code rewards: known answers for syntax, style and similarity; HumanEval through the sandbox."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.datasets.bundled import bundled_path
from rm_rewards.rules import code as code_rules
from rm_rewards.rules.code import (
    CodeBlock,
    comparable_lines,
    execution_tests,
    extract_code_blocks,
    python_blocks,
    solution_code,
)
from rm_rewards.sandbox import supervisor

CODE_REWARDS = ("code_syntax_check", "code_style", "code_patch_similarity", "code_execution")


def make_sample(
    *texts: str, reference: str | None = None, metadata: dict | None = None, sample_id: str = "s1"
) -> Sample:
    return Sample(
        id=sample_id,
        source="test",
        input=[ChatMessage(role="user", content="write code")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in texts],
        reference=reference,
        metadata=metadata or {},
    )


def fenced(code: str, language: str = "python") -> str:
    return f"```{language}\n{code}```\n"


def scores(reward_name: str, sample: Sample, **params) -> list:
    result = registry.get(reward_name, **params).evaluate(sample)
    assert result.error is None, result.error
    return result.scores


# --- registry -----------------------------------------------------------------------------------


def test_code_rewards_are_registered_with_tag_and_description():
    specs = {s.name: s for s in registry.specs(tag="code")}
    assert set(CODE_REWARDS) <= set(specs)
    for name in CODE_REWARDS:
        assert specs[name].description and "\n" not in specs[name].description
        assert specs[name].kind == "pointwise" and not specs[name].is_llm


# --- finding code -------------------------------------------------------------------------------


def test_extract_code_blocks_reads_languages_tildes_long_fences_and_unclosed_blocks():
    text = textwrap.dedent(
        """\
        Intro with inline ```not a fence``` text.
        ```python title="a.py"
        x = 1
        ```
        ~~~js
        let y = 2;
        ~~~
        ````markdown
        ```
        inner
        ```
        ````
        ```
        untagged
        """
    )
    assert extract_code_blocks(text) == [
        CodeBlock("python", "x = 1\n"),
        CodeBlock("js", "let y = 2;\n"),
        CodeBlock("markdown", "```\ninner\n```\n"),
        CodeBlock("", "untagged\n"),
    ]


def test_python_blocks_skip_other_languages_and_optionally_untagged_ones():
    text = fenced("a = 1\n", "py") + fenced("echo hi\n", "bash") + fenced("b = 2\n", "")
    assert python_blocks(text) == (["a = 1\n", "b = 2\n"], ["bash"])
    assert python_blocks(text, untagged_as_python=False) == (["a = 1\n"], ["bash", "untagged"])


# --- syntax ---------------------------------------------------------------------------------------


def test_syntax_check_is_the_share_of_python_blocks_that_parse():
    text = (
        fenced("def f():\n    return 1\n") + fenced("def g(:\n    pass\n") + fenced("let x = ;", "javascript")
    )
    (score,) = scores("code_syntax_check", make_sample(text))
    assert score.score == 0.5
    assert score.reason.startswith("1/2 python blocks parse; block 2: SyntaxError at line 1")
    assert "skipped 1 block(s) in: javascript" in score.reason


@pytest.mark.parametrize(
    "text, expected_reason",
    [
        ("Just prose, no code.", "no python code block"),
        (fenced("ls -la\n", "bash"), "no python code block; skipped"),
    ],
)
def test_syntax_check_without_python_blocks_scores_zero_with_a_reason(text, expected_reason):
    (score,) = scores("code_syntax_check", make_sample(text))
    assert score.score == 0.0
    assert score.reason.startswith(expected_reason)


def test_syntax_check_can_ignore_untagged_blocks():
    text = fenced("the result is 42 apples\n", "")
    assert scores("code_syntax_check", make_sample(text))[0].score == 0.0
    assert scores("code_syntax_check", make_sample(text), untagged_as_python=False)[0].reason.startswith(
        "no python code block"
    )


@pytest.mark.parametrize("reward_name", ["code_syntax_check", "code_style"])
def test_too_much_code_is_an_error_not_a_guess(reward_name):
    (score,) = (
        registry.get(reward_name, max_code_chars=100).evaluate(make_sample(fenced("x = 1\n" * 30))).scores
    )
    assert score.score is None
    assert score.error == "180 characters of python code exceed max_code_chars=100; not checked"


# --- style ----------------------------------------------------------------------------------------


def test_style_of_clean_code_is_perfect():
    code = "MAX_ITEMS = 3\n\n\ndef add_two(first, second):\n    total = first + second\n    return total\n"
    (score,) = scores("code_style", make_sample(fenced(code)))
    assert score.score == 1.0
    assert score.reason == "no style problems"


def test_style_known_answer_for_two_space_indent_and_camel_case():
    code = "def addTwo(a, b):\n  total = a + b\n  return total\n"
    (score,) = scores("code_style", make_sample(fenced(code)))
    # indentation 0/1, naming 3/4 (addTwo), line length 3/3
    assert score.dimensions["indentation"].score == 0.0
    assert score.dimensions["naming"].score == 0.75
    assert score.dimensions["line_length"].score == 1.0
    assert score.score == pytest.approx((0.0 + 0.75 + 1.0) / 3)
    assert "indented by 2 spaces" in score.reason
    assert "function name 'addTwo' is not snake_case" in score.reason


def test_style_flags_tabs_camel_case_arguments_and_long_lines():
    code = "def f(camelArg):\n\tvalue = camelArg\n\treturn value  # " + "x" * 120 + "\n"
    (score,) = scores("code_style", make_sample(fenced(code)))
    assert score.dimensions["indentation"].score == 0.0
    assert score.dimensions["naming"].score == pytest.approx(2 / 3)
    assert score.dimensions["line_length"].score == pytest.approx(2 / 3)
    assert "indented by tabs" in score.reason
    assert "argument name 'camelArg'" in score.reason


def test_style_skips_blocks_that_do_not_parse_and_scores_zero_when_none_does():
    good = "def ok_name():\n    return 1\n"
    (score,) = scores("code_style", make_sample(fenced(good) + fenced("def (:\n")))
    assert score.score == 1.0
    assert "not checked, block 2: SyntaxError" in score.reason
    (nothing,) = scores("code_style", make_sample(fenced("def (:\n")))
    assert nothing.score == 0.0
    assert nothing.reason.startswith("no python block parses")


# --- patch similarity -----------------------------------------------------------------------------


def test_patch_similarity_ignores_whitespace_and_blank_lines():
    reference = "def f(x):\n    return x + 1\n"
    response = fenced("def f( x ):\n\n    return   x + 1\n").replace("f( x )", "f(x)")
    (score,) = scores("code_patch_similarity", make_sample(response, reference=reference))
    assert score.score == 1.0


def test_patch_similarity_known_answer():
    reference = "a = 1\nb = 2\nc = 3\nd = 4\n"
    response = fenced("a = 1\nb = 2\nc = 3\ne = 5\n")
    (score,) = scores("code_patch_similarity", make_sample(response, reference=reference))
    assert score.score == pytest.approx(2 * 3 / 8)


def test_patch_similarity_compares_only_the_changed_lines_of_diffs():
    ours = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n context one\n-old = 1\n+new = 2\n"
    theirs = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -5,3 +5,3 @@\n other context\n-old = 1\n+new = 2\n"
    assert comparable_lines(ours) == (["-old = 1", "+new = 2"], True)
    (score,) = scores("code_patch_similarity", make_sample(fenced(ours, "diff"), reference=theirs))
    assert score.score == 1.0
    assert score.reason.startswith("diff similarity")


def test_patch_similarity_needs_a_reference_and_code():
    reward = registry.get("code_patch_similarity")
    no_reference = make_sample("x = 1", sample_id="no-ref")
    assert not reward.applies_to(no_reference)
    (score,) = reward.evaluate(no_reference).scores
    assert score.score is None and "sample no-ref: reference is empty" in score.error
    (empty,) = scores("code_patch_similarity", make_sample("", reference="x = 1"))
    assert (empty.score, empty.reason) == (0.0, "no code in the response")


# --- execution: tests and code selection ---------------------------------------------------------

ADD_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(0, 0) == 0\n"
ADD_META = {"test": ADD_TEST, "entry_point": "add"}
SUM_CASES = [
    {"input": "1 2\n", "output": "3\n"},
    {"input": "10 -4\n", "output": "6"},
    {"input": "5 5\n", "output": "11\n"},
]
SUM_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_tests_come_from_metadata_or_json_reference_and_bad_ones_name_the_field():
    assert execution_tests(make_sample("x", metadata=ADD_META)).entry_point == "add"
    assert len(execution_tests(make_sample("x", metadata={"test_cases": json.dumps(SUM_CASES)}))) == 3
    assert len(execution_tests(make_sample("x", reference=json.dumps(SUM_CASES)))) == 3
    assert execution_tests(make_sample("x", reference=json.dumps(ADD_META))).test == ADD_TEST
    bad_case = {"test_cases": [SUM_CASES[0], {"input": "1"}]}
    with pytest.raises(
        ValueError, match=r"sample bad: metadata\['test_cases'\]\[1\] needs string 'input' and 'output'"
    ):
        execution_tests(make_sample("x", metadata=bad_case, sample_id="bad"))
    with pytest.raises(
        ValueError, match="sample bad: metadata needs a string 'test' and an identifier 'entry_point'"
    ):
        execution_tests(
            make_sample("x", metadata={"test": ADD_TEST, "entry_point": "add(1)"}, sample_id="bad")
        )
    with pytest.raises(ValueError, match="sample bad: reference is not JSON tests"):
        execution_tests(make_sample("x", reference="the answer is 3", sample_id="bad"))
    with pytest.raises(ValueError, match="sample bad: no tests"):
        execution_tests(make_sample("x", sample_id="bad"))


def test_solution_code_prefers_the_block_defining_the_entry_point():
    usage = fenced("print(add(1, 2))\n")
    solution = fenced("def add(a, b):\n    return a + b\n")
    assert solution_code(usage + solution, "add") == "def add(a, b):\n    return a + b\n"
    assert solution_code(fenced("x = 1\n") + fenced(SUM_PROGRAM)) == SUM_PROGRAM
    assert solution_code("    return a + b\n", "add") == "    return a + b\n"


# --- execution: running -------------------------------------------------------------------------


def test_execution_scores_a_function_against_its_check():
    right = fenced("def add(a, b):\n    return a + b\n")
    wrong = "Sure!\n" + fenced("def add(a, b):\n    return a * b\n")
    first, second = scores("code_execution", make_sample(right, wrong, metadata=ADD_META))
    assert (first.score, first.reason) == (1.0, "1/1 tests passed")
    assert second.score == 0.0
    assert "check(add): error: AssertionError" in second.reason


def test_execution_known_pass_rate_on_stdin_stdout_cases():
    (score,) = scores("code_execution", make_sample(fenced(SUM_PROGRAM), metadata={"test_cases": SUM_CASES}))
    assert score.score == pytest.approx(2 / 3)
    assert score.reason.startswith("2/3 tests passed; case 3: wrong output (expected '11\\n', got '10\\n')")


def test_execution_reports_sandbox_statuses_in_the_reason():
    loop = fenced("def add(a, b):\n    while True:\n        pass\n")
    hog = fenced("def add(a, b):\n    return len(bytearray(8 * 1024 ** 3))\n")
    looped, hogged = scores("code_execution", make_sample(loop, hog, metadata=ADD_META), timeout_s=1)
    assert looped.score == 0.0 and "timeout" in looped.reason
    assert hogged.score == 0.0 and "memory: MemoryError" in hogged.reason


def test_execution_parameters_are_validated():
    with pytest.raises(ValueError, match="timeout_s"):
        registry.get("code_execution", timeout_s=0)
    with pytest.raises(ValueError, match="max_workers"):
        registry.get("code_execution", max_workers=0)


def test_execution_without_tests_is_an_error_naming_the_sample():
    reward = registry.get("code_execution")
    sample = make_sample(fenced(SUM_PROGRAM), sample_id="untested")
    assert not reward.applies_to(sample)
    (score,) = reward.evaluate(sample).scores
    assert score.score is None and "sample untested: no tests" in score.error
    (batch_score,) = reward.evaluate_batch([sample])[0].scores
    assert batch_score.error == score.error


def test_a_broken_sandbox_is_an_error_not_a_zero(monkeypatch):
    monkeypatch.setattr(supervisor, "_SANDBOX_PYTHON", "/nonexistent/python3")
    (score,) = scores(
        "code_execution", make_sample(fenced("def add(a, b):\n    return a + b\n"), metadata=ADD_META)
    )
    assert score.score is None
    assert score.error.startswith("sandbox failed")


def test_batch_sends_every_program_through_one_bounded_pool(monkeypatch):
    calls = []
    real_run_many = code_rules.run_many

    def spy(jobs, *, max_workers):
        calls.append((len(jobs), max_workers))
        return real_run_many(jobs, max_workers=max_workers)

    monkeypatch.setattr(code_rules, "run_many", spy)
    samples = [
        make_sample(fenced("def add(a, b):\n    return a + b\n"), "x", metadata=ADD_META, sample_id="a"),
        make_sample(fenced(SUM_PROGRAM), metadata={"test_cases": SUM_CASES}, sample_id="b"),
        make_sample("no tests here", sample_id="c"),
    ]
    results = registry.get("code_execution").evaluate_batch(samples)
    assert calls == [(2 + 3, 2)]
    assert [r.values() for r in results] == [[1.0, 0.0], [pytest.approx(2 / 3)], [None]]
    async_results = asyncio.run(registry.get("code_execution").aevaluate_batch(samples))
    assert [r.values() for r in async_results] == [r.values() for r in results]


# --- HumanEval --------------------------------------------------------------------------------------

HUMANEVAL = [
    json.loads(line) for line in bundled_path("humaneval", "HumanEval.jsonl").read_text().splitlines()
]
SUBSET = HUMANEVAL[::8]  # 21 tasks spread over the set

# Appended after a correct solution: the entry point now returns a subtly different value.
ALTER_RETURN = """

def _altered(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    return 0 if value is None else None


_original = {entry_point}


def {entry_point}(*args, **kwargs):
    return _altered(_original(*args, **kwargs))
"""


def humaneval_sample(row: dict, *texts: str) -> Sample:
    metadata = {"test": row["test"], "entry_point": row["entry_point"], "prompt": row["prompt"]}
    return make_sample(*texts, metadata=metadata, sample_id=row["task_id"])


def canonical(row: dict) -> str:
    return "Here is the solution.\n\n" + fenced(row["prompt"] + row["canonical_solution"])


def test_humaneval_subset_canonical_passes_and_broken_solutions_fail():
    samples = [
        humaneval_sample(
            row,
            canonical(row),
            row["canonical_solution"],  # a raw completion of the prompt's body
            fenced(row["prompt"] + "    pass\n"),
            fenced(
                row["prompt"]
                + row["canonical_solution"]
                + ALTER_RETURN.format(entry_point=row["entry_point"])
            ),
        )
        for row in SUBSET
    ]
    results = registry.get("code_execution").evaluate_batch(samples)
    assert len(SUBSET) == 21
    for row, result in zip(SUBSET, results):
        assert result.values() == [1.0, 1.0, 0.0, 0.0], (row["task_id"], [s.reason for s in result.scores])


@pytest.mark.slow
def test_humaneval_all_164_canonical_solutions_pass():
    """Measured: ~11 s for all 164 with 2 workers on a shared 2-core machine."""
    samples = [humaneval_sample(row, canonical(row)) for row in HUMANEVAL]
    results = registry.get("code_execution").evaluate_batch(samples)
    failed = [(r.sample_id, r.scores[0].reason) for r in results if r.values() != [1.0]]
    assert len(results) == 164 and failed == []


# --- robustness -----------------------------------------------------------------------------------

HOSTILE_TEXTS = {
    "empty": "",
    "huge": "Answer:\n" + fenced("x = 1\n" * 170_000) + "y" * 10_000,
    "lone-surrogates": "bad \ud800 text\n" + fenced("s = '\udcff'\nprint(s)\n"),
    "non-english": "这是答案：\n"
    + fenced("def 加法(甲, 乙):\n    return 甲 + 乙\n# ç'est ça — ありがとう\n"),
}


@pytest.mark.parametrize("reward_name", CODE_REWARDS)
def test_code_rewards_survive_hostile_text(reward_name):
    reward = (
        registry.get(reward_name, timeout_s=5)
        if reward_name == "code_execution"
        else registry.get(reward_name)
    )
    sample = make_sample(
        *HOSTILE_TEXTS.values(), reference="def add(a, b):\n    return a + b\n", metadata=ADD_META
    )
    result = reward.evaluate(sample)
    assert result.error is None
    assert len(result.scores) == len(HOSTILE_TEXTS)
    for name, score in zip(HOSTILE_TEXTS, result.scores):
        assert (score.score is None) != (score.error is None), name
        assert 0.0 <= (score.score if score.score is not None else 0.0) <= 1.0, name
        json.dumps(score.model_dump()).encode("utf-8")  # storable: no lone surrogates left
        (score.reason + (score.error or "")).encode("utf-8")
