"""Training throughput and memory measurement (ser_lib.training.speed, notebook 04, benchmarks/train_speed.py)."""
import math

import pytest
import torch
from transformers import Wav2Vec2Config

from ser_lib.training import speed

TINY = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                      layerdrop=0.0, mask_time_prob=0.0)


def test_activation_memory_grows_with_batch_and_crop():
    torch.manual_seed(0)
    model = speed.speed_model("spec").train()
    size = {}
    for batch, seconds in ((2, 1.0), (4, 1.0), (2, 2.0)):
        samples = int(seconds * 16000)
        size[batch, seconds] = speed.activation_bytes(model, torch.randn(batch, samples) * 0.1,
                                                      torch.full((batch,), samples))
    assert size[4, 1.0] / size[2, 1.0] == pytest.approx(2.0, rel=0.05)  # activations are per clip
    assert size[2, 2.0] / size[2, 1.0] == pytest.approx(2.0, rel=0.1)  # and per frame
    # the doubling above also says the weights are not counted: they would add the same bytes at every size
    with torch.no_grad():  # nothing is kept without autograd
        assert speed.activation_bytes(model, torch.randn(2, 16000), torch.full((2,), 16000)) == 0


def test_time_steps_trains_and_reports():
    model = speed.speed_model("spec")
    before = [p.detach().clone() for p in model.parameters()]
    timing = speed.time_steps(model, batch_size=2, seconds=1.0, steps=2, warmup=1, name="spec")
    assert timing.step_seconds > 0 and timing.clips_per_second == pytest.approx(2 / timing.step_seconds)
    assert timing.activation_mb > 0 and math.isnan(timing.peak_mb)  # no GPU peak on the CPU
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the optimiser stepped
    with pytest.raises(ValueError, match="precision"):
        speed.time_steps(model, precision="fp8")
    with pytest.raises(ValueError, match="unknown model"):
        speed.speed_model("cnn")


def test_bf16_autocast_and_the_encoder_cache_keep_less_for_the_backward_pass():
    torch.manual_seed(0)
    model = speed.speed_model("spec").train()
    wave, lengths = torch.randn(8, 32000) * 0.1, torch.full((8,), 32000)
    fp32 = speed.activation_bytes(model, wave, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = speed.activation_bytes(model, wave, lengths)
    assert bf16 < 0.8 * fp32  # half-size activations where autocast applies (norms and indices stay wide)
    live = speed.speed_model("w2v2", TINY)
    frozen = speed.speed_model("w2v2-frozen", TINY)
    frozen.load_state_dict(live.state_dict())
    computed = speed.time_steps(live, batch_size=2, seconds=1.0, steps=1, warmup=0)
    cached = speed.time_steps(frozen, batch_size=2, seconds=1.0, steps=1, warmup=0, cached=True)
    assert cached.activation_mb < computed.activation_mb  # no encoder activations are kept
    table = speed.sweep(speed.speed_model("spec"), batch_sizes=(1, 2), crop_seconds=(1.0,), steps=1, warmup=0)
    assert list(table["batch_size"]) == [1, 2] and (table["clips_per_second"] > 0).all()
