"""Optional experiment tracking: the per-epoch records of metrics.jsonl streamed into TensorBoard
(``<run>/tensorboard``) and MLflow (a local file store in ``<run>/mlruns``, no server), plus the final
test metrics of every model. Off unless the recipe's ``track`` block turns a logger on; only the main
process logs."""

from __future__ import annotations

import math
import os
from pathlib import Path

from protege.config import TrackConfig

SKIPPED_KEYS = {"stage", "epoch", "step"}
FINAL_KEYS = ("accuracy", "macro_f1", "nll", "ece", "agreement", "kl_to_teacher", "accuracy_retained")


class Tracker:
    """Sends each epoch record to the loggers the recipe switched on; ``close`` ends their runs."""

    def __init__(self, config: TrackConfig, run_dir: Path, run_name: str, params: dict) -> None:
        self.writer = None
        self.mlflow = None
        self.run_id = None
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if config.mlflow:
            # MLflow 3 keeps the file store only on request; a local folder needs no server or database
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.tracking import MlflowClient

            self.mlflow = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
            name = config.experiment or run_name
            experiment = self.mlflow.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.mlflow.create_experiment(name)
            self.run_id = self.mlflow.create_run(experiment_id, run_name=run_name).info.run_id
            for key, value in params.items():
                self.mlflow.log_param(self.run_id, key, value)

    def record(self, record: dict) -> None:
        """One epoch of one stage: every numeric field as ``<stage>/<field>`` at step ``epoch``."""
        stage, epoch = record.get("stage", "train"), int(record["epoch"])
        for key, value in record.items():
            if key in SKIPPED_KEYS or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            self._scalar(f"{stage}/{key}", float(value), epoch)
        if self.writer is not None:
            self.writer.flush()  # an interrupted run keeps every finished epoch

    def report(self, report: dict) -> None:
        """The test metrics of every model, as ``test/<model>/<metric>``."""
        for name, entry in report["models"].items():
            for key in FINAL_KEYS:
                if entry.get(key) is not None:
                    self._scalar(f"test/{name}/{key}", float(entry[key]), 0)
            for batch, ms in entry.get("latency_ms", {}).items():
                self._scalar(f"test/{name}/latency_ms_b{batch}", float(ms), 0)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.mlflow is not None:
            self.mlflow.set_terminated(self.run_id)

    def _scalar(self, key: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(key, value, step)
        if self.mlflow is not None:
            self.mlflow.log_metric(self.run_id, key, value, step=step)


def flat_params(raw: dict, prefix: str = "") -> dict[str, str]:
    """A nested recipe as ``a.b.c`` keys with string values, for MLflow's run parameters."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, f"{name}."))
        elif value is not None:
            out[name] = str(value)[:500]
    return out
