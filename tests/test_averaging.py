import dataclasses
import pandas as pd
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
    average.update(net)  # from here on 1 - 1/horizon: 0.75 * 4 + 0.25 * 8 (the plain mean would be 4.8)
    assert average.decay() == pytest.approx(0.75)
    assert torch.allclose(average.model[0].weight, torch.full((2, 3), 5.0))
    assert torch.equal(average.model[0].bias, frozen) and average.model[0].bias is net[0].bias  # frozen: held once
    assert not any(p.requires_grad for p in average.model.parameters()) and net[0].weight.requires_grad
    assert sorted(average.differing(net.state_dict())) == ["0.weight", "1.bias", "1.num_batches_tracked",
                                                             "1.running_mean", "1.running_var", "1.weight"]


def test_the_average_is_restored_from_its_state():
    net = _net()
    average = WeightAverage(net, horizon=2)
    _set(net, 5.0)
    average.update(net)
    restored = WeightAverage(_net(), horizon=2)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1 and torch.equal(restored.model[0].weight, average.model[0].weight)
    assert restored.start == 4 and not restored.ready  # saved from twice the horizon on
    legacy = WeightAverage(_net(), horizon=2)  # an average saved before `start` was saved from the first step
    legacy.load_state_dict({"state_dict": average.model.state_dict(), "updates": 1})
    assert legacy.ready
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


def test_a_run_shorter_than_twice_the_horizon_saves_the_raw_weights(corpus8, tmp_path):
    training.train(small_train_config(corpus8, tmp_path / "raw", epochs=2, average_epochs=0.0))
    training.train(small_train_config(corpus8, tmp_path / "short", epochs=2))  # the default: 3 epochs
    raw, short = (pd.read_csv(tmp_path / name / "history.csv") for name in ("raw", "short"))
    pd.testing.assert_frame_equal(raw.drop(columns="seconds"), short.drop(columns="seconds"))
    saved = [torch.load(tmp_path / name / "best_model.pt", weights_only=True)["state_dict"]
             for name in ("raw", "short")]
    assert all(torch.equal(saved[0][k], saved[1][k]) for k in saved[0])
    last = torch.load(tmp_path / "short" / "last.pt", weights_only=True)
    assert "raw_state_dict" not in last and last["average_updates"] == 2 * 11  # the average kept, not saved
    name = next(k for k in last["average_state_dict"] if k.endswith("weight"))
    assert not torch.equal(last["average_state_dict"][name], last["state_dict"][name])


def test_a_frozen_encoder_is_saved_once_and_a_run_resumes_from_its_average(corpus8, tmp_path, tiny_backbone,
                                                                          interrupted):
    config = small_train_config(corpus8, tmp_path / "whole", epochs=2, backbone=str(tiny_backbone),
                                freeze="backbone", quick=True, average_epochs=1.0)  # 2 steps an epoch: saved from 4
    training.train(config)
    run = tmp_path / "run"
    interrupted(dataclasses.replace(config, output_dir=str(run)), 1)  # Ctrl-C after epoch 1: the raw weights saved
    last = torch.load(run / "last.pt", weights_only=True)
    frozen = [k for k in last["state_dict"] if k.startswith("backbone.encoder.")]
    assert frozen and not set(frozen) & set(last["average_state_dict"])  # the saved model holds them; no copy
    assert any(k.startswith("context.") for k in last["average_state_dict"])
    training.train(dataclasses.replace(config, output_dir=str(run), resume=True))  # epoch 2: the average saved
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["average_updates"] == 2 * 2 and not set(frozen) & set(last["raw_state_dict"])
    whole, resumed = (pd.read_csv(tmp_path / name / "history.csv") for name in ("whole", "run"))
    pd.testing.assert_frame_equal(whole.drop(columns="seconds"), resumed.drop(columns="seconds"), atol=1e-6, rtol=1e-5)
    for name in ("best_model.pt", "last.pt"):
        a, b = (torch.load(tmp_path / folder / name, weights_only=True)["state_dict"] for folder in ("whole", "run"))
        assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
