import dataclasses
import shutil

import pytest
import torch

from ser_lib.errors import BackboneError, ConfigError
from ser_lib.model import ModelConfig, SERModel
from ser_lib.model.backbone import _MaskedInstanceNorm, load_backbone
from ser_lib.training import TrainConfig

SR = 16000


def small_config(backbone=None, **changes) -> ModelConfig:
    """A small 4-class architecture without descriptors (the defaults of TrainConfig otherwise)."""
    config = TrainConfig(backbone="none" if backbone is None else str(backbone), d_model=64,
                         cnn_channels=(8, 16, 32), context_layers=1, descriptors=False).model_config(4)
    return dataclasses.replace(config, **changes)


def make(backbone, **kw) -> SERModel:
    torch.manual_seed(0)
    return SERModel(small_config(backbone, **kw))


def test_tiny_backbone_is_a_few_hundred_thousand_parameters(tiny_backbone):
    encoder = load_backbone(str(tiny_backbone))
    assert 100_000 < sum(p.numel() for p in encoder.parameters()) < 1_000_000


@pytest.mark.parametrize("which", ["group", "layer", None])
def test_output_shapes(which, tiny_backbone, tiny_backbone_layer_norm):
    backbone = {"group": tiny_backbone, "layer": tiny_backbone_layer_norm, None: None}[which]
    model = make(backbone).eval()
    wave = torch.randn(3, 2 * SR) * 0.1
    out = model(wave, torch.tensor([2 * SR, SR + 500, SR]))
    assert out.emotion_logits.shape == (3, 4)
    assert out.gender_logits.shape == (3, 2)
    frames = out.frame_mask.shape[1]
    assert out.attention.shape == (3, model.config.pooling_heads, frames)
    assert frames == 50  # 2 s at 25 frames/s
    # attention weights sum to one over each clip's real frames and are zero on padding
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, model.config.pooling_heads))
    assert out.frame_mask[2].sum() < out.frame_mask[0].sum()
    assert torch.all(out.attention[2][:, ~out.frame_mask[2]] == 0)


@pytest.mark.parametrize("which", ["group", "layer", None])
def test_padding_does_not_change_a_clips_prediction(which, tiny_backbone, tiny_backbone_layer_norm):
    backbone = {"group": tiny_backbone, "layer": tiny_backbone_layer_norm, None: None}[which]
    model = make(backbone).eval()
    gen = torch.Generator().manual_seed(1)
    short = torch.randn(int(1.3 * SR), generator=gen) * 0.1
    long = torch.randn(int(2.7 * SR), generator=gen) * 0.1
    with torch.no_grad():
        alone = model(short[None]).emotion_logits[0]
        batch = torch.zeros(2, len(long))
        batch[0, : len(short)] = short
        batch[1] = long
        together = model(batch, torch.tensor([len(short), len(long)])).emotion_logits[0]
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("pooling,context_layers", [("mean", 0), ("mean", 1), ("attention", 0)])
def test_ladder_architectures_mean_pooling_and_no_context(pooling, context_layers):
    """The baseline ladder's simpler models: mean pooling weighs every real frame alike, and without a
    context transformer each frame keeps only what its CNN receptive field saw; padding changes neither."""
    model = make(None, pooling=pooling, context_layers=context_layers).eval()
    assert (model.context is None) == (context_layers == 0)
    wave = torch.randn(2, 2 * SR) * 0.1
    lengths = torch.tensor([2 * SR, SR])
    with torch.no_grad():
        out = model(wave, lengths)
        alone = model(wave[1:, :SR]).emotion_logits[0]
    torch.testing.assert_close(out.emotion_logits[1], alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, model.config.pooling_heads))
    real = out.frame_mask[1]
    if pooling == "mean":
        assert torch.allclose(out.attention[1][:, real], 1 / real.sum().float())
    else:
        assert out.attention[1][:, real].std() > 0  # learnt weights are not uniform
    assert torch.all(out.attention[1][:, ~real] == 0)
    assert any(name.startswith(pooling) for name, _ in model.describe_shapes(wave, lengths))


@pytest.mark.parametrize("bands", [64, 15])
def test_halving_bands_is_max_pooling_over_frequency(bands):
    from ser_lib.model.layers import HalveBands

    x = torch.randn(2, 3, bands, 7, requires_grad=True)
    torch.testing.assert_close(HalveBands()(x), torch.nn.MaxPool2d((2, 1))(x), rtol=0, atol=0)
    HalveBands()(x).sum().backward()
    assert x.grad.sum() == 2 * 3 * (bands // 2) * 7  # one gradient per pair: to its larger row


def test_dropout_drops_its_share_keeps_the_mean_and_replaces_every_torch_dropout():
    from ser_lib.model.layers import Dropout

    drop = Dropout(0.2)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    values = y.detach()
    assert abs(float((values == 0).float().mean()) - 0.2) < 0.01
    assert abs(float(values.mean()) - 1.0) < 0.01 and set(values.unique().tolist()) == {0.0, 1.25}
    y.sum().backward()
    assert torch.equal(x.grad, values)  # the gradient passes where the activation did, scaled alike
    assert drop(torch.ones(4, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert torch.equal(drop.eval()(x), x)
    model = SERModel(TrainConfig().model_config(4))
    kinds = {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert kinds == {Dropout}  # the context transformer's own dropouts too
    assert sum(isinstance(m, Dropout) for m in model.context.layers[0].modules()) == 3


def test_bad_pooling_or_context_refused():
    with pytest.raises(ConfigError, match="pooling"):
        small_config(pooling="max").validate()
    with pytest.raises(ConfigError, match="context_layers"):
        small_config(context_layers=-1).validate()


def test_without_the_masked_norm_padding_would_leak(tiny_backbone):
    """The negative control: wav2vec2-base's GroupNorm sees the padding unless it is masked."""
    model = make(tiny_backbone, spectrogram=False).eval()
    norm = model.backbone._first_norm
    assert isinstance(norm, _MaskedInstanceNorm)
    short = torch.randn(int(1.3 * SR)) * 0.1
    padded = torch.zeros(1, 3 * SR)
    padded[0, : len(short)] = short
    lengths = torch.tensor([len(short)])
    with torch.no_grad():
        exact = model(padded, lengths).emotion_logits
        norm.__class__ = torch.nn.GroupNorm  # undo the fix
        model.backbone._first_norm = None
        leaky = model(padded, lengths).emotion_logits
    assert not torch.allclose(exact, leaky, atol=1e-4)


@pytest.mark.parametrize("freeze", ["none", "feature_encoder", "backbone"])
def test_freezing_freezes_exactly_what_it_says(tiny_backbone, freeze):
    model = make(tiny_backbone, freeze=freeze).train()
    encoder = model.backbone.encoder
    for name, p in encoder.named_parameters():
        in_feature_encoder = name.startswith("feature_extractor.")
        expected = freeze == "none" or (freeze == "feature_encoder" and not in_feature_encoder)
        assert p.requires_grad == expected, name
    new_layers = [p for n, p in model.named_parameters() if not n.startswith("backbone.encoder.")]
    assert all(p.requires_grad for p in new_layers)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.randn(2, SR) * 0.1)
    (out.emotion_logits.sum() + out.gender_logits.sum()).backward()
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if not p.requires_grad:
            assert not changed, f"frozen {name} changed"
    trainable_changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(before[n], p)]
    assert "backbone.layer_weights" in trainable_changed
    if freeze != "backbone":
        assert any(n.startswith("backbone.encoder.encoder.") for n in trainable_changed)


def test_layer_weights_receive_gradients_and_cover_all_layers(tiny_backbone):
    model = make(tiny_backbone).train()
    assert model.backbone.layer_weights.shape == (3,)  # embeddings + 2 transformer layers
    model(torch.randn(2, SR) * 0.1).emotion_logits.logsumexp(-1).sum().backward()
    grad = model.backbone.layer_weights.grad
    assert grad is not None and torch.all(grad != 0)


def test_layerdrop_is_off_so_every_layer_is_always_combined(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            layerdrop=0.9)
    model = SERModel(small_config("w2v2"), encoder=Wav2Vec2Model(config)).train()
    for _ in range(5):
        states, _ = model.backbone.layers(torch.randn(2, SR) * 0.1, torch.tensor([SR, SR]))
        assert states.shape[1] == 5


def test_model_rebuilds_from_its_config_without_the_folder(tiny_backbone, tmp_path):
    folder = shutil.copytree(tiny_backbone, tmp_path / "copy")
    model = make(folder).eval()
    saved = model.config.to_dict()
    shutil.rmtree(folder)
    rebuilt = SERModel(ModelConfig.from_dict(saved)).eval()
    rebuilt.load_state_dict(model.state_dict())
    wave = torch.randn(1, SR) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(wave).emotion_logits, model(wave).emotion_logits)


def test_unfetchable_backbone_names_the_ways_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError) as err:
        load_backbone("facebook/wav2vec2-base")
    message = str(err.value)
    assert "facebook/wav2vec2-base" in message
    assert "--backbone DIR" in message and "HF_HUB_OFFLINE" in message and "--backbone none" in message


def test_missing_backbone_folder(tmp_path):
    with pytest.raises(BackboneError, match="does not exist"):
        load_backbone(str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="cannot load a backbone"):
        load_backbone(str(tmp_path / "empty"))


def test_bad_configs_are_rejected():
    with pytest.raises(ConfigError, match="--freeze"):
        SERModel(small_config(freeze="half"))
    with pytest.raises(ConfigError, match="backbone or the spectrogram"):
        SERModel(small_config(spectrogram=False))


def test_parameter_counts_add_up(tiny_backbone):
    model = make(tiny_backbone, freeze="backbone")
    counts = model.parameter_counts()
    assert counts["all"]["total"] == sum(p.numel() for p in model.parameters())
    assert counts["all"]["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert counts["backbone"]["trainable"] == 3  # only the layer weights


def test_mixup_mixes_each_clip_vector_with_its_partner():
    model = make(None).eval()
    wave = torch.randn(4, SR) * 0.1
    order = torch.tensor([2, 3, 0, 1])
    plain = model(wave).emotion_logits
    assert torch.allclose(model(wave, mix=(order, 1.0)).emotion_logits, plain, atol=1e-6)
    assert torch.allclose(model(wave, mix=(order, 0.0)).emotion_logits, plain[order], atol=1e-6)
    halfway = model(wave, mix=(order, 0.5)).emotion_logits
    assert not torch.allclose(halfway, plain, atol=1e-3) and not torch.allclose(halfway, plain[order], atol=1e-3)
