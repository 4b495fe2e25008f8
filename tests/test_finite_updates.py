"""Updates from NaN or infinite gradients are dropped, counted at the logging cadence, and
too many in a row stop the run with one clear line."""

from __future__ import annotations

import pytest
import torch

from launcher.components.modeling.finite_updates import FiniteUpdates, TrainingDiverged


def _optimizer_with_grads(*grads: float) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in grads]
    for param, value in zip(params, grads, strict=True):
        param.grad = torch.full((2,), value)
    return torch.optim.SGD(params, lr=1.0)


def test_alone_a_non_finite_loss_drops_the_whole_update_and_a_finite_one_passes():
    guard = FiniteUpdates(check_every=1000)
    guard.before_backward(torch.tensor(float("nan")))
    bad = _optimizer_with_grads(1.0, 2.0)
    guard.before_optimizer_step(bad)
    assert all(p.grad is None for p in bad.param_groups[0]["params"])  # skipped outright
    guard.before_backward(torch.tensor(3.0))
    good = _optimizer_with_grads(1.0, -2.0)
    guard.before_optimizer_step(good)
    assert [p.grad.tolist() for p in good.param_groups[0]["params"]] == [[1, 1], [-2, -2]]


def test_with_several_ranks_the_averaged_gradients_decide():
    guard = FiniteUpdates(check_every=1000)
    guard.before_backward(torch.tensor(1.0))  # this rank's loss was fine; another's was not
    bad = _optimizer_with_grads(1.0, float("nan"), float("inf"))
    guard.before_optimizer_step(bad, world_size=2)
    assert all(p.grad is None for p in bad.param_groups[0]["params"])
    good = _optimizer_with_grads(1.0, -2.0)
    guard.before_optimizer_step(good, world_size=2)
    assert all(p.grad is not None for p in good.param_groups[0]["params"])


def test_on_an_accelerator_the_verdict_stays_on_the_device():
    """What happens to a verdict held as a device tensor (as on a GPU, here on the CPU):
    gradients zeroed by `torch.where`, counts kept as tensors, nothing read early."""
    guard = FiniteUpdates(check_every=1000)
    guard._loss_finite = torch.tensor(False)  # as before_backward leaves it on a GPU
    bad = _optimizer_with_grads(1.0, float("nan"))
    guard.before_optimizer_step(bad)
    assert all(torch.equal(p.grad, torch.zeros(2)) for p in bad.param_groups[0]["params"])
    assert torch.is_tensor(guard._dropped) and int(guard._dropped) == 1


def test_counts_are_read_only_at_the_cadence_and_too_many_in_a_row_stop(caplog):
    guard = FiniteUpdates(check_every=3, max_consecutive=4)

    def update(loss: float) -> None:
        guard.before_backward(torch.tensor(loss))
        guard.before_optimizer_step(_optimizer_with_grads(1.0))

    update(float("nan"))
    update(1.0)
    assert "dropped" not in caplog.text  # not read before the third step
    update(float("inf"))
    assert "dropped 2 update(s) with a non-finite loss or gradients so far (1 in a row now)" \
        in caplog.text
    update(float("nan"))
    update(float("nan"))
    with pytest.raises(TrainingDiverged, match="the last 4 updates all had a NaN"):
        update(float("nan"))


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_with_nan_batches_ends_with_finite_weights(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, f"exp_root={exp}", "+model.nan_every=3",
                              "trainer.max_epochs=1")
    assert code == 0, err[-3000:]
    (run_dir,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())
    assert "dropped 1 update(s) with a non-finite loss" in (run_dir / "run.log").read_text()
