"""Undo NeMo-Aligner's SteerLM regression-RM templating of HelpSteer2 rows (hub schema back).

NeMo-Aligner (`examples/nlp/data/steerlm/process_to_regression_format.py` with `common.py`) wrote
each hub row `{prompt, response, helpfulness, ..., verbosity}` as

    text  = "<extra_id_0>System\\n{SYSTEM_PROMPT}\\n<extra_id_1>User\\n{prompt}\\n"
            "<extra_id_1>Assistant\\n{response}\\n<extra_id_2>"
    label = [quality, toxicity, humor, creativity, helpfulness, correctness, coherence,
             complexity, verbosity]   (-100.0 = not annotated)

with `prompt` inserted verbatim. The inverse therefore strips the fixed header and trailer and
cuts at the LAST "\\n<extra_id_1>Assistant\\n": a multi-turn HelpSteer2 prompt carries earlier
assistant turns behind that same marker, so everything before the last one is the prompt.
(A response that itself contained the marker could not be told apart; none of the bundled rows
does, and `template_row` re-templates the result so a test checks the round trip byte for byte.)

Regenerate the bundled file with `python -m rm_rewards.datasets.helpsteer2_restore`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rm_rewards.datasets.bundled import BUNDLED_DATA
from rm_rewards.datasets.helpsteer2 import HELPSTEER2_ATTRIBUTES

NEMO_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
NEMO_ATTRIBUTES = ("quality", "toxicity", "humor", "creativity", *HELPSTEER2_ATTRIBUTES)
NOT_ANNOTATED = -100.0
_HEADER = f"<extra_id_0>System\n{NEMO_SYSTEM_PROMPT}\n<extra_id_1>User\n"
_ASSISTANT = "\n<extra_id_1>Assistant\n"
_TRAILER = "\n<extra_id_2>"

NEMO_FILE = BUNDLED_DATA / "helpsteer2" / "nemo_aligner_test-rm.jsonl"
RESTORED_FILE = BUNDLED_DATA / "helpsteer2" / "validation_sample.jsonl"


def template_row(row: dict[str, Any]) -> dict[str, Any]:
    """Hub row → NeMo-Aligner's regression-RM row (what NeMo-Aligner's scripts produce)."""
    text = f"{_HEADER}{row['prompt']}{_ASSISTANT}{row['response']}{_TRAILER}"
    labels = [float(row[name]) if name in row else NOT_ANNOTATED for name in NEMO_ATTRIBUTES]
    return {"text": text, "label": labels}


def restore_row(nemo_row: dict[str, Any], row_index: int = 0) -> dict[str, Any]:
    """NeMo-Aligner regression-RM row → hub row; raises ValueError naming the row and field."""
    text, labels = nemo_row.get("text"), nemo_row.get("label")
    where = f"NeMo-Aligner row {row_index}"
    if not isinstance(text, str) or not text.startswith(_HEADER) or not text.endswith(_TRAILER):
        raise ValueError(f"{where}, field 'text': not in NeMo-Aligner's System/User/Assistant template")
    prompt, marker, response = text[len(_HEADER) : -len(_TRAILER)].rpartition(_ASSISTANT)
    if not marker:
        raise ValueError(f"{where}, field 'text': no '<extra_id_1>Assistant' turn")
    if not isinstance(labels, list) or len(labels) != len(NEMO_ATTRIBUTES):
        raise ValueError(f"{where}, field 'label': expected {len(NEMO_ATTRIBUTES)} values")
    restored: dict[str, Any] = {"prompt": prompt, "response": response}
    for name, value in zip(NEMO_ATTRIBUTES, labels):
        if name not in HELPSTEER2_ATTRIBUTES:
            if value != NOT_ANNOTATED:
                raise ValueError(f"{where}, field 'label': {name} is annotated ({value}); not HelpSteer2")
        elif not (isinstance(value, (int, float)) and float(value).is_integer() and 0 <= value <= 4):
            raise ValueError(f"{where}, field 'label': {name} = {value!r} is not an integer 0-4")
        else:
            restored[name] = int(value)
    return restored


def restore_rows(nemo_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [restore_row(row, index) for index, row in enumerate(nemo_rows)]


def restored_jsonl(nemo_path: Path = NEMO_FILE) -> str:
    """The exact text of the restored file: one hub row per line, UTF-8, keys in hub order."""
    nemo_rows = [json.loads(line) for line in nemo_path.read_text(encoding="utf-8").splitlines() if line]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in restore_rows(nemo_rows))


def main() -> None:
    RESTORED_FILE.write_text(restored_jsonl(), encoding="utf-8")
    print(f"wrote {RESTORED_FILE}")


if __name__ == "__main__":
    main()
