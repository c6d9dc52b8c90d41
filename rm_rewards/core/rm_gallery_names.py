"""RM-Gallery's reward registry names and their rmforge equivalents, as data.

`RM_GALLERY_NAMES` has one entry per name that RM-Gallery 0.1.x registers with
`RewardRegistry.register("...")` (all 38 under `rm_gallery/gallery/rm/`, the same in 0.1.4 on
GitHub and 0.1.7 on PyPI): the rmforge reward it resolves to, the parameters that bring that
reward closest to RM-Gallery's defaults, and how the two differ. Every difference was checked
against RM-Gallery 0.1.7's code (and, for the rules, by running both on the same inputs); "same"
means the same score on the same input with the default parameters. An entry whose `rmforge`
is None has no equivalent, and its note says why.

`registry.get(name)` and `registry.resolve_name(name)` accept these names; no reward is
registered twice, and `registry.spec` takes registered names only, so scores and model keys
keep one name per reward. `rmforge rewards list --rm-gallery` prints this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

RM_GALLERY_VERSION = "0.1.7"


@dataclass(frozen=True)
class RmGalleryName:
    name: str  # RM-Gallery's registry name
    rmforge: str | None  # the rmforge registry name; None: no equivalent (the note says why)
    note: str  # how rmforge's reward differs, or why there is no equivalent
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def supported(self) -> bool:
        return self.rmforge is not None


# --- the LLM judges ----------------------------------------------------------------------------

_LISTWISE = (
    "RM-Gallery asks for the single best answer and scores it 1, every other answer 0; rmforge asks "
    "for a full ranking, shown in a per-sample shuffled order, and scores rank r of n as (n-r)/(n-1); "
    "an unparseable verdict is an error value, not a score"
)
_POINTWISE = (
    "RM-Gallery scores 1 - (violated rubrics / rubrics) in [0, 1], and 1.0 when the judge lists no "
    "violation; rmforge asks for a 0-4 grade (max_score) and keeps the violations as a dimension; "
    "an unparseable verdict is an error value, not a score"
)
_OWN_PRINCIPLES = "default principles in rmforge's own wording, same themes"
_SWAPPED_SCENARIO = (
    "RM-Gallery's {kind} default scenario text is the {other} one (its base.py swaps the two "
    "DEFAULT_*_SCENARIO strings); rmforge's matches the dimension"
)


def _judge(name: str, rmforge: str, kind: str, *extra: str) -> RmGalleryName:
    base = _LISTWISE if kind == "listwise" else _POINTWISE
    return RmGalleryName(name, rmforge, "; ".join((base, *extra)) + ".")


_SCENARIOS = (
    "brainstorming", "chat", "classification", "closed_qa", "code", "focus", "generation", "math",
    "open_qa", "precise_if", "reasoning", "rewrite", "role_playing", "summarization", "translation",
)

_JUDGES: tuple[RmGalleryName, ...] = (
    _judge("base_helpfulness_listwise", "helpfulness_listwise", "listwise", _OWN_PRINCIPLES,
           _SWAPPED_SCENARIO.format(kind="helpfulness", other="harmlessness")),
    _judge("base_helpfulness_pointwise", "helpfulness_pointwise", "pointwise", _OWN_PRINCIPLES,
           _SWAPPED_SCENARIO.format(kind="helpfulness", other="harmlessness")),
    _judge("base_harmlessness_listwise", "harmlessness_listwise", "listwise", _OWN_PRINCIPLES,
           _SWAPPED_SCENARIO.format(kind="harmlessness", other="helpfulness")),
    _judge("base_harmlessness_pointwise", "harmlessness_pointwise", "pointwise", _OWN_PRINCIPLES,
           _SWAPPED_SCENARIO.format(kind="harmlessness", other="helpfulness")),
    _judge("base_honesty_listwise", "honesty_listwise", "listwise", _OWN_PRINCIPLES),
    _judge("base_honesty_pointwise", "honesty_pointwise", "pointwise", _OWN_PRINCIPLES),
    _judge("safety_listwise_reward", "safety_listwise", "listwise", _OWN_PRINCIPLES),
    _judge("factuality_listwise_reward", "factuality_listwise", "listwise", _OWN_PRINCIPLES),
    *(
        _judge(f"{scenario}_listwise_reward", f"{scenario}_listwise", "listwise", _OWN_PRINCIPLES)
        for scenario in _SCENARIOS
    ),
)

# --- the rules -------------------------------------------------------------------------------------

_RULES: tuple[RmGalleryName, ...] = (
    RmGalleryName(
        "detoxify_reward", "toxicity",
        "Both score 1 - P(toxic), but from different models: RM-Gallery runs Detoxify ('unbiased', a "
        "transformer whose weights it downloads at run time) and passes it the output object, not its "
        "text, so predict fails and the result has no score; rmforge runs the offline linear "
        "classifier packaged with alt-profanity-check, so P(toxic) values differ.",
    ),
    RmGalleryName(
        "accuracy", "exact_accuracy",
        "RM-Gallery compares the stripped strings exactly; rmforge lower-cases and collapses inner "
        "whitespace first ('Paris' vs 'paris': 0 there, 1 here).",
    ),
    RmGalleryName(
        "f1_score", "token_f1",
        "RM-Gallery: F1 of token sets (repeats ignored), lower-cased, punctuation kept on the words; "
        "tokens from tiktoken cl100k_base, or str.split when tiktoken is missing (it is not a "
        "dependency of rm-gallery 0.1.7). rmforge: F1 of token bags (repeats count) after SQuAD's "
        "official normalisation (punctuation and a/an/the removed); normalization='word_runs' "
        "splits CJK by character ('the cat the cat sat.' vs 'the cat sat': 0.667 there, 0.8 here).",
    ),
    RmGalleryName(
        "rouge", "rouge_l",
        "Both ROUGE-L F1 over lower-cased tokens; RM-Gallery splits on whitespace (so 'sat.' is not "
        "'sat'), rmforge on runs of word characters with each CJK character a token ('The cat sat.' "
        "vs 'the cat sat': 0.667 there, 1.0 here).",
    ),
    RmGalleryName(
        "number_accuracy", "number_accuracy",
        "RM-Gallery pairs the numbers by position with an absolute tolerance, reads '1,000' as 1 and "
        "0, and scores 0 when the reference has no number; rmforge matches them in any order (each "
        "used once) with rel_tol/abs_tol, reads thousands separators, and does not apply without a "
        "reference number ('y=4, x=3' vs 'x=3, y=4': 0 there, 1 here). RM-Gallery's `tolerance` is "
        "rmforge's `abs_tol`.",
    ),
    RmGalleryName(
        "math_verify_reward", "math_verify",
        "Both use math-verify (LaTeX and expression extraction). RM-Gallery parses the whole response "
        "and reference and verifies their first parsed values; rmforge parses the reference's final "
        "answer (after GSM8K's '####', a bare answer as \\boxed{}) and the response's answer region "
        "(last <answer> block, else after the last '####', else all of it). RM-Gallery turns every "
        "exception into timeout_score (0.0), including math-verify's SIGALRM failing outside the main "
        "thread, so batch scoring silently gives 0; rmforge records errors as errors (an unparseable "
        "reference too) and batches in worker processes, where the time limit works.",
    ),
    RmGalleryName(
        "code_syntax_check", "code_syntax_check",
        "Scale differs: RM-Gallery scores valid/total blocks minus 0.5 when any block fails, in "
        "[-0.5, 1] (1 of 2 blocks valid: 0.0; 0 of 1: -0.5); rmforge scores valid/total in [0, 1] (0.5 "
        "and 0.0). RM-Gallery finds blocks with one regex (```python or ``` then a newline), which can "
        "pair the closing fence of one block with the opening of the next; rmforge follows CommonMark "
        "fences and skips blocks tagged with another language. No block: 0 in both.",
    ),
    RmGalleryName(
        "code_style", "code_style",
        "RM-Gallery per block: 0.5 if indentation never mixes tabs and spaces, plus 0.5 x the share "
        "of snake_case function and assigned names; rmforge: the mean of three shares, indentation of "
        "exactly 4 spaces per level, snake_case names (UPPER_CASE constants allowed) and lines within "
        "max_line_length (2-space indent and 'MyFunc': 0.75 there, 0.5 here).",
    ),
    RmGalleryName(
        "code_patch_similarity", "code_patch_similarity",
        "Both difflib SequenceMatcher ratios; RM-Gallery over the raw texts character by character, "
        "rmforge over whitespace-normalised lines of the code blocks, and for unified diffs only the "
        "changed lines (a fenced 'x = 1' vs 'x = 1': 0.417 there, 1.0 here). rmforge does not apply "
        "without a reference.",
    ),
    RmGalleryName(
        "code_execution", "code_execution",
        "Both score the pass rate of the extracted code in a subprocess; the tests are read from "
        "different places: RM-Gallery from metadata or label 'inputs_outputs' (PRIME's format), "
        "rmforge from metadata 'test'+'entry_point' (HumanEval) or 'test_cases' "
        "([{input, output}]), or JSON tests in the reference; convert 'inputs_outputs' to 'test_cases'.",
    ),
    RmGalleryName(
        "reasoning_format", "reasoning_format",
        "rmforge is strict, RM-Gallery lenient: RM-Gallery gives 1 when a <think>...</think> and an "
        "<answer>...</answer> each occur anywhere (any count, any order, empty, text around them); "
        "rmforge needs each tag exactly once, think before answer, both non-empty, and nothing "
        "outside the blocks unless allow_outside_text=True.",
    ),
    RmGalleryName(
        "reasoning_tool_call_format", "tool_call_format",
        "With require_think=True (set here): one non-empty <think> block first, then tool calls whose "
        "JSON has a non-empty string 'name' and object 'arguments' (RM-Gallery accepts any JSON value "
        "as arguments). RM-Gallery also gives 1 to <think> + <answer> with no tool call, which "
        "rmforge scores 0 (use reasoning_format there), and 0 when both <answer> and <tool_call> occur.",
        MappingProxyType({"require_think": True}),
    ),
    RmGalleryName(
        "length_penalty", "length_penalty",
        "Same: -penalty_rate per character outside [min_length, max_length], same defaults (10, "
        "1000, 0.01); rmforge adds unit='words' and max_penalty.",
    ),
    RmGalleryName(
        "ngram_repetition_penalty", "ngram_repetition_penalty",
        "Same rate (1 - distinct/total n-grams) and hard/soft penalties, over different tokens: "
        "RM-Gallery's default tiktoken subwords (str.split when tiktoken is missing), rmforge's word "
        "runs with CJK by character. Parameters renamed: penalty_threshold -> threshold, "
        "use_soft_penalty -> soft, max_penalty -1.0 -> 1.0 (positive here), analyze_scope 'thought' "
        "-> scope 'think'.",
    ),
    RmGalleryName(
        "privacy_leakage", "privacy_leakage",
        "Same -0.5 per leak; rmforge validates what it flags: Luhn-checked cards (RM-Gallery: any "
        "4x4 digit groups), checksummed Chinese IDs, global IPs only (RM-Gallery: any dotted quad "
        "except 127./192.168./10./172.*), each span counted once, bare 10-digit runs only with valid NANP codes (RM-Gallery flags any ten "
        "digits, e.g. the Unix time 1700000000), and adds +CC international phones, US SSNs and IPv6.",
    ),
)

RM_GALLERY_NAMES: Mapping[str, RmGalleryName] = MappingProxyType(
    {entry.name: entry for entry in sorted(_JUDGES + _RULES, key=lambda e: e.name)}
)


def format_rm_gallery_table(entries: list[RmGalleryName] | None = None) -> str:
    """One line per RM-Gallery name: its rmforge reward (with parameters) and the differences."""
    rows = [("RM-Gallery name", "rmforge reward", "differences")]
    for entry in RM_GALLERY_NAMES.values() if entries is None else entries:
        target = entry.rmforge or "(unsupported)"
        if entry.params:
            target += "(" + ", ".join(f"{k}={v!r}" for k, v in entry.params.items()) + ")"
        rows.append((entry.name, target, entry.note))
    widths = [max(len(row[c]) for row in rows) for c in range(2)]
    return "\n".join(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}" for r in rows)
