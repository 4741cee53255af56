"""The learning-rate plan: warm-up, cosine decay, two stages."""

from __future__ import annotations

import itertools

import pytest

from imgrec.training.schedule import FINETUNE_SCALE, lr_at, plan, stage_at_epoch


def test_warmup_is_linear_then_cosine_decays_to_zero() -> None:
    stages = plan(epochs=5, steps_per_epoch=10, lr=0.1, warmup_epochs=1)
    lrs = [lr_at(stages, s) for s in range(50)]
    assert lrs[:10] == pytest.approx([0.01 * (i + 1) for i in range(10)])
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[29] == pytest.approx(0.05, abs=0.01) and lrs[-1] < 1e-3


def test_warmup_is_capped_at_half_the_run() -> None:
    (stage,) = plan(epochs=1, steps_per_epoch=10, lr=1.0, warmup_epochs=5)
    assert stage.warmup == 5 and lr_at([stage], 4) == 1.0


def test_two_stage_rule() -> None:
    stages = plan(epochs=5, steps_per_epoch=4, lr=1e-3, warmup_epochs=0, head_epochs=2)
    head, body = stages
    assert (head.frozen, head.steps, head.peak_lr) == (True, 8, 1e-3)
    assert (body.frozen, body.start, body.steps) == (False, 8, 12)
    assert body.peak_lr == pytest.approx(1e-3 * FINETUNE_SCALE)
    assert lr_at(stages, 8) == pytest.approx(1e-4)
    assert [stage_at_epoch(stages, e).frozen for e in range(5)] == [True, True, False, False, False]


def test_freeze_marks_the_single_stage() -> None:
    assert plan(2, 3, 0.1, 0.0, freeze=True)[0].frozen
    assert not plan(2, 3, 0.1, 0.0)[0].frozen
