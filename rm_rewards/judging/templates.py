"""Judge prompts as data: a template (task, output spec, version) and a pydantic output schema.

A prompt is laid out the same way for every kind of judgement:

    system:  the template's task description
    user:    # Scenario      (what kind of request this is; omitted when empty)
             # Principles    (numbered, most important first; "judge overall quality" when none)
             # Examples      (optional)
             # Conversation  (the query, or the whole dialogue when there are several turns)
             # Answers       (one `<answer label="...">` block each; steps numbered for stepwise)
             # Output        (the template's output spec: the JSON object to reply with)

The output models do all the checking, so an answer that breaks a rule (a ranking that is not a
permutation, a violated principle that does not exist, a score out of range) is a parse error for
that item: the LLM client then neither returns it as usable nor caches it. Models whose rules depend
on the prompt (how many principles, answers or steps) are built per size by the `*_output_model`
factories and cached, so their JSON schema (sent as `response_format`) carries the same limits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from rm_rewards.core.schema import ChatMessage


class JudgeTemplate(BaseModel):
    """The fixed text of one kind of judge prompt. Bump `version` whenever the text changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str = Field(min_length=1)
    task: str = Field(min_length=1, description="System message: who the judge is and what it does")
    output_spec: str = Field(min_length=1, description="The closing section: exactly what to reply")

    @property
    def id(self) -> str:
        """`name-vVERSION`: sent to the client as the cache's template version, stored in provenance."""
        return f"{self.name}-v{self.version}"


_IMPARTIAL = (
    "You are an impartial expert judge of AI assistant answers. Judge against the principles you "
    "are given, which are listed from most to least important. Ignore the order in which answers "
    "are shown and do not let length sway you: a longer answer is better only if the extra content "
    "serves the user. Be concise in your critique."
)

POINTWISE_TEMPLATE = JudgeTemplate(
    name="pointwise",
    version="1",
    task=_IMPARTIAL + " You see one answer. Check it against each principle, note every principle "
    "it violates, then grade the answer as a whole.",
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"critique": "<what is good and bad about the answer, principle by principle>", '
        '"violated": [<numbers of the principles the answer violates; [] if none>], '
        '"score": <integer from 0 (useless or harmful) to {max_score} (excellent)>}'
    ),
)

PAIRWISE_TEMPLATE = JudgeTemplate(
    name="pairwise",
    version="1",
    task=_IMPARTIAL + " You see two answers, A and B, to the same conversation. Decide which one "
    "better satisfies the principles.",
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"critique": "<how the two answers compare on the principles>", '
        '"winner": "A" | "B" | "tie"}\n'
        'Say "tie" only when neither answer is better in any way that matters.'
    ),
)

LISTWISE_TEMPLATE = JudgeTemplate(
    name="listwise",
    version="1",
    task=_IMPARTIAL + " You see several numbered answers to the same conversation. Check each one "
    "against the principles and rank all of them from best to worst.",
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"critique": "<the main strengths and violations of each answer>", '
        '"ranking": [<every answer number exactly once, best first>]}\n'
        "There are {n_answers} answers, so the ranking has {n_answers} numbers from 1 to {n_answers}."
    ),
)

STEPWISE_TEMPLATE = JudgeTemplate(
    name="stepwise",
    version="1",
    task=_IMPARTIAL + " You see one answer split into numbered steps. Judge each step on its own: "
    "is it correct and does it follow from what came before, given the principles?",
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"critique": "<overall assessment>", '
        '"steps": [{"step": <step number>, "correct": true | false, "reason": "<why>"}, ...]}\n'
        "Give exactly one entry for each of the {n_steps} steps, in order."
    ),
)


# --- output models -------------------------------------------------------------------------------


class _Output(BaseModel):
    # Models add fields the schema did not ask for (e.g. "confidence"); that is not a reason to
    # throw a verdict away, so extra keys are ignored rather than rejected.
    model_config = ConfigDict(extra="ignore")

    critique: str = Field(default="", description="The judge's reasoning, shown as the reason")


def _no_booleans(value: Any) -> Any:
    """JSON `true` is not the number 1: pydantic's lax int would read {"score": true} as a grade of
    1, a score the model never gave. Numbers written as text ("3") still read as numbers."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, bool) for item in items):
        raise ValueError(f"expected a number, got the boolean in {value!r}")
    return value


class PointwiseJudgement(_Output):
    n_principles: ClassVar[int] = 0
    max_score: ClassVar[int] = 4

    violated: list[int] = Field(description="1-based numbers of violated principles")
    score: int = Field(description="Overall grade")

    @field_validator("violated", mode="before")
    @classmethod
    def _drop_repeats(cls, value: Any) -> Any:
        _no_booleans(value)
        # Naming a violated principle twice is sloppy, not wrong; drop repeats before the length check.
        if isinstance(value, list) and all(isinstance(v, (int, str)) for v in value):
            return list(dict.fromkeys(value))
        return value

    @field_validator("violated")
    @classmethod
    def _known_principles(cls, value: list[int]) -> list[int]:
        unknown = [v for v in value if not 1 <= v <= cls.n_principles]
        if unknown:
            allowed = f"1..{cls.n_principles}" if cls.n_principles else "none (there are no principles)"
            raise ValueError(f"violated principles {unknown} do not exist; allowed: {allowed}")
        return sorted(set(value))

    @field_validator("score", mode="before")
    @classmethod
    def _score_is_a_number(cls, value: Any) -> Any:
        return _no_booleans(value)

    @field_validator("score")
    @classmethod
    def _score_in_range(cls, value: int) -> int:
        if not 0 <= value <= cls.max_score:
            raise ValueError(f"score {value} is outside 0..{cls.max_score}")
        return value


_WINNER_RE = re.compile(r"^(?:answer|response)?\s*([ab])$", re.IGNORECASE)


class PairwiseJudgement(_Output):
    winner: Literal["A", "B", "tie"]

    @field_validator("winner", mode="before")
    @classmethod
    def _normalise_winner(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().strip(".").strip()
        if text.lower() == "tie":
            return "tie"
        match = _WINNER_RE.match(text)
        return match.group(1).upper() if match else value


class ListwiseJudgement(_Output):
    n_answers: ClassVar[int] = 0

    ranking: list[int] = Field(description="Answer numbers, best first")

    @field_validator("ranking", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, value: Any) -> Any:
        return _no_booleans(value)

    @field_validator("ranking")
    @classmethod
    def _is_permutation(cls, value: list[int]) -> list[int]:
        expected = list(range(1, cls.n_answers + 1))
        if sorted(value) != expected:
            raise ValueError(f"ranking {value} is not a permutation of 1..{cls.n_answers}")
        return value


class StepVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: int
    correct: bool
    reason: str = ""

    @field_validator("step", mode="before")
    @classmethod
    def _step_is_a_number(cls, value: Any) -> Any:
        return _no_booleans(value)


class StepwiseJudgement(_Output):
    n_steps: ClassVar[int] = 0

    steps: list[StepVerdict]

    @model_validator(mode="after")
    def _one_verdict_per_step(self) -> StepwiseJudgement:
        numbers = [s.step for s in self.steps]
        if sorted(numbers) != list(range(1, self.n_steps + 1)):
            raise ValueError(f"step verdicts for steps {numbers}; expected each of 1..{self.n_steps} once")
        self.steps.sort(key=lambda s: s.step)
        return self


def _sized(base: type[BaseModel], name: str, size_attrs: dict[str, int], **fields: Any) -> type[BaseModel]:
    model = create_model(name, __base__=base, __module__=__name__, **fields)
    for attribute, value in size_attrs.items():
        setattr(model, attribute, value)
    return model


@functools.lru_cache(maxsize=256)
def pointwise_output_model(n_principles: int, max_score: int = 4) -> type[PointwiseJudgement]:
    """The pointwise output model for a prompt with `n_principles` principles and scores 0..max_score."""
    item = Annotated[int, Field(ge=1, le=max(1, n_principles))]
    return _sized(
        PointwiseJudgement,
        f"PointwiseJudgement_{n_principles}p_{max_score}",
        {"n_principles": n_principles, "max_score": max_score},
        violated=(
            list[item],
            Field(max_length=n_principles, description="1-based numbers of violated principles"),
        ),
        score=(int, Field(ge=0, le=max_score, description="Overall grade")),
    )


@functools.lru_cache(maxsize=256)
def listwise_output_model(n_answers: int) -> type[ListwiseJudgement]:
    item = Annotated[int, Field(ge=1, le=n_answers)]
    return _sized(
        ListwiseJudgement,
        f"ListwiseJudgement_{n_answers}",
        {"n_answers": n_answers},
        ranking=(list[item], Field(min_length=n_answers, max_length=n_answers, description="Best first")),
    )


@functools.lru_cache(maxsize=256)
def stepwise_output_model(n_steps: int) -> type[StepwiseJudgement]:
    return _sized(
        StepwiseJudgement,
        f"StepwiseJudgement_{n_steps}",
        {"n_steps": n_steps},
        steps=(list[StepVerdict], Field(min_length=n_steps, max_length=n_steps)),
    )


# --- rendering -----------------------------------------------------------------------------------

Answer = tuple[str, str]  # (label shown to the judge, text)


def render_principles(principles: Sequence[str]) -> str:
    if not principles:
        return "No specific principles are given: judge overall quality for the user."
    lines = ["Listed from most to least important."]
    lines += [f"{number}. {text}" for number, text in enumerate(principles, start=1)]
    return "\n".join(lines)


def render_conversation(messages: Sequence[ChatMessage]) -> tuple[str, str]:
    """(heading, body): a lone user turn is "Query"; a longer exchange keeps every turn's role."""
    if len(messages) == 1 and messages[0].role == "user":
        return "Query", messages[0].content
    turns = [f"[{m.role}]\n{m.content}" for m in messages]
    return "Conversation", "\n\n".join(turns)


def render_answers(answers: Sequence[Answer]) -> str:
    # Answers are fenced with labelled tags so that headings inside an answer cannot pass for ours.
    return "\n\n".join(f'<answer label="{label}">\n{text}\n</answer>' for label, text in answers)


def render_steps(steps: Sequence[str]) -> str:
    return "\n\n".join(f"Step {number}:\n{text}" for number, text in enumerate(steps, start=1))


def render_prompt(
    template: JudgeTemplate,
    *,
    scenario: str,
    principles: Sequence[str],
    examples: Sequence[str],
    conversation: Sequence[ChatMessage],
    answers_heading: str,
    answers_text: str,
    output_values: dict[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The chat messages of one judge request (system = task, user = everything else)."""
    sections: list[tuple[str, str]] = []
    if scenario.strip():
        sections.append(("Scenario", scenario.strip()))
    sections.append(("Principles", render_principles(principles)))
    if examples:
        sections.append(("Examples", "\n\n".join(f"Example {k}:\n{e}" for k, e in enumerate(examples, 1))))
    sections.append(render_conversation(conversation))
    sections.append((answers_heading, answers_text))
    sections.append(("Output", fill(template.output_spec, output_values or {})))
    body = "\n\n".join(f"# {heading}\n{text}" for heading, text in sections)
    return [{"role": "system", "content": template.task}, {"role": "user", "content": body}]


def fill(text: str, values: dict[str, Any]) -> str:
    """Replace `{name}` placeholders; plain `str.format` would choke on the JSON braces in specs."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


__all__ = [
    "LISTWISE_TEMPLATE",
    "PAIRWISE_TEMPLATE",
    "POINTWISE_TEMPLATE",
    "STEPWISE_TEMPLATE",
    "JudgeTemplate",
    "ListwiseJudgement",
    "PairwiseJudgement",
    "PointwiseJudgement",
    "StepVerdict",
    "StepwiseJudgement",
    "fill",
    "listwise_output_model",
    "pointwise_output_model",
    "render_answers",
    "render_conversation",
    "render_principles",
    "render_prompt",
    "render_steps",
    "stepwise_output_model",
]
