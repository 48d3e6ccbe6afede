"""Training: losses go down, a killed run resumes to the identical state, DDP runs."""

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from segme.data.synthetic import make_synthetic_dataset, synthetic_pair
from segme.models import create_model
from segme.models.loading import load_model, read_checkpoint
from segme.train import loop
from segme.train.checkpoint import save_atomic
from segme.train.loop import TrainConfig, Trainer, train
from segme.train.losses import compute_loss, consistency_loss, lovasz_hinge, mask_edges

FAMILIES = ["mobile_unet", "mnv3_unet", "deeplabv3plus", "prisma_net", "portrait_net",
            "slim_net", "sinet", "mmnet", "modnet", "test_tiny_prior"]


def synthetic_batch(model, size=64, n=4, seed=0):
    rng = np.random.default_rng(seed)
    imgs, masks = zip(*(synthetic_pair(rng, size, size) for _ in range(n)))
    rgb = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255  # [B, 3, S, S]
    mask = torch.from_numpy(np.stack(masks))[:, None]  # [B, 1, S, S]
    mean = torch.tensor(model.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    x = (rgb - mean) / std
    if model.in_channels == 4:
        x = torch.cat([x, mask], 1)
    return x, mask, rgb


@pytest.mark.parametrize("name", FAMILIES)
def test_two_steps_reduce_the_loss(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    x, mask, rgb = synthetic_batch(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss, parts = compute_loss(model.loss_recipe, model.forward_train(x), mask, rgb)
        assert all(np.isfinite(v) for v in parts.values())
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[2] < losses[0], losses


def test_loss_recipes_reach_zero_only_for_perfect_predictions():
    truth = torch.zeros(1, 1, 16, 16)
    truth[..., 4:12, 4:12] = 1
    perfect = {"logits": (truth * 2 - 1) * 50}
    rgb = torch.rand(1, 3, 16, 16)
    loss, _ = compute_loss("matting", perfect, truth, rgb)
    assert float(loss) < 1e-3
    wrong = {"logits": -perfect["logits"]}
    assert float(compute_loss("matting", wrong, truth, rgb)[0]) > 0.3
    assert float(compute_loss("seg", wrong, truth)[0]) > float(compute_loss("seg", perfect, truth)[0])
    with pytest.raises(ValueError, match="unknown loss recipe"):
        compute_loss("nope", perfect, truth)


def test_consistency_and_edges():
    logits = torch.randn(2, 1, 8, 8)
    assert float(consistency_loss(logits, logits)) == pytest.approx(0.0, abs=1e-6)
    assert float(consistency_loss(logits, -logits)) > 0.1
    m = torch.zeros(1, 1, 9, 9)
    m[..., 3:6, 3:6] = 1
    edges = mask_edges(m)
    assert edges[0, 0, 4, 4] == 0 and edges[0, 0, 3, 3] == 1 and edges[0, 0, 0, 0] == 0


def test_edge_weight_counts_errors_at_the_outline_more():
    truth = torch.zeros(1, 1, 64, 64)
    truth[..., 16:48, 16:48] = 1
    right = (truth * 2 - 1) * 4

    def loss(logits, w):
        return float(compute_loss("seg", {"logits": logits}, truth, edge_weight=w)[1]["bce"])

    at_edge, inside = right.clone(), right.clone()
    at_edge[..., 15:17, 16:48] *= -1  # the same number of wrong pixels, on the outline
    inside[..., 30:32, 16:48] *= -1  # ... and deep inside the person
    assert loss(at_edge, 0) == pytest.approx(loss(inside, 0), rel=1e-5)
    assert loss(at_edge, 4) > 2 * loss(inside, 4)
    assert loss(right, 4) == pytest.approx(loss(right, 0), rel=0.05)  # weights average to 1


def test_lovasz_hinge_is_one_minus_iou_at_unit_margins_and_drives_iou_up():
    gen = torch.Generator().manual_seed(0)
    truth = (torch.rand(3, 1, 20, 24, generator=gen) > 0.6).float()
    truth[2] = 0  # nobody in the picture: no division by an empty union
    pred = truth.clone()
    pred[:, :, :5] = 1 - pred[:, :, :5]  # wrong in the top rows
    # margin 1 where right (hinge error 0), margin 0 where wrong (error 1)
    logits = torch.where(pred == truth, 2 * truth - 1, torch.zeros_like(truth))
    inter = (pred * truth).sum((1, 2, 3))
    union = ((pred + truth) > 0).float().sum((1, 2, 3))
    assert float(lovasz_hinge(logits, truth)) == pytest.approx(float((1 - inter / union).mean()))
    assert float(lovasz_hinge((2 * truth - 1) * 3, truth)) == 0.0  # right with margin
    soft = truth * 0.9 + 0.05  # pseudo-labels are binarised at 0.5
    assert float(lovasz_hinge(logits, soft)) == pytest.approx(float(lovasz_hinge(logits, truth)))
    x = torch.zeros_like(truth, requires_grad=True)  # a few steps of descent raise the IoU
    opt = torch.optim.SGD([x], lr=0.5)
    for _ in range(20):
        opt.zero_grad()
        lovasz_hinge(x[:2], truth[:2]).backward()
        opt.step()
    hit = ((x[:2] > 0).float() == truth[:2]).float().mean()
    assert float(hit) == 1.0
    parts = compute_loss("seg", {"logits": logits}, truth, lovasz=0.5)[1]
    assert parts["lovasz"] == pytest.approx(0.5 * float(lovasz_hinge(logits, truth)))
    assert "lovasz" not in compute_loss("seg", {"logits": logits}, truth)[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(root, n_train=16, n_val=8, size=(40, 48), seed=1)
    return root


def _cfg(synth, out, **kw):
    base = TrainConfig(model="test_tiny", data=str(synth / "train"), val=str(synth / "val"),
                       out=str(out), size=32, epochs=2, batch=4, workers=0, seed=3,
                       progress=False, tensorboard=False, save_every=1)
    return replace(base, **kw)


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("scales", [[], [48, 64]], ids=["one-size", "multi-scale"])
def test_killed_run_resumes_to_identical_state(synth, tmp_path, monkeypatch, scales):
    """With --scales too: each step's side comes from (seed, step), so a resumed run trains
    the steps it had left at the same sides."""
    train(_cfg(synth, tmp_path / "a", scales=scales))
    ref = read_checkpoint(tmp_path / "a" / "last.pt")

    calls = {"n": 0}
    real = loop.compute_loss

    def crash_mid_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # 4 steps per epoch: the 2nd step of epoch 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "compute_loss", crash_mid_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(synth, tmp_path / "b", scales=scales))
    crashed = read_checkpoint(tmp_path / "b" / "last.pt")
    assert (crashed["epoch"], crashed["step_in_epoch"]) == (1, 1)  # mid-epoch checkpoint
    monkeypatch.setattr(loop, "compute_loss", real)
    train(_cfg(synth, tmp_path / "b", resume=True, scales=scales))
    got = read_checkpoint(tmp_path / "b" / "last.pt")
    assert got["epoch"] == ref["epoch"] == 2 and got["global_step"] == ref["global_step"]
    _same_state(ref["model"], got["model"])
    _same_state(ref["ema"], got["ema"])
    assert got["best"] == ref["best"]
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and log[0].startswith("epoch,")


def test_best_checkpoint_is_the_epoch_with_the_best_validation(synth, tmp_path, monkeypatch):
    scores = iter([50.0, 70.0, 60.0])  # validation rises, then falls

    def scripted(model, loader, channels_last=False):
        return {"val_fg_iou": next(scores), "val_mad": 0.1}

    monkeypatch.setattr(loop, "validate", scripted)
    res = train(_cfg(synth, tmp_path, epochs=3))
    assert res["epoch"] == 3 and res["val_fg_iou"] == 60.0  # the last epoch's figures
    best, last = read_checkpoint(tmp_path / "best.pt"), read_checkpoint(tmp_path / "last.pt")
    assert best["best"] == last["best"] == 70.0
    assert best["epoch"] == 2 and last["epoch"] == 3  # best.pt is epoch 2's, not the last
    assert not _tensors_equal(best["model"], last["model"])
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert len(log) == 4 and log[0].split(",")[0] == "epoch"
    model, card = load_model(tmp_path / "best.pt")
    assert card.arch == "test_tiny" and card.input_size == (32, 32) and not model.training


def _tensors_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_data_options_reach_the_training_set(synth, tmp_path, monkeypatch):
    """Backgrounds, scenes, augmentation strength and consistency copies are the dataset's
    to make (tests/test_data.py); here: the loop hands every option to the training set and
    none to the validation set, which is the whole image resized."""
    made = []
    real = loop.SegDataset

    def recording(pairs, **kwargs):
        made.append(kwargs)
        return real(pairs, **kwargs)

    monkeypatch.setattr(loop, "SegDataset", recording)
    bg = tmp_path / "bg"
    bg.mkdir()
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(bg / "grey.png")
    train(_cfg(synth, tmp_path / "run", epochs=1, backgrounds=str(bg), bg_prob=1.0, scenes=0.5,
               scene_min_height=0.1, augment="strong", consistency=0.5))
    training, validation = made
    assert training["train"] and not validation["train"]
    assert (training["backgrounds"], training["bg_prob"], training["scenes"]) == (str(bg), 1.0, 0.5)
    assert training["scene_min_height"] == 0.1 and training["strength"] == "strong"
    assert training["consistency"] is True
    assert not {"backgrounds", "scenes", "consistency", "strength"} & validation.keys()


def test_consistency_loss_is_added_every_step_when_asked(synth, tmp_path, monkeypatch):
    calls = []
    real = loop.consistency_loss

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "consistency_loss", counting)
    train(_cfg(synth, tmp_path / "off", epochs=1))
    assert calls == []
    train(_cfg(synth, tmp_path / "on", epochs=1, consistency=0.5))
    assert len(calls) == 16 // 4  # one per step: 16 pairs in batches of 4


def test_plateau_schedule_halves_the_rate_after_three_flat_epochs(synth, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(loop, "validate", lambda *a, **k: {"val_fg_iou": 50.0, "val_mad": 0.1})
    train(_cfg(synth, tmp_path, epochs=6, schedule="plateau", lr=1e-3))
    rows = (tmp_path / "log.csv").read_text().splitlines()
    col = rows[0].split(",").index("lr")
    lrs = [float(r.split(",")[col]) for r in rows[1:]]
    # epoch 1 sets the best; epochs 2-4 are three flat ones (the patience), epoch 5 the
    # fourth: the rate is halved after it, and epoch 6 runs at half (each row: its epoch's)
    assert lrs == pytest.approx([1e-3] * 5 + [5e-4])
    with pytest.raises(ValueError, match="unknown schedule"):
        train(_cfg(synth, tmp_path / "x", schedule="nope"))


def test_a_prior_model_trains_on_four_planes_and_says_so(synth, tmp_path, monkeypatch):
    planes = []
    real = loop.create_model

    def recording(name, **kwargs):
        model = real(name, **kwargs)
        model.register_forward_pre_hook(lambda m, args: planes.append(args[0].shape[1]))
        return model

    monkeypatch.setattr(loop, "create_model", recording)
    train(_cfg(synth, tmp_path / "run", model="test_tiny_prior", epochs=1))
    assert planes and set(planes) == {4}  # RGB and the previous frame's alpha, every step
    model, card = load_model(tmp_path / "run" / "last.pt")
    assert card.stateful_inputs == ["prev_alpha"] and model.in_channels == 4


def test_multi_scale_steps_see_every_side(synth, tmp_path, monkeypatch):
    seen = []
    real = loop.compute_loss

    def record(recipe, out, truth, rgb=None, edge_weight=0.0, lovasz=0.0):
        seen.append((tuple(out["logits"].shape[-2:]), tuple(truth.shape[-2:]),
                     tuple(rgb.shape[-2:])))
        assert 0.0 <= float(truth.min()) and float(truth.max()) <= 1.0
        return real(recipe, out, truth, rgb, edge_weight, lovasz)

    monkeypatch.setattr(loop, "compute_loss", record)
    cfg = _cfg(synth, tmp_path / "ms", scales=[48, 64], consistency=0.5, epochs=3)
    train(cfg)
    sides = [s[0] for s in seen]
    assert all(a == b == c for a, b, c in seen)  # image, mask and prediction agree
    assert {h for h, _ in sides} == {32, 48, 64}
    monkeypatch.setattr(loop, "compute_loss", real)
    model, card = load_model(tmp_path / "ms" / "best.pt")
    assert card.input_size == (32, 32)  # validation and export stay at --size
    with pytest.raises(ValueError, match="--scales 30"):
        train(_cfg(synth, tmp_path / "bad", scales=[30]))


def test_rescale_resizes_every_plane_and_keeps_masks_in_range():
    batch = {"image": torch.randn(2, 3, 64, 64), "image2": torch.randn(2, 3, 64, 64),
             "mask": (torch.rand(2, 1, 64, 64) > 0.5).float(), "prior": torch.rand(2, 1, 64, 64),
             "name": ["a", "b"]}
    out = loop._rescale(batch, (32, 32))
    for key in ("image", "image2", "mask", "prior"):
        assert out[key].shape[-2:] == (32, 32) and batch[key].shape[-2:] == (64, 64)
    assert 0.0 <= float(out["mask"].min()) and float(out["mask"].max()) <= 1.0
    assert out["name"] == ["a", "b"] and loop._rescale(batch, (64, 64))["image"] is batch["image"]
    assert loop._rescale(batch, (64, 32))["mask"].shape[-2:] == (64, 32)


def test_crops_cover_the_teacher_at_the_students_aspect():
    assert loop._crop_shape((32, 32), 0) == (32, 32)
    assert loop._crop_shape((32, 32), 64) == (64, 64)
    assert loop._crop_shape((256, 192), 320) == (427, 320)  # aspect kept, both sides covered
    assert loop._crop_shape((256, 192), 128) == (256, 192)


def test_rectangular_input_trains_validates_and_exports_at_its_shape(synth, tmp_path,
                                                                     monkeypatch):
    seen = []
    real = loop.compute_loss

    def record(recipe, out, truth, rgb=None, edge_weight=0.0, lovasz=0.0):
        seen.append((tuple(out["logits"].shape[-2:]), tuple(truth.shape[-2:])))
        return real(recipe, out, truth, rgb, edge_weight, lovasz)

    monkeypatch.setattr(loop, "compute_loss", record)
    train(_cfg(synth, tmp_path / "rect", size=(64, 32), epochs=1))
    assert seen and set(seen) == {((64, 32), (64, 32))}
    model, card = load_model(tmp_path / "rect" / "best.pt")
    assert card.input_size == (64, 32)
    assert model(torch.randn(1, 3, 64, 32)).shape == (1, 1, 64, 32)
    with pytest.raises(ValueError, match="needs a square --size"):
        train(_cfg(synth, tmp_path / "bad", size=(64, 32), scales=[64]))
    with pytest.raises(ValueError, match="34 is not a positive multiple"):
        train(_cfg(synth, tmp_path / "bad", size=(64, 34)))


def test_loss_at_a_larger_side_upsamples_the_logits_to_the_crop(synth, tmp_path, monkeypatch):
    seen = []
    real_loss, real_forward = loop.compute_loss, loop._forward

    def record(recipe, out, truth, rgb=None, edge_weight=0.0, lovasz=0.0):
        seen.append(("loss", tuple(out["logits"].shape[-2:]), tuple(truth.shape[-2:])))
        assert 0.0 <= float(truth.min()) and float(truth.max()) <= 1.0
        return real_loss(recipe, out, truth, rgb, edge_weight, lovasz)

    def forward(net, x, bf16):
        seen.append(("input", tuple(x.shape[-2:])))
        return real_forward(net, x, bf16)

    monkeypatch.setattr(loop, "compute_loss", record)
    monkeypatch.setattr(loop, "_forward", forward)
    train(_cfg(synth, tmp_path / "hi", epochs=1, loss_size=64, edge_weight=2.0))
    assert ("input", (32, 32)) in seen  # the model runs at --size ...
    assert {s for s in seen if s[0] == "loss"} == {("loss", (64, 64), (64, 64))}  # scored at 64
    monkeypatch.setattr(loop, "compute_loss", real_loss)
    monkeypatch.setattr(loop, "_forward", real_forward)
    assert load_model(tmp_path / "hi" / "best.pt")[1].input_size == (32, 32)
    with pytest.raises(ValueError, match="--loss-size"):
        train(_cfg(synth, tmp_path / "bad", loss_size=64, model="mmnet"))


def test_size_option_takes_a_side_or_height_by_width():
    from segme.cli._options import parse_size

    assert parse_size("224") == 224 and parse_size("256x192") == (256, 192)
    assert parse_size("256X256") == 256 and parse_size(None) is None
    for bad in ("", "x", "256x", "0", "2x3x4", "big", "-32"):
        with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
            parse_size(bad)


def test_atomic_save_keeps_previous_file_on_failure(tmp_path):
    path = tmp_path / "ck.pt"
    save_atomic({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_atomic({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path)["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


@pytest.mark.parametrize("change, words", [
    ({"data": "/no/such/dir"}, "--data folder not found: /no/such/dir"),
    ({"init": "/no/weights.pt"}, "--init weights not found"),
    ({"epochs": 0}, "--epochs must be at least 1, got 0"),
    ({"lr": 0.0}, "--lr must be positive"),
    ({"scenes": 1.5}, "--scenes must be a probability in [0, 1]"),
    ({"ema": 1.0}, "--ema must be a decay in [0, 1)"),
    ({"min_scale": 0.0}, "--min-scale must be in (0, 1]"),
    ({"replace_background": ["ccp"]}, "--replace-background needs --backgrounds"),
    ({"augment": "wild"}, "--augment 'wild'"),
])
def test_config_checks_name_the_option_before_any_work(synth, tmp_path, change, words):
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        train(_cfg(synth, tmp_path / "run", **change))
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_bad_size_and_tiny_dataset_are_explained(synth, tmp_path):
    with pytest.raises(ValueError, match="multiple of"):
        train(_cfg(synth, tmp_path, size=30))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_cfg(synth, tmp_path, batch=64))


@pytest.mark.slow
def test_torchrun_two_process_gloo(synth, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "segme.cli.main", "train", "--model", "test_tiny", "--data",
           str(synth / "train"), "--val", str(synth / "val"), "--size", "32", "--epochs", "1",
           "--batch", "4", "--workers", "0", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["global_step"] == 2  # 16 pairs / (2 processes x batch 4)
    assert proc.stdout.count("epoch 1:") == 1  # only rank 0 reports


def _plateau_rank(rank: int, cfg, init: str, lrs) -> None:
    """One of two processes: five epoch ends with the weights unchanged (a flat score)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2")
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    trainer = Trainer(cfg)
    for epoch in range(5):
        trainer.end_epoch(epoch, {"epoch": epoch + 1, "train_loss": 1.0, "lr": cfg.lr,
                                  "images_per_s": 1.0, "epoch_s": 1.0})
    lrs[rank] = trainer.optimizer.param_groups[0]["lr"]
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_plateau_schedule_halves_the_rate_on_every_process(synth, tmp_path):
    """Rank 0 alone validates; the others step on its score, so their rates stay equal."""
    cfg = _cfg(synth, tmp_path / "run", schedule="plateau", lr=1e-3)
    ctx = torch.multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        lrs = manager.dict()
        procs = [ctx.Process(target=_plateau_rank,
                             args=(r, cfg, f"file://{tmp_path / 'rendezvous'}", lrs))
                 for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0]
        assert dict(lrs) == {0: 5e-4, 1: 5e-4}  # patience 3: the fifth flat score halves it


def test_init_adds_a_prior_plane_that_starts_out_unused(synth, tmp_path):
    from segme.export.weights import save_weights
    from segme.models.loading import init_from

    torch.manual_seed(0)
    rgb_model = create_model("test_tiny").eval()
    path = save_weights(rgb_model, rgb_model.card(32), tmp_path / "rgb.safetensors")
    prior_model = create_model("test_tiny", in_channels=4)
    assert "embedded in larger tensors" in init_from(prior_model, path)
    x = torch.rand(2, 3, 32, 32)
    with_prior = torch.cat([x, torch.rand(2, 1, 32, 32)], 1)
    torch.testing.assert_close(prior_model.eval()(with_prior), rgb_model(x))
    res = train(_cfg(synth, tmp_path / "ft", model="test_tiny", model_kwargs={"in_channels": 4},
                     init=str(path), epochs=1))
    assert np.isfinite(res["train_loss"])
    with pytest.raises(ValueError, match="have no match in SINet"):
        init_from(create_model("sinet"), path)


def test_init_leaves_out_a_block_the_new_model_drops(tmp_path):
    from segme.export.weights import save_weights
    from segme.models.loading import init_from

    torch.manual_seed(0)
    full = create_model("mnv3_unet").eval()
    path = save_weights(full, full.card(64), tmp_path / "full.safetensors")
    slim = create_model("mnv3_unet", refine=False).eval()
    message = init_from(slim, path)
    assert "(decoder.refine) left out" in message
    kept = {k: v for k, v in full.state_dict().items() if not k.startswith("decoder.refine.")}
    for k, v in slim.state_dict().items():
        torch.testing.assert_close(v, kept[k])  # every other tensor copied
    with pytest.raises(ValueError, match="have no match"):  # another width is not a dropped block
        init_from(create_model("mnv3_unet", width=0.5), path)
    torch.manual_seed(1)
    light = create_model("mnv3_unet", refine="dw").eval()
    fresh = {k: v.clone() for k, v in light.state_dict().items() if k.startswith("decoder.refine.")}
    assert "(decoder.refine.body, decoder.refine.shortcut) left out" in init_from(light, path)
    for k, v in light.state_dict().items():  # a lighter block in its place starts fresh
        torch.testing.assert_close(v, fresh[k] if k in fresh else kept[k])


def test_init_widens_a_network_that_starts_out_as_the_narrow_one(tmp_path):
    from segme.export.weights import save_weights
    from segme.models.loading import init_from

    torch.manual_seed(0)
    narrow = create_model("mnv3_unet").eval()
    for m in narrow.modules():  # trained-looking batch-norm statistics, not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    path = save_weights(narrow, narrow.card(64), tmp_path / "narrow.safetensors")
    wide = create_model("mnv3_unet", width=2.0)
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    assert "embedded in larger tensors" in init_from(wide, path)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(wide.eval()(x), narrow(x), rtol=0, atol=1e-6)
    # the new output channels keep their own random start, the old ones take nothing from
    # the new inputs
    checked = 0
    for k, v in wide.state_dict().items():
        o = narrow.state_dict()[k]
        if v.ndim == 4 and v.shape[0] > o.shape[0] and v.shape[1] > o.shape[1]:
            assert torch.equal(v[o.shape[0]:], before[k][o.shape[0]:])
            assert not v[: o.shape[0], o.shape[1]:].any()
            checked += 1
    assert checked > 20
    wide.train()
    wide.outputs(x)["logits"].mean().backward()
    grads = [p.grad for p in wide.parameters() if p.grad is not None]
    assert len(grads) == len(list(wide.parameters()))
    with pytest.raises(ValueError, match="same or a smaller width"):
        init_from(create_model("mnv3_unet", width=0.5), path)


def test_bf16_autocast_trains(synth, tmp_path):
    res = train(_cfg(synth, tmp_path, epochs=1, bf16=True))
    assert np.isfinite(res["train_loss"])
    state = read_checkpoint(tmp_path / "last.pt")["model"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}


def test_distillation_from_a_teacher_at_its_own_side(synth, tmp_path):
    from segme.export.weights import save_weights
    from segme.train.loop import _Teacher

    torch.manual_seed(0)
    teacher = create_model("test_tiny").eval()
    path = save_weights(teacher, teacher.card(64), tmp_path / "teacher.safetensors")
    cfg = _cfg(synth, tmp_path / "kd", epochs=1, teacher=str(path), distill=2.0)
    loaded = _Teacher(str(path), None, bf16=False, channels_last=True)
    assert loaded.side == 64  # the teacher's own card
    card = create_model("test_tiny").card(32)
    x = torch.randn(2, 3, 64, 64)
    logits = loaded.logits({"image": x}, card, (32, 32))
    assert logits.shape == (2, 1, 32, 32)
    assert loaded.logits({"image": x}, card, (64, 32)).shape == (2, 1, 64, 32)
    same = loaded.logits({"image": x}, card, (64, 64))
    torch.testing.assert_close(same, teacher.outputs(x)["logits"])  # same normalisation here
    assert np.isfinite(train(cfg)["train_loss"])  # crops made at 64, the student's at 32
    # the same crops with and without the teacher: the distillation term is in the loss
    same_side = train(replace(cfg, out=str(tmp_path / "kd32"), teacher_size=32))
    plain = train(_cfg(synth, tmp_path / "plain", epochs=1))
    assert same_side["train_loss"] > plain["train_loss"]
    prior = create_model("test_tiny", in_channels=4).eval()
    ppath = save_weights(prior, prior.card(32), tmp_path / "prior.safetensors")
    with pytest.raises(ValueError, match="RGB only"):
        _Teacher(str(ppath), None, bf16=False, channels_last=True)
    with pytest.raises(ValueError, match="positive multiple"):
        _Teacher(str(path), -64, bf16=False, channels_last=True)


def test_model_args_take_json_and_python_spellings():
    from segme.cli.train import parse_model_args

    assert parse_model_args(["refine=False", "minimal=true", "width=0.75", "variant=small",
                             "x=None"]) == {"refine": False, "minimal": True, "width": 0.75,
                                            "variant": "small", "x": None}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_model_args(["refine"])
