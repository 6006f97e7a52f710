import pytest
import torch

from ser_lib import training
from ser_lib.model import checkpoint
from ser_lib.training.averaging import WeightAverage
from conftest import small_train_config


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    net[0].bias.requires_grad_(False)  # a frozen weight
    return net


def _set(net: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        net[0].weight.fill_(value)
        net[1].running_mean.fill_(value)
        net[1].num_batches_tracked.fill_(int(value))


def test_the_average_is_the_plain_mean_until_the_horizon_then_an_exponential_one():
    net = _net()
    average = WeightAverage(net, horizon=4)
    frozen = average.model[0].bias.clone()
    for value in (1.0, 2.0, 3.0):
        _set(net, value)
        average.update(net)
    assert torch.allclose(average.model[0].weight, torch.full((2, 3), 2.0))  # mean of 1, 2, 3
    assert torch.allclose(average.model[1].running_mean, torch.full((2,), 2.0))  # float buffers too
    assert int(average.model[1].num_batches_tracked) == 3  # counters are copied, not averaged
    _set(net, 10.0)
    average.update(net)  # the fourth: still the mean (the decay 3/4 equals 1 - 1/4)
    assert torch.allclose(average.model[0].weight, torch.full((2, 3), 4.0))
    _set(net, 8.0)
    with torch.no_grad():
        net[0].bias.fill_(100.0)  # a frozen weight changed behind the optimiser's back
    average.update(net)  # from here on 1 - 1/horizon: 0.75 * 4 + 0.25 * 8 (the plain mean would be 4.8)
    assert average.decay() == pytest.approx(0.75)
    assert torch.allclose(average.model[0].weight, torch.full((2, 3), 5.0))
    assert torch.equal(average.model[0].bias, frozen)  # frozen weights are not averaged
    assert not any(p.requires_grad for p in average.model.parameters())


def test_the_average_is_restored_from_its_state():
    net = _net()
    average = WeightAverage(net, horizon=2)
    _set(net, 5.0)
    average.update(net)
    restored = WeightAverage(_net(), horizon=2)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1 and torch.equal(restored.model[0].weight, average.model[0].weight)
    shortest = WeightAverage(net, horizon=0.2)  # under one step (--quick, a tiny --average_epochs): the raw weights
    _set(net, 1.0)
    shortest.update(net)
    _set(net, 7.0)
    shortest.update(net)
    assert shortest.horizon == 1 and torch.allclose(shortest.model[0].weight, torch.full((2, 3), 7.0))


def test_training_validates_and_saves_the_average_and_keeps_the_raw_weights_for_resuming(corpus8, tmp_path):
    run = tmp_path / "run"
    result = training.train(small_train_config(corpus8, run, epochs=3, average_epochs=1.0))
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["average_updates"] == 3 * 11  # every optimisation step of 3 epochs of 168 clips in batches of 16
    raw, averaged = last["raw_state_dict"], last["state_dict"]
    name = next(k for k in raw if k.endswith("weight") and raw[k].is_floating_point())
    assert not torch.equal(raw[name], averaged[name])  # the saved model is not the last step's weights
    loaded = checkpoint.load(run / "best_model.pt")
    assert loaded.train_config["average_epochs"] == 1.0 and 0 <= result["uar"] <= 1
