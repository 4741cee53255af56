"""fit_torch: history, checkpoints, determinism, resume, interrupts, regularization options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imgrec.errors import ConfigError, DataError, MissingInputError, ModelFileError, TrainingInterrupted  # noqa: E402
from imgrec.training import checkpoint as ckpt  # noqa: E402
from imgrec.training.callbacks import Callback  # noqa: E402
from imgrec.training.loop import fit_torch  # noqa: E402

ROW_KEYS = ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "seconds"]


def figures(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """History rows without wall-clock time."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


class Recorder(Callback):
    def __init__(self, stop_at: tuple[str, int, int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    def on_train_start(self, total_epochs: int, steps_per_epoch: int, start_epoch: int = 0) -> None:
        self.calls.append(("train_start", total_epochs, steps_per_epoch, start_epoch))

    def on_epoch_start(self, epoch: int) -> None:
        self.calls.append(("epoch_start", epoch))

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        self.calls.append(("batch_end", epoch, step))
        if self.stop_at == ("batch", epoch, step):
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        self.calls.append(("epoch_end", epoch))
        if self.stop_at == ("epoch", epoch, 0):
            raise KeyboardInterrupt

    def on_train_end(self, history: object) -> None:
        self.calls.append(("train_end",))


def test_fit_records_history_writes_checkpoints_and_learns(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    model = new_model()
    rec = Recorder()
    history = fit_torch(model, train, val, tiny_cfg(epochs=3), run_dir=tmp_path, callbacks=[rec])
    assert [list(r) for r in history.epochs] == [ROW_KEYS] * 3
    assert json.loads((tmp_path / "history.json").read_text())["epochs"] == history.epochs
    files = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert files == {"last.safetensors", "best.safetensors", "state.json"}
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.epochs[-1]["val_accuracy"] > 0.6
    assert rec.calls[0] == ("train_start", 3, 3, 0)
    first_epoch = [("epoch_start", 1), ("batch_end", 1, 0), ("batch_end", 1, 1), ("batch_end", 1, 2), ("epoch_end", 1)]
    assert rec.calls[1:6] == first_epoch
    assert rec.calls[-1] == ("train_end",) and len(rec.calls) == 1 + 3 * 5 + 1


def test_same_seed_gives_the_same_metrics(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    flip = lambda b, rng: np.where(rng.random((len(b), 1, 1, 1)) < 0.5, b[:, :, ::-1], b)  # noqa: E731
    runs = [
        fit_torch(new_model(dropout=0.3), train, val, tiny_cfg(), run_dir=tmp_path / str(i), augment=flip)
        for i in range(2)
    ]
    assert figures(runs[0].epochs) == figures(runs[1].epochs)
    other = fit_torch(new_model(), train, val, tiny_cfg(seed=1), run_dir=tmp_path / "other", augment=flip)
    assert figures(other.epochs) != figures(runs[0].epochs)


def test_interrupted_then_resumed_run_equals_a_continuous_run(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    cfg = tiny_cfg(epochs=4, optimizer="sgd")
    straight = fit_torch(new_model(), train, val, cfg, run_dir=tmp_path / "straight")
    with pytest.raises(TrainingInterrupted, match="resumable checkpoint"):
        fit_torch(new_model(), train, val, cfg, run_dir=tmp_path / "cut", callbacks=[Recorder(("epoch", 2, 0))])
    state = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    assert state["train"]["epoch"] == 2 and state["train"]["interrupted"] is True
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9
    rec = Recorder()
    resumed = fit_torch(new_model(seed=99), train, val, cfg, run_dir=tmp_path / "cut", resume=True, callbacks=[rec])
    assert rec.calls[0] == ("train_start", 4, 3, 2) and rec.calls[1] == ("epoch_start", 3)
    assert figures(resumed.epochs) == figures(straight.epochs)


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    model = new_model()
    with pytest.raises(TrainingInterrupted) as err:
        fit_torch(model, train, val, tiny_cfg(), run_dir=tmp_path, callbacks=[Recorder(("batch", 1, 1))])
    assert isinstance(err.value, KeyboardInterrupt) and err.value.exit_code == 130
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["train"]["epoch"] == 0 and state["train"]["step"] == 0 and state["train"]["interrupted"]
    history = fit_torch(new_model(), train, val, tiny_cfg(), run_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in history.epochs] == [1, 2]


KILLED_RUN = """
import os, signal, sys
import numpy as np
from pathlib import Path
from imgrec.config import TrainConfig
from imgrec.models import create_model
from imgrec.training.callbacks import Callback
from imgrec.training.loop import fit_torch, seed_everything

class Kill(Callback):
    def on_epoch_end(self, epoch, row):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

data = np.load(sys.argv[1], allow_pickle=False)
seed_everything(0)
model = create_model("cnn-bn", ["dark", "bright", "striped"], image_size=12)
cfg = TrainConfig.from_dict(json.loads(sys.argv[3]))
fit_torch(model, (data["x"], data["y"]), (data["vx"], data["vy"]), cfg, run_dir=Path(sys.argv[2]), callbacks=[Kill()])
"""


def test_killed_process_resumes_from_its_last_checkpoint(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    (x, y), (vx, vy) = tiny_data
    np.savez(tmp_path / "data.npz", x=x, y=y, vx=vx, vy=vy)
    cfg = tiny_cfg(epochs=3)
    script = "import json\n" + textwrap.dedent(KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data.npz"), str(tmp_path / "run"), json.dumps(cfg.to_dict())],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    first = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in first] == [1]
    resumed = fit_torch(new_model(), (x, y), (vx, vy), cfg, run_dir=tmp_path / "run", resume=True)
    assert [r["epoch"] for r in resumed.epochs] == [1, 2, 3]
    assert resumed.epochs[0] == first[0]
    straight = fit_torch(new_model(), (x, y), (vx, vy), cfg, run_dir=tmp_path / "straight")
    assert figures(resumed.epochs) == figures(straight.epochs)


def test_resume_needs_a_checkpoint_of_the_same_model(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    with pytest.raises(MissingInputError, match="Nothing to resume"):
        fit_torch(new_model(), train, val, tiny_cfg(), run_dir=tmp_path, resume=True)
    fit_torch(new_model(), train, val, tiny_cfg(epochs=1), run_dir=tmp_path)
    with pytest.raises(ModelFileError, match="belongs to a 'cnn-bn' run"):
        fit_torch(new_model("cnn-small"), train, val, tiny_cfg(), run_dir=tmp_path, resume=True)


def test_early_stopping_stops_when_the_monitor_stalls(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    # a frozen backbone (fixed BatchNorm) and a negligible lr: validation figures never improve
    cfg = tiny_cfg(epochs=8, lr=1e-12, freeze="backbone", early_stopping=2, monitor="val_loss")
    history = fit_torch(new_model(), train, val, cfg, run_dir=tmp_path)
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3]


def test_freeze_backbone_trains_only_the_head(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    model = new_model()
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    fit_torch(model, train, val, tiny_cfg(freeze="backbone"), run_dir=tmp_path)
    after = model.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}
    assert all(p.requires_grad for p in model.module.parameters())  # unfrozen again at the end


def test_two_stage_trains_the_head_first_then_everything(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, _ = tiny_data
    model = new_model()
    stem = model.module.features[0].weight.detach().clone()
    seen: dict[int, torch.Tensor] = {}

    class Snapshot(Callback):
        def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
            seen[epoch] = model.module.features[0].weight.detach().clone()

    cfg = tiny_cfg(epochs=3, head_epochs=1, lr=0.01, warmup_epochs=0)
    history = fit_torch(model, train, None, cfg, run_dir=tmp_path, callbacks=[Snapshot()])
    assert torch.equal(seen[1], stem) and not torch.equal(seen[2], stem)
    assert max(r["lr"] for r in history.epochs[1:]) <= 0.01 * 0.1


def test_class_weights_change_the_loss(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    (x, y), val = tiny_data
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]]  # "striped" is rare
    plain = fit_torch(new_model(), (x[keep], y[keep]), val, tiny_cfg(epochs=1), run_dir=tmp_path / "a")
    weighted = fit_torch(new_model(), (x[keep], y[keep]), val, tiny_cfg(epochs=1, class_weights="auto"),
                         run_dir=tmp_path / "b")
    assert weighted.epochs[0]["train_loss"] != pytest.approx(plain.epochs[0]["train_loss"], rel=1e-4)


def test_without_validation_the_last_epoch_is_kept(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, _ = tiny_data
    model = new_model()
    history = fit_torch(model, train, None, tiny_cfg(optimizer="sgd", label_smoothing=0.1), run_dir=tmp_path)
    assert "val_loss" not in history.epochs[-1]
    last = ckpt.TrainState(**json.loads((tmp_path / "checkpoints" / "state.json").read_text())["train"])
    assert last.best_epoch == 2


def test_threads_are_restored_and_bad_input_is_rejected(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    (x, y), val = tiny_data
    before = torch.get_num_threads()
    fit_torch(new_model(), (x, y), val, tiny_cfg(epochs=1, num_threads=1), run_dir=tmp_path)
    assert torch.get_num_threads() == before
    with pytest.raises(DataError, match=r"\(N, 12, 12, 3\)"):
        fit_torch(new_model(), (x[:, :8, :8], y), val, tiny_cfg(), run_dir=tmp_path)
    with pytest.raises(DataError, match="labels must be in"):
        fit_torch(new_model(), (x, y + 1), val, tiny_cfg(), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="head_epochs"):
        fit_torch(new_model(), (x, y), val, tiny_cfg(head_epochs=2), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="freeze='backbone'"):
        fit_torch(new_model(), (x, y), val, tiny_cfg(epochs=3, head_epochs=1, freeze="backbone"), run_dir=tmp_path)


def test_a_diverging_run_stops_with_the_fix(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train, val = tiny_data
    with pytest.raises(ConfigError, match="Lower the learning rate"):
        fit_torch(new_model(), train, val, tiny_cfg(lr=1e30, optimizer="sgd"), run_dir=tmp_path)
