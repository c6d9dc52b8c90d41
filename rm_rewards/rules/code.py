"""Code rewards: syntax, style, similarity to a reference patch, and execution against tests.

- `code_syntax_check`: the share of the response's Python code blocks that parse.
- `code_style`: indentation (4 spaces per level), snake_case names, line length; each a share
  of compliant items, the score their mean.
- `code_patch_similarity`: difflib ratio between the response's code (or diff) and the
  reference's, line by line after whitespace normalisation.
- `code_execution`: the pass rate of the response's code against the sample's tests, run in
  `rm_rewards.sandbox.api` (never in this process). Batches run at most `max_workers` programs at
  a time (2 by default: the CI machines have 2 cores).

Code is found in fenced blocks (``` or ~~~, CommonMark rules); blocks tagged with another
language are skipped, not counted as failures; untagged blocks count as Python unless
`untagged_as_python=False`. Without any block, the execution reward treats the whole response
as code (a raw completion).

Tests for `code_execution`, looked up in this order (JSON text in `sample.reference` may hold
either form too):
- HumanEval form: `metadata["test"]` (defines `check(candidate)`) and `metadata["entry_point"]`,
  optionally `metadata["prompt"]`, prepended when the code does not define the entry point
  itself (a completion of the prompt's function body);
- stdin/stdout form: `metadata["test_cases"]`, a list (or JSON text of a list) of
  `{"input": str, "output": str}`; output is compared after stripping trailing whitespace.

Syntax and style report an error instead of a score for more than `max_code_chars` (200,000)
characters of Python: parsing 1 MB takes seconds, and truncating would change the answer.

Bare functions: `extract_code_blocks`, `python_blocks`, `python_parse_error`, `style_report`,
`comparable_lines`, `patch_similarity`, `execution_tests`, `solution_code`.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import io
import json
import re
import tokenize
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import Field

from rm_rewards.core.kinds import DEFAULT_MAX_CONCURRENCY, PointwiseReward, describe_error, error_score
from rm_rewards.core.registry import register
from rm_rewards.core.schema import DimensionScore, ResponseScore, RewardResult, Sample
from rm_rewards.sandbox.api import SandboxJob, SandboxLimits, SandboxResult, humaneval_program, run_many

PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "py3"})
MAX_REASON_PROBLEMS = 5
DEFAULT_MAX_CODE_CHARS = 200_000


def clean_text(text: str) -> str:
    """Reasons must be storable: lone surrogates from broken input become escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- finding code ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBlock:
    language: str  # first word of the fence's info string, lower-cased; "" when untagged
    code: str


_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def extract_code_blocks(text: str) -> list[CodeBlock]:
    """Fenced code blocks in order. A fence closes on a line of the same character at least as
    long; an unclosed fence runs to the end of the text (a truncated answer)."""
    blocks: list[CodeBlock] = []
    fence: str | None = None
    language, lines = "", []
    for line in text.splitlines():
        if fence is None:
            opening = _FENCE_RE.fullmatch(line)
            if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
                fence, lines = opening.group(1), []
                info = opening.group(2).strip().split()
                language = info[0].lower().strip("{.}") if info else ""
            continue
        stripped = line.strip()
        if stripped.startswith(fence) and not stripped.strip(fence[0]) and len(line) - len(line.lstrip()) < 4:
            blocks.append(CodeBlock(language, "\n".join(lines) + "\n"))
            fence = None
        else:
            lines.append(line)
    if fence is not None:
        blocks.append(CodeBlock(language, "\n".join(lines) + "\n"))
    return blocks


def python_blocks(text: str, untagged_as_python: bool = True) -> tuple[list[str], list[str]]:
    """The Python blocks' code, and the languages of the blocks skipped."""
    code, skipped = [], []
    for block in extract_code_blocks(text):
        if block.language in PYTHON_LANGUAGES or (untagged_as_python and not block.language):
            code.append(block.code)
        else:
            skipped.append(block.language or "untagged")
    return code, skipped


def parse_python(code: str) -> tuple[ast.Module | None, str | None]:
    """The syntax tree, or None and why `ast.parse` rejects the code."""
    try:
        return ast.parse(code), None
    except SyntaxError as exc:
        return None, clean_text(f"SyntaxError at line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:  # lone surrogates, nesting
        return None, clean_text(describe_error(exc))


def python_parse_error(code: str) -> str | None:
    """Why `code` is not valid Python, or None when it parses."""
    return parse_python(code)[1]


def too_much_code(blocks: Sequence[str], max_code_chars: int) -> ResponseScore | None:
    """An error instead of a score when parsing would take seconds (ast.parse of 1 MB ~2 s):
    truncating would change the answer, so the response is reported as not checked."""
    total = sum(len(block) for block in blocks)
    if total <= max_code_chars:
        return None
    return error_score(
        f"{total} characters of python code exceed max_code_chars={max_code_chars}; not checked"
    )


def _skipped_note(skipped: Sequence[str]) -> str:
    return f"; skipped {len(skipped)} block(s) in: {', '.join(sorted(set(skipped)))}" if skipped else ""


# --- syntax -----------------------------------------------------------------------------------------


def syntax_score(
    text: str, untagged_as_python: bool = True, max_code_chars: int = DEFAULT_MAX_CODE_CHARS
) -> ResponseScore:
    blocks, skipped = python_blocks(text, untagged_as_python)
    if not blocks:
        return ResponseScore(score=0.0, reason="no python code block" + _skipped_note(skipped))
    if oversized := too_much_code(blocks, max_code_chars):
        return oversized
    errors = [(i, e) for i, e in ((i, python_parse_error(b)) for i, b in enumerate(blocks, 1)) if e]
    parsed = len(blocks) - len(errors)
    details = "".join(f"; block {i}: {e}" for i, e in errors[:MAX_REASON_PROBLEMS])
    reason = f"{parsed}/{len(blocks)} python blocks parse{details}{_skipped_note(skipped)}"
    return ResponseScore(score=parsed / len(blocks), reason=reason)


@register(
    "code_syntax_check",
    tags=("code",),
    description="Share of the response's Python code blocks that parse (ast.parse); no block scores 0.",
)
class CodeSyntaxCheck(PointwiseReward):
    untagged_as_python: bool = True
    max_code_chars: int = DEFAULT_MAX_CODE_CHARS

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        return syntax_score(sample.responses[index].text, self.untagged_as_python, self.max_code_chars)


# --- style ------------------------------------------------------------------------------------------

_SNAKE_RE = re.compile(r"_*[a-z][a-z0-9_]*|_+")
_CONSTANT_RE = re.compile(r"_*[A-Z][A-Z0-9_]*")


@dataclass
class StyleReport:
    """Counts of compliant / checked items per check, and the first problems found."""

    counts: dict[str, list[int]] = field(
        default_factory=lambda: {"indentation": [0, 0], "naming": [0, 0], "line_length": [0, 0]}
    )
    problems: list[str] = field(default_factory=list)

    def record(self, check: str, ok: bool, problem: str) -> None:
        self.counts[check][0] += ok
        self.counts[check][1] += 1
        if not ok and len(self.problems) < MAX_REASON_PROBLEMS:
            self.problems.append(clean_text(problem))

    def share(self, check: str) -> float:
        good, total = self.counts[check]
        return good / total if total else 1.0


def _check_indentation(code: str, report: StyleReport, block: int) -> None:
    """Each new indentation level must be exactly 4 more spaces than the enclosing one."""
    levels = [0]
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.DEDENT:
            levels.pop()
        elif token.type == tokenize.INDENT:
            width = len(token.string.expandtabs(8))
            step = width - levels[-1]
            tabs = "\t" in token.string
            problem = (
                f"block {block} line {token.start[0]}: indented by {'tabs' if tabs else f'{step} spaces'}"
            )
            report.record("indentation", not tabs and step == 4, problem)
            levels.append(width)


def _names(tree: ast.AST) -> dict[str, str]:
    """Each defined name once: function names and arguments must be snake_case, variables may
    also be UPPER_CASE constants."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.setdefault(node.name, "function")
        elif isinstance(node, ast.arg):
            names.setdefault(node.arg, "argument")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.setdefault(node.id, "variable")
    return names


def _check_naming(tree: ast.AST, report: StyleReport, block: int) -> None:
    for name, kind in _names(tree).items():
        ok = bool(_SNAKE_RE.fullmatch(name)) or (kind == "variable" and bool(_CONSTANT_RE.fullmatch(name)))
        report.record("naming", ok, f"block {block}: {kind} name {name!r} is not snake_case")


def _check_line_lengths(code: str, report: StyleReport, block: int, max_line_length: int) -> None:
    for number, line in enumerate(code.splitlines(), 1):
        too_long = len(line) > max_line_length
        report.record("line_length", not too_long, f"block {block} line {number}: {len(line)} characters")


def style_report(blocks: Sequence[str], max_line_length: int = 100) -> tuple[StyleReport, list[str]]:
    """Style counts over the blocks that parse, and the parse errors of the others."""
    report, errors = StyleReport(), []
    for number, code in enumerate(blocks, 1):
        tree, error = parse_python(code)
        if tree is None:
            errors.append(f"block {number}: {error}")
            continue
        try:
            _check_indentation(code, report, number)
        except (tokenize.TokenError, SyntaxError) as exc:
            errors.append(f"block {number}: {describe_error(exc)}")
            continue
        _check_naming(tree, report, number)
        _check_line_lengths(code, report, number, max_line_length)
    return report, errors


def style_score(
    text: str,
    max_line_length: int = 100,
    untagged_as_python: bool = True,
    max_code_chars: int = DEFAULT_MAX_CODE_CHARS,
) -> ResponseScore:
    blocks, skipped = python_blocks(text, untagged_as_python)
    if oversized := too_much_code(blocks, max_code_chars):
        return oversized
    report, errors = style_report(blocks, max_line_length)
    if len(errors) == len(blocks):
        why = "no python code block" if not blocks else "no python block parses: " + "; ".join(errors[:3])
        return ResponseScore(score=0.0, reason=clean_text(why) + _skipped_note(skipped))
    checks = ("indentation", "naming", "line_length")
    dimensions = {
        c: DimensionScore(score=report.share(c), reason=f"{report.counts[c][0]}/{report.counts[c][1]} ok")
        for c in checks
    }
    score = sum(d.score for d in dimensions.values()) / len(checks)
    notes = report.problems + [f"not checked, {e}" for e in errors[:MAX_REASON_PROBLEMS]]
    reason = "; ".join(notes) if notes else "no style problems"
    return ResponseScore(
        score=score, reason=clean_text(reason) + _skipped_note(skipped), dimensions=dimensions
    )


@register(
    "code_style",
    tags=("code",),
    description="Python style of the code blocks: 4-space indentation, snake_case names, line length; mean share in [0, 1].",
)
class CodeStyle(PointwiseReward):
    max_line_length: int = 100
    untagged_as_python: bool = True
    max_code_chars: int = DEFAULT_MAX_CODE_CHARS

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        text = sample.responses[index].text
        return style_score(text, self.max_line_length, self.untagged_as_python, self.max_code_chars)


# --- patch similarity -------------------------------------------------------------------------------

_DIFF_HEADER_RE = re.compile(r"(diff --git |@@ |--- |\+\+\+ )")


def comparable_lines(text: str, max_lines: int = 5000) -> tuple[list[str], bool]:
    """The lines to compare: the code blocks (or the whole text), whitespace-normalised, blank
    lines dropped. For a unified diff only its changed lines count (with their +/- sign), so
    context lines that both patches copy from the file do not inflate the similarity."""
    blocks = extract_code_blocks(text)
    body = "\n".join(block.code for block in blocks) if blocks else text
    lines = body.splitlines()
    is_diff = any(_DIFF_HEADER_RE.match(line) for line in lines)
    if is_diff:
        lines = [line for line in lines if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    normalized = [" ".join(line.split()) for line in lines]
    return [line for line in normalized if line and line not in "+-"][:max_lines], is_diff


def patch_similarity(candidate: str, reference: str, max_lines: int = 5000) -> ResponseScore:
    ours, our_diff = comparable_lines(candidate, max_lines)
    theirs, their_diff = comparable_lines(reference, max_lines)
    if not ours:
        return ResponseScore(score=0.0, reason="no code in the response")
    ratio = difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio()
    mode = "diff" if our_diff and their_diff else "code"
    return ResponseScore(
        score=ratio, reason=f"{mode} similarity {ratio:.3f} over {len(ours)} vs {len(theirs)} lines"
    )


@register(
    "code_patch_similarity",
    tags=("code",),
    description="difflib similarity of the response's code or patch to the reference's, on normalised lines.",
)
class CodePatchSimilarity(PointwiseReward):
    max_lines: int = 5000

    def applies_to(self, sample: Sample) -> bool:
        return bool(sample.reference and sample.reference.strip())

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        if not self.applies_to(sample):
            raise ValueError(
                f"sample {sample.id}: reference is empty; code_patch_similarity needs the reference patch"
            )
        return patch_similarity(sample.responses[index].text, sample.reference, self.max_lines)


# --- execution --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionTest:
    """HumanEval form: `test` defines `check(candidate)`, called with the entry point."""

    test: str
    entry_point: str
    prompt: str = ""


@dataclass(frozen=True)
class IOCase:
    input: str
    output: str


def _io_cases(value: object, where: str) -> tuple[IOCase, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from None
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of {{'input', 'output'}} objects")
    cases = []
    for number, case in enumerate(value):
        if not (
            isinstance(case, dict)
            and isinstance(case.get("input"), str)
            and isinstance(case.get("output"), str)
        ):
            raise ValueError(f"{where}[{number}] needs string 'input' and 'output'")  # noqa: TRY004 - bad data
        cases.append(IOCase(case["input"], case["output"]))
    return tuple(cases)


def _function_test(source: dict, where: str) -> FunctionTest:
    test, entry_point, prompt = source.get("test"), source.get("entry_point"), source.get("prompt", "")
    if not isinstance(test, str) or not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"{where} needs a string 'test' and an identifier 'entry_point'")
    if not isinstance(prompt, str):
        raise ValueError(f"{where}['prompt'] must be a string")  # noqa: TRY004 - bad data, not a bug
    return FunctionTest(test, entry_point, prompt)


def execution_tests(sample: Sample) -> FunctionTest | tuple[IOCase, ...]:
    """The sample's tests (see the module docstring); ValueError naming the field otherwise."""
    where = f"sample {sample.id}: metadata"
    if "test" in sample.metadata or "entry_point" in sample.metadata:
        return _function_test(sample.metadata, where)
    if "test_cases" in sample.metadata:
        return _io_cases(sample.metadata["test_cases"], f"{where}['test_cases']")
    if sample.reference is None or not sample.reference.strip():
        raise ValueError(
            f"sample {sample.id}: no tests: needs metadata 'test'+'entry_point', 'test_cases', or JSON tests in reference"
        )
    where = f"sample {sample.id}: reference"
    try:
        parsed = json.loads(sample.reference)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not JSON tests: {exc}") from None
    if isinstance(parsed, dict):
        return _function_test(parsed, where)
    return _io_cases(parsed, where)


def _defines(code: str, name: str) -> bool:
    """Whether the code defines function `name` at top level (a `def` in column 0). A regex,
    not a parse: linear on a 1 MB response, and broken code still gets run and reported."""
    return re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.MULTILINE) is not None


def solution_code(text: str, entry_point: str | None = None, untagged_as_python: bool = True) -> str:
    """The code to run: the first block defining `entry_point` (else all blocks joined); for a
    stdin program the longest block; the whole text when there is no block."""
    blocks, _ = python_blocks(text, untagged_as_python)
    if not blocks:
        return text
    if entry_point is None:
        return max(blocks, key=len)
    for block in blocks:
        if _defines(block, entry_point):
            return block
    return "\n\n".join(blocks)


def _same_output(actual: str, expected: str) -> bool:
    def normalize(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.rstrip().splitlines())

    return normalize(actual) == normalize(expected)


def _shorten(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


@dataclass
class ExecutionPlan:
    """The sandbox jobs for one response and how to turn their results into its score."""

    jobs: list[SandboxJob]
    judge: Callable[[list[SandboxResult]], ResponseScore]


def _pass_rate(failures: list[str], total: int) -> ResponseScore:
    passed = total - len(failures)
    details = "".join(f"; {f}" for f in failures[:MAX_REASON_PROBLEMS])
    return ResponseScore(score=passed / total, reason=clean_text(f"{passed}/{total} tests passed{details}"))


def _sandbox_broken(results: list[SandboxResult]) -> ResponseScore | None:
    broken = [r for r in results if r.status == "sandbox_error"]
    return error_score(clean_text(f"sandbox failed: {broken[0].detail}")) if broken else None


def _function_plan(code: str, tests: FunctionTest, limits: SandboxLimits) -> ExecutionPlan:
    if tests.prompt and not _defines(code, tests.entry_point):
        code = tests.prompt + code
    program = humaneval_program(code, tests.test, tests.entry_point)

    def judge(results: list[SandboxResult]) -> ResponseScore:
        result = results[0]
        failures = [] if result.ok else [f"check({tests.entry_point}): {result.summary()}"]
        return _sandbox_broken(results) or _pass_rate(failures, 1)

    return ExecutionPlan([SandboxJob(program, limits=limits)], judge)


def _io_plan(code: str, cases: tuple[IOCase, ...], limits: SandboxLimits) -> ExecutionPlan:
    def judge(results: list[SandboxResult]) -> ResponseScore:
        failures = []
        for number, (case, result) in enumerate(zip(cases, results), 1):
            if not result.ok:
                failures.append(f"case {number}: {result.summary()}")
            elif not _same_output(result.stdout, case.output):
                expected, got = _shorten(case.output), _shorten(result.stdout)
                failures.append(f"case {number}: wrong output (expected {expected}, got {got})")
        return _sandbox_broken(results) or _pass_rate(failures, len(cases))

    return ExecutionPlan([SandboxJob(code, stdin=case.input, limits=limits) for case in cases], judge)


@register(
    "code_execution",
    tags=("code",),
    description="Pass rate of the response's code on the sample's tests (HumanEval check or stdin/stdout cases), run in the sandbox.",
)
class CodeExecution(PointwiseReward):
    timeout_s: float = Field(10.0, gt=0, description="wall-clock limit per program")
    memory_mb: int = Field(512, ge=32, description="address-space limit per process")
    max_workers: int = Field(2, ge=1, description="programs run at once in a batch")
    untagged_as_python: bool = True

    def applies_to(self, sample: Sample) -> bool:
        try:
            execution_tests(sample)
        except ValueError:
            return False
        return True

    def plan(self, sample: Sample, index: int) -> ExecutionPlan:
        tests = execution_tests(sample)
        limits = SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        text = sample.responses[index].text
        if isinstance(tests, FunctionTest):
            return _function_plan(
                solution_code(text, tests.entry_point, self.untagged_as_python), tests, limits
            )
        return _io_plan(solution_code(text, None, self.untagged_as_python), tests, limits)

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        plan = self.plan(sample, index)
        return plan.judge(run_many(plan.jobs, max_workers=self.max_workers))

    def evaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        """All programs of the batch go through one pool of `max_workers` sandboxes."""
        plans: list[list[ExecutionPlan | ResponseScore]] = []
        for sample in samples:
            plans.append([self._plan_or_error(sample, i) for i in range(len(sample.responses))])
        jobs = [job for row in plans for plan in row if isinstance(plan, ExecutionPlan) for job in plan.jobs]
        results = iter(run_many(jobs, max_workers=max(1, min(self.max_workers, max_concurrency))))
        return [
            self._checked(sample, [self._finish(plan, results) for plan in row])
            for sample, row in zip(samples, plans)
        ]

    async def aevaluate(self, sample: Sample) -> RewardResult:
        return await asyncio.to_thread(self.evaluate, sample)

    async def aevaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        return await asyncio.to_thread(lambda: self.evaluate_batch(samples, max_concurrency=max_concurrency))

    def _plan_or_error(self, sample: Sample, index: int) -> ExecutionPlan | ResponseScore:
        try:
            return self.plan(sample, index)
        except Exception as exc:  # noqa: BLE001 - a bad sample or response is an error value, not a crash
            return error_score(clean_text(describe_error(exc)))

    @staticmethod
    def _finish(plan: ExecutionPlan | ResponseScore, results: Iterator[SandboxResult]) -> ResponseScore:
        """Judge a plan on its share of the batch's results (taken in order); pass errors on."""
        if isinstance(plan, ResponseScore):
            return plan
        try:
            return plan.judge([next(results) for _ in plan.jobs])
        except Exception as exc:  # noqa: BLE001 - same contract as the kinds: errors become values
            return error_score(clean_text(describe_error(exc)))
