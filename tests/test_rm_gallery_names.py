"""RM-Gallery's registry names resolve to rmforge rewards; the stated differences hold."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from rm_rewards.core import registry, rm_gallery_names
from rm_rewards.core.rm_gallery_names import RM_GALLERY_NAMES, RmGalleryName
from rm_rewards.core.schema import ChatMessage, Response, Sample

# Every `@RewardRegistry.register("...")` under rm_gallery/gallery/rm/ in rm-gallery 0.1.7 (PyPI;
# identical to 0.1.4 on GitHub), read from the installed package's registry.
RM_GALLERY_0_1_7_NAMES = {
    "accuracy", "f1_score", "rouge", "number_accuracy", "math_verify_reward",
    "code_syntax_check", "code_style", "code_patch_similarity", "code_execution",
    "reasoning_format", "reasoning_tool_call_format", "length_penalty", "ngram_repetition_penalty",
    "privacy_leakage", "detoxify_reward",
    "base_helpfulness_listwise", "base_harmlessness_listwise", "base_honesty_listwise",
    "base_helpfulness_pointwise", "base_harmlessness_pointwise", "base_honesty_pointwise",
    "safety_listwise_reward", "factuality_listwise_reward",
    "brainstorming_listwise_reward", "chat_listwise_reward", "classification_listwise_reward",
    "closed_qa_listwise_reward", "code_listwise_reward", "focus_listwise_reward",
    "generation_listwise_reward", "math_listwise_reward", "open_qa_listwise_reward",
    "precise_if_listwise_reward", "reasoning_listwise_reward", "rewrite_listwise_reward",
    "role_playing_listwise_reward", "summarization_listwise_reward", "translation_listwise_reward",
}  # fmt: skip

RM_GALLERY_PYTHON = Path(__file__).resolve().parents[1] / ".venvs" / "rm-gallery" / "bin" / "python"


def test_the_table_covers_exactly_rm_gallerys_registered_names() -> None:
    assert len(RM_GALLERY_0_1_7_NAMES) == 38
    assert set(RM_GALLERY_NAMES) == RM_GALLERY_0_1_7_NAMES
    assert all(name == entry.name for name, entry in RM_GALLERY_NAMES.items())


@pytest.mark.parametrize("name", sorted(RM_GALLERY_0_1_7_NAMES))
def test_every_name_resolves_or_says_why_not(name: str) -> None:
    entry = RM_GALLERY_NAMES[name]
    assert entry.note.strip() and "\n" not in entry.note
    if not entry.supported:
        with pytest.raises(KeyError, match="no rmforge equivalent"):
            registry.resolve_name(name)
        return
    assert registry.resolve_name(name) == entry.rmforge
    spec = registry.spec(entry.rmforge)
    if name != entry.rmforge:  # spec() takes registered names only: model keys stay canonical
        with pytest.raises(KeyError, match=f"RM-Gallery's name for '{entry.rmforge}'"):
            registry.spec(name)
    for kind in ("listwise", "pointwise"):  # the judges keep their kind
        if kind in name:
            assert spec.kind == kind and spec.is_llm
    if spec.required_params:  # the LLM judges need a client
        with pytest.raises(ValueError, match=f"bad parameters for reward '{entry.rmforge}'.*client"):
            registry.get(name)
    else:
        reward = registry.get(name)
        assert reward.name == entry.rmforge
        for key, value in entry.params.items():
            assert getattr(reward, key) == value


def test_an_rm_gallery_name_never_shadows_a_different_registered_reward() -> None:
    registered = {spec.name for spec in registry.specs()}
    for entry in RM_GALLERY_NAMES.values():
        assert entry.name == entry.rmforge or entry.name not in registered
        assert entry.rmforge is None or entry.rmforge in registered


def test_mapped_parameters_yield_to_the_callers() -> None:
    assert registry.get("reasoning_tool_call_format").require_think is True
    assert registry.get("reasoning_tool_call_format", require_think=False).require_think is False
    with pytest.raises(ValueError, match="bad parameters for reward 'tool_call_format'"):
        registry.get("reasoning_tool_call_format", nope=1)


def test_an_unsupported_name_fails_with_its_reason(monkeypatch) -> None:
    gone = RmGalleryName("carmo_reward", None, "needs RM-Gallery's CARMO pipeline, which rmforge has no part of")
    monkeypatch.setattr(rm_gallery_names, "RM_GALLERY_NAMES", MappingProxyType({**RM_GALLERY_NAMES, gone.name: gone}))
    with pytest.raises(KeyError, match="'carmo_reward' has no rmforge equivalent: needs RM-Gallery's CARMO"):
        registry.get("carmo_reward")
    assert "(unsupported)" in rm_gallery_names.format_rm_gallery_table([gone])
    with pytest.raises(KeyError, match="no reward named 'not_a_reward'"):
        registry.resolve_name("not_a_reward")


def test_notes_name_the_differences_that_matter() -> None:
    assert "strict" in RM_GALLERY_NAMES["reasoning_format"].note
    assert "[-0.5, 1]" in RM_GALLERY_NAMES["code_syntax_check"].note
    detoxify = RM_GALLERY_NAMES["detoxify_reward"].note
    assert "Detoxify" in detoxify and "offline" in detoxify
    assert RM_GALLERY_NAMES["length_penalty"].note.startswith("Same")


# Inputs on which the notes quote both systems' scores: (RM-Gallery name, response, reference,
# RM-Gallery 0.1.7's score, rmforge's score). The rmforge side always runs; the RM-Gallery side
# runs when bench/setup_rm_gallery_venv.sh has built .venvs/rm-gallery.
FENCE = "```"
CASES = [
    ("code_syntax_check", f"{FENCE}python\nx = 1\n{FENCE}\n{FENCE}python\ndef f(:\n{FENCE}", None, 0.0, 0.5),
    ("code_syntax_check", f"{FENCE}python\ndef f(:\n{FENCE}", None, -0.5, 0.0),
    ("reasoning_format", "intro <answer>a</answer> <think></think> <think>t</think> tail", None, 1.0, 0.0),
    ("reasoning_format", "<think>t</think><answer>a</answer>", None, 1.0, 1.0),
    ("accuracy", "Paris", "paris", 0.0, 1.0),
    ("f1_score", "the cat the cat sat.", "the cat sat", 2 / 3, 0.8),
    ("rouge", "The cat sat.", "the cat sat", 2 / 3, 1.0),
    ("number_accuracy", "y=4, x=3", "x=3, y=4", 0.0, 1.0),
    ("number_accuracy", "1,000", "1000", 0.0, 1.0),
    ("code_style", f"{FENCE}python\ndef MyFunc():\n  x = 1\n  return x\n{FENCE}", None, 0.75, 0.5),
    ("code_patch_similarity", f"{FENCE}python\nx = 1\n{FENCE}", "x = 1", 5 / 12, 1.0),
    ("reasoning_tool_call_format", "<think>t</think><answer>a</answer>", None, 1.0, 0.0),
    ("reasoning_tool_call_format", '<think>t</think><tool_call>{"name": "f", "arguments": [1]}</tool_call>',
     None, 1.0, 0.0),
    ("length_penalty", "short", None, -0.05, -0.05),
    ("privacy_leakage", "timestamp 1700000000", None, -0.5, 0.0),
    ("privacy_leakage", "call 555-123-4567", None, -0.5, -0.5),
]


def _sample(response: str, reference: str | None) -> Sample:
    return Sample(
        id="s", source="test", input=[ChatMessage(role="user", content="q")],
        responses=[Response(message=ChatMessage(role="assistant", content=response))], reference=reference,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "response", "reference", "theirs", "ours"), CASES)
def test_rmforge_scores_quoted_in_the_notes(name, response, reference, theirs, ours) -> None:
    result = registry.get(name).evaluate(_sample(response, reference))
    assert result.values() == [pytest.approx(ours)]


_RM_GALLERY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from rm_gallery.core.data.schema import DataOutput, DataSample, Step
    from rm_gallery.core.model.message import ChatMessage
    from rm_gallery.core.reward.registry import RewardRegistry
    import rm_gallery.gallery.rm  # registers the built-in rewards

    names, scores = sorted(RewardRegistry._registry), []
    for name, response, reference in json.loads(sys.stdin.read()):
        label = {"reference": reference or ""}
        sample = DataSample(unique_id="s", input=[ChatMessage(role="user", content="q")],
                            output=[DataOutput(answer=Step(role="assistant", content=response, label=label))])
        result = RewardRegistry.get(name)().evaluate(sample)
        scores.append(result.output[0].answer.reward.details[0].score)
    print(json.dumps({"names": names, "scores": scores}))
    """
)


@pytest.mark.skipif(not RM_GALLERY_PYTHON.exists(), reason="no .venvs/rm-gallery (bench/setup_rm_gallery_venv.sh)")
def test_rm_gallery_itself_registers_these_names_and_gives_the_quoted_scores(tmp_path) -> None:
    # Run in a scratch directory: rm-gallery's logger writes a log/ folder into the working directory.
    done = subprocess.run(
        [str(RM_GALLERY_PYTHON), "-c", _RM_GALLERY_SCRIPT],
        input=json.dumps([case[:3] for case in CASES]), capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(answer["names"]) == RM_GALLERY_0_1_7_NAMES
    assert answer["scores"] == [pytest.approx(case[3]) for case in CASES]
