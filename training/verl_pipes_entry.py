"""Run verl GRPO inside verl's own venv and report back to Dagster through Pipes.

Started by the `grm_checkpoints` asset with `dg.PipesSubprocessClient`, in the verl venv (which has
`dagster-pipes` but not Dagster: verl's antlr4 pin breaks Dagster). It imports nothing of rmforge:
Pipes extras carry the argv to run, the file-logger path and the checkpoint folder. While the
trainer runs it forwards each new metrics line as a Pipes log; at the end it reports the final
metrics, the curve and the checkpoint as the asset materialization.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from dagster_pipes import open_dagster_pipes


def read_new_records(path: Path, offset: int) -> tuple[list[dict], int]:
    """Complete JSON lines written after `offset`; a line still being written waits for the next poll."""
    if not path.exists():
        return [], offset
    with open(path, encoding="utf-8") as handle:
        handle.seek(offset)
        chunk = handle.read()
    complete, _, _ = chunk.rpartition("\n")
    records = []
    for line in complete.splitlines():
        if line.strip():
            record = json.loads(line)
            records.append({"step": int(record["step"]), **record["data"]})
    return records, offset + len(complete) + (1 if complete else 0)


def _numbers(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def main() -> int:
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        command: list[str] = extras["command"]
        metrics_path = Path(extras["metrics_path"])
        output_dir = Path(extras["output_dir"])
        poll_s = float(extras.get("poll_s", 5.0))
        output_dir.mkdir(parents=True, exist_ok=True)
        log_path = output_dir / "trainer.log"
        pipes.log.info(f"starting: {' '.join(command[:4])} ... ({len(command)} args); log {log_path}")

        history: list[dict] = []
        offset = 0
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=output_dir)
            while True:
                finished = process.poll() is not None
                records, offset = read_new_records(metrics_path, offset)
                for row in records:
                    history.append(row)
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(_numbers(row).items())[:6])
                    pipes.log.info(f"step {row['step']}: {shown}")
                if finished:
                    break
                time.sleep(poll_s)
        if process.returncode != 0:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"trainer exited with {process.returncode}; last log lines:\n{tail}")

        tracker = output_dir / "latest_checkpointed_iteration.txt"
        checkpoint = None
        if tracker.exists():
            checkpoint = output_dir / f"global_step_{int(tracker.read_text().strip())}" / "actor"
        final = _numbers(history[-1]) if history else {}
        pipes.report_asset_materialization(
            metadata={
                "steps": {"raw_value": len(history), "type": "int"},
                "final_metrics": {"raw_value": final, "type": "json"},
                "metrics_curve": {"raw_value": history, "type": "json"},
                "checkpoint": {"raw_value": str(checkpoint) if checkpoint else "none saved", "type": "text"},
            },
            data_version=str(checkpoint) if checkpoint else None,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
