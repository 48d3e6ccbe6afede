"""The training loop: wraps a registered model, never the reverse.

Runs on one process or under ``torchrun --nproc_per_node N`` (DistributedDataParallel,
gloo on CPU, nccl on GPU). Resumable: ``last.pt`` holds model, EMA, optimiser, scheduler,
epoch, step inside the epoch and RNG state, and the data order and augmentation of every
sample are a pure function of (seed, epoch, index), so a resumed run reproduces an
uninterrupted one exactly.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Sampler

from segme.cards import as_hw
from segme.data import DataError, find_pairs
from segme.data.dataset import SegDataset
from segme.models import create_model
from segme.models.loading import FORMAT, init_from, load_model, read_checkpoint
from segme.train.checkpoint import save_atomic
from segme.train.losses import compute_loss, consistency_loss, resize_to


@dataclass
class TrainConfig:
    """Everything a run needs; saved into every checkpoint."""

    model: str  # registry name, see `segme models list`
    # training folder (images/+masks/, image/+mask/ or P3M layout), or several: e.g. the
    # labelled set plus pseudo-labelled photos written by `segme mask` with a teacher
    data: str | list[str]
    val: str | None = None  # validation folder; None: no validation, best.pt = last.pt
    out: str = "runs/exp"  # run folder: last.pt, best.pt, log.csv, tensorboard/
    # input side in pixels (square), or (height, width): e.g. (256, 192) for portrait photos
    # seen without squashing; None = the model's default
    size: int | tuple[int, int] | None = None
    # more square sides to train at (multi-scale training, square size only): each step
    # picks one of size and these; crops are made at the largest and downscaled with
    # antialiasing, validation and the exported card stay at size. [] = size only
    scales: list[int] = field(default_factory=list)
    epochs: int = 30
    batch: int = 16  # per process
    lr: float = 2e-3  # peak learning rate of AdamW
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (per step, linear warm-up) | plateau (on val fg-IoU)
    warmup_epochs: float = 1.0
    ema: float = 0.999  # decay of the exponential moving average of the weights; 0 = off
    workers: int = 2  # DataLoader worker processes per training process
    seed: int = 0
    backgrounds: str | None = None  # photos to composite people onto (augmentation)
    bg_prob: float = 0.3  # probability of compositing a training sample
    # probability of making a sample a scene of several photos (collage, people pasted at
    # other sizes and framings onto backgrounds, nobody): framings the portrait sets lack
    scenes: float = 0.0
    # smallest person pasted into a scene, as a fraction of its height: 0.3 keeps people
    # portrait-sized; 0.05 adds distant pedestrians and groups of up to six
    scene_min_height: float = 0.3
    # sources (file-name prefixes) whose photos always get a new background from
    # `backgrounds` unless made into a scene: their own hold people their masks leave out
    replace_background: list[str] = field(default_factory=list)
    augment: str = "default"  # augmentation preset: light | default | strong
    # smallest crop area fraction; None = the preset's. Near 1 the crops frame people as the
    # whole-image test protocol does (a last fine-tune against the train/test size gap)
    min_scale: float | None = None
    consistency: float = 0.0  # weight of PortraitNet's consistency KL; 0 = off
    edge_weight: float = 0.0  # extra BCE weight near the mask outline (seg recipe); 0 = off
    lovasz: float = 0.0  # weight of the Lovasz hinge, an IoU surrogate (seg recipe); 0 = off
    # score the loss at a larger side than the input (seg recipe): crops are made at least
    # loss_size on their short side and the student's logits upsampled bilinearly to the
    # crop, as the test protocol upsamples alpha to the photo's size, so the edge is placed
    # between the model's pixels; 0 = at the input size
    loss_size: int = 0
    init: str | None = None  # start from these weights (.pt/.safetensors) unless resuming
    # start the encoder from its ImageNet weights (families that have them, e.g.
    # efficientnet_unet); applied before init, so init still wins where both are given
    pretrained: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 0.75}
    resume: bool = False  # continue from out/last.pt
    save_every: int = 0  # also write last.pt every N steps inside an epoch; 0 = epoch ends
    threads: int | None = None  # torch intra-op threads per process; None = torch default
    channels_last: bool = True  # NHWC memory format: 1.4-1.6x faster training on CPU here
    # forward pass under bfloat16 autocast (losses, weights and the optimiser stay float32):
    # faster for wide networks at large inputs on CPUs with bf16 instructions
    bf16: bool = False
    # knowledge distillation: a trained model (.pt/.safetensors, 3 input channels) whose
    # probabilities on each training crop the student also learns, by a per-pixel KL term of
    # weight distill added to its loss. The teacher sees the crop at teacher_size x
    # teacher_size (default its own card's side; crops are made large enough for it and
    # the student and downscaled), its logits are resized to the student's input
    teacher: str | None = None
    teacher_size: int | None = None
    distill: float = 1.0
    tensorboard: bool = True  # also log to out/tensorboard when tensorboard is installed
    progress: bool | None = None  # show a progress bar; None = when stderr is a terminal


class EpochSampler(Sampler[int]):
    """Deterministic shuffled order per epoch, sharded across processes, resumable mid-epoch.

    The permutation depends only on (seed, epoch); process ``rank`` takes every ``world``-th
    index; the first ``skip`` indices of this process's share are dropped (already trained).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _share(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        per = self.n // self.world  # equal shares so every process runs the same steps
        return order[self.rank * per : (self.rank + 1) * per]

    def __iter__(self):
        return iter(self._share()[self.skip :])

    def __len__(self) -> int:
        return max(0, self.n // self.world - self.skip)


class _TrainView(nn.Module):
    """Makes ``forward`` return the training dict so DistributedDataParallel hooks apply."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_train(x)


def _dist_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def _ema_avg(decay: float):
    """EMA update with warm-up: the decay grows as (1 + n) / (10 + n) up to ``decay``.

    A fixed 0.999 would keep ~70% of the random initial weights after 350 steps, so the
    averaged model of a short CPU run would be useless for its first epochs.
    """

    def avg(ema: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return ema * d + new * (1.0 - d)

    return avg


def _warm_up_batch_norm(model: nn.Module) -> None:
    """Start the running statistics of batch norm as the mean of the batches seen.

    They start at mean 0 and variance 1 and move by the momentum (0.1) per batch: after a
    short run they still hold much of that start, and the network in eval mode (validation,
    export) sees activations scaled far from those it was trained on; a 16-step run on
    synthetic data gave a near-constant alpha (val fg-IoU 0.00) where the same weights with
    their batches' statistics score 58. Each layer's momentum for its n-th batch is
    max(its own, 1 / n): the first batch replaces the start, the first few average in
    equally. n counts on the layer's checkpointed ``num_batches_tracked``, so a resumed run
    does the same and weights of a run given to ``--init`` keep their statistics; ImageNet
    weights and those read back from ONNX (folded batch norms) count from 0, and their
    statistics give way to the data's as quickly.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None:
            m.register_forward_pre_hook(functools.partial(_bn_momentum, m.momentum))


def _bn_momentum(base: float, bn: nn.Module, _inputs: tuple) -> None:
    bn.momentum = max(base, 1.0 / (int(bn.num_batches_tracked) + 1))


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, channels_last: bool = False) -> dict[str, float]:
    """fg-IoU (one confusion matrix over the set) and MAD at the model's input size.

    A fast proxy for the full protocol of ``segme eval`` (which scores at each mask's size).
    """
    model.eval()
    tp = fp = fn = 0.0
    abs_err, pixels = 0.0, 0
    for batch in loader:
        x = _inputs(batch, channels_last)
        alpha = model(x)
        truth = batch["mask"]
        p, t = alpha >= 0.5, truth >= 0.5
        tp += float((p & t).sum())
        fp += float((p & ~t).sum())
        fn += float((~p & t).sum())
        abs_err += float((alpha - truth).abs().sum())
        pixels += truth.numel()
    return {
        "val_fg_iou": 100.0 * tp / max(1.0, tp + fp + fn),
        "val_mad": abs_err / max(1, pixels),
    }


def _forward(net: nn.Module, x: torch.Tensor, bf16: bool) -> dict[str, torch.Tensor]:
    """The training outputs, float32 (under bfloat16 autocast when ``bf16``)."""
    if not bf16:
        return net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = net(x)
    return {k: v.float() for k, v in outputs.items()}


def _inputs(batch: dict[str, torch.Tensor], channels_last: bool, key: str = "image"):
    x = batch[key]
    if "prior" in batch:
        x = torch.cat([x, batch["prior"]], 1)  # [B, 4, H, W]
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class _Teacher:
    """A frozen trained model whose logits on the training crops the student distils.

    It sees each crop at its own ``side`` with its own normalisation, whatever the
    student's; its logits come back at the student's input size.
    """

    def __init__(self, path: str, side: int | None, bf16: bool, channels_last: bool) -> None:
        model, card = load_model(path)
        if model.in_channels != 3:
            raise ValueError(f"--teacher {path}: a teacher takes RGB only, this one has "
                             f"{model.in_channels} input channels")
        self.side = side or card.input_size[0]
        if self.side <= 0 or self.side % model.size_divisor:
            raise ValueError(f"--teacher-size {self.side} is not a positive multiple of the "
                             f"teacher's size divisor {model.size_divisor}")
        model.requires_grad_(False)
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.mean = torch.tensor(card.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(card.std).view(1, 3, 1, 1)
        self.bf16, self.channels_last = bf16, channels_last

    @torch.no_grad()
    def logits(self, batch: dict, card, hw: tuple[int, int]) -> torch.Tensor:
        """Logits [B, 1, h, w] for the crops of ``batch`` (images of any size, normalised
        with the student's ``card``)."""
        x = (_rgb(_rescale(batch, (self.side, self.side)), card.mean, card.std)
             - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = _forward(self.model.outputs, x, self.bf16)["logits"]
        if tuple(logits.shape[-2:]) != hw:
            logits = torch.nn.functional.interpolate(logits, size=hw, mode="bilinear",
                                                     align_corners=False)
        return logits


def _rescale(batch: dict, hw: tuple[int, int]) -> dict:
    """The batch's images, masks and priors [B, C, H, W] resized to ``hw`` = (h, w)
    (antialiased bilinear; masks become soft at edges, as a downscaled photo's truth is)."""
    out = dict(batch)
    for key in ("image", "image2", "mask", "prior"):
        if key in out and tuple(out[key].shape[-2:]) != hw:
            out[key] = torch.nn.functional.interpolate(
                out[key], size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out


def _crop_shape(hw: tuple[int, int], teacher_side: int) -> tuple[int, int]:
    """The training crop's (h, w): the student's input ``hw``, enlarged at its aspect
    until it covers a teacher_side x teacher_side input (0: no teacher)."""
    k = max(1.0, teacher_side / hw[0], teacher_side / hw[1])
    return round(hw[0] * k), round(hw[1] * k)


def _rgb(batch: dict[str, torch.Tensor], mean, std) -> torch.Tensor:
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return batch["image"] * s + m  # [B, 3, H, W] in [0, 1]


def train(cfg: TrainConfig) -> dict[str, float]:
    """Train a model; returns the last epoch's metrics (best.pt holds the best epoch's
    weights, by validation fg-IoU or, without validation, training loss)."""
    rank, world = _dist_setup()
    main = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _seed_all(cfg.seed)
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"

    model = create_model(cfg.model, **cfg.model_kwargs)
    hw = as_hw(cfg.size or model.default_size)
    for side in hw:
        if side <= 0 or side % model.size_divisor:
            d = model.size_divisor
            raise ValueError(f"--size {hw[0]}x{hw[1]}: {side} is not a positive multiple of "
                             f"{cfg.model}'s size divisor {d}; try "
                             f"{max(1, math.ceil(side / d)) * d}")
    if cfg.scales and hw[0] != hw[1]:
        raise ValueError(f"--scales (multi-scale training) needs a square --size, got "
                         f"{hw[0]}x{hw[1]}")
    odd = [s for s in cfg.scales if s <= 0 or s % model.size_divisor]
    if odd:
        raise ValueError(f"--scales {odd[0]} is not a positive multiple of {cfg.model}'s size "
                         f"divisor {model.size_divisor}")
    shapes = [(s, s) for s in sorted({hw[0], *cfg.scales})] if hw[0] == hw[1] else [hw]
    card = model.card(hw)
    _warm_up_batch_norm(model)
    teacher = (_Teacher(cfg.teacher, cfg.teacher_size, cfg.bf16, cfg.channels_last)
               if cfg.teacher else None)
    if cfg.loss_size < 0 or (cfg.loss_size and model.loss_recipe != "seg"):
        raise ValueError(f"--loss-size {cfg.loss_size}: needs a positive side and a model "
                         f"with the seg loss ({cfg.model} has {model.loss_recipe!r})")
    fresh = not (cfg.resume and last_path.exists())
    if cfg.pretrained and fresh:
        message = model.load_pretrained()
        if main:
            print(message, flush=True)
    if cfg.init and fresh:
        message = init_from(model, cfg.init)
        if main:
            print(message, flush=True)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)

    folders = [cfg.data] if isinstance(cfg.data, str) else list(cfg.data)
    train_pairs = [p for folder in folders for p in find_pairs(folder)]
    val_pairs = find_pairs(cfg.val) if cfg.val else []
    if len(train_pairs) < cfg.batch * world:
        raise DataError(
            f"{', '.join(folders)}: {len(train_pairs)} pairs, fewer than one batch "
            f"({cfg.batch} x {world} processes); lower --batch"
        )

    prior = model.in_channels == 4
    # datasets decode every pair up front: a bad pair fails here, named, before training
    ds_args = dict(size=hw, mean=card.mean, std=card.std, prior=prior, seed=cfg.seed,
                   workers=max(1, cfg.workers))
    train_ds = SegDataset(train_pairs, train=True, backgrounds=cfg.backgrounds,
                          bg_prob=cfg.bg_prob, scenes=cfg.scenes,
                          scene_min_height=cfg.scene_min_height,
                          replace_background=cfg.replace_background, consistency=cfg.consistency > 0,
                          strength=cfg.augment, min_scale=cfg.min_scale,
                          **{**ds_args, "size": _crop_shape(
                              shapes[-1], max(teacher.side if teacher else 0, cfg.loss_size))})
    sampler = EpochSampler(len(train_ds), cfg.seed, rank, world)
    steps_per_epoch = len(sampler) // cfg.batch
    val_loader = None
    if val_pairs and main:
        val_ds = SegDataset(val_pairs, train=False, **ds_args)
        val_loader = DataLoader(val_ds, batch_size=cfg.batch, num_workers=cfg.workers)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, steps_per_epoch))
    elif cfg.schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.5, patience=3
        )
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; use cosine or plateau")
    ema = (AveragedModel(model, avg_fn=_ema_avg(cfg.ema), use_buffers=True)
           if cfg.ema > 0 else None)

    start_epoch, skip_steps, global_step, best = 0, 0, 0, -1.0
    if cfg.resume and last_path.exists():
        ckpt = read_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.module.load_state_dict(ckpt["ema"])
            ema.n_averaged.fill_(ckpt["ema_n"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, skip_steps = ckpt["epoch"], ckpt["step_in_epoch"]
        global_step, best = ckpt["global_step"], ckpt["best"]
        _set_rng_state(ckpt["rng"])
        if main:
            print(f"resumed from {last_path}: epoch {start_epoch + 1}, step {skip_steps}")
    elif cfg.resume and main:
        print(f"no {last_path} yet: starting a new run")
    # a bar redrawn in a log file is noise: by default only on a terminal
    show_progress = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    if main:
        print(f"training on {len(train_pairs)} pairs from {len(folders)} folder(s), "
              f"validating on {len(val_pairs)}", flush=True)

    net: nn.Module = _TrainView(model)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net)

    writer = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                writer = None
    log_path = out / "log.csv"

    def checkpoint(epoch: int, step_in_epoch: int) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "card": card.to_json(),
            "config": asdict(cfg),
            "model": model.state_dict(),
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_n": int(ema.n_averaged) if ema is not None else 0,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            "best": best,
            "rng": _rng_state(),
        }

    results: dict[str, float] = {}
    try:
        for epoch in range(start_epoch, cfg.epochs):
            skip = skip_steps if epoch == start_epoch else 0
            if skip == 0:
                torch.manual_seed(cfg.seed * 100_003 + epoch)  # order-independent per epoch
            train_ds.set_epoch(epoch)
            sampler.set_epoch(epoch, skip * cfg.batch)
            loader = DataLoader(train_ds, batch_size=cfg.batch, sampler=sampler,
                                num_workers=cfg.workers, drop_last=True)
            model.train()
            bar = None
            if main and show_progress:
                from tqdm import tqdm

                bar = tqdm(total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           dynamic_ncols=True, leave=True)
            t0, seen, loss_sum, n_loss = time.perf_counter(), 0, 0.0, 0
            for step, batch in enumerate(loader, start=skip):
                full = batch  # crops at the largest input any step or the teacher needs
                shape = shapes[-1]
                if len(shapes) > 1:  # the input depends on (seed, step) only: resumable
                    shape = shapes[random.Random(cfg.seed * 1_000_003 + global_step).randrange(
                        len(shapes))]
                batch = _rescale(batch, shape)
                x = _inputs(batch, cfg.channels_last)
                outputs = _forward(net, x, cfg.bf16)
                rgb = _rgb(batch, card.mean, card.std)
                truth, scored = batch["mask"], outputs
                if cfg.loss_size:  # bilinear up to the crop, as evaluation upsamples alpha
                    truth = full["mask"]
                    scored = {**outputs, "logits": resize_to(outputs["logits"], truth)}
                loss, parts = compute_loss(model.loss_recipe, scored, truth, rgb,
                                           cfg.edge_weight, cfg.lovasz)
                if teacher is not None:
                    kd = consistency_loss(teacher.logits(full, card, shape), outputs["logits"])
                    loss = loss + cfg.distill * kd
                if "image2" in batch:
                    out2 = _forward(net, _inputs(batch, cfg.channels_last, key="image2"), cfg.bf16)
                    loss2, _ = compute_loss(model.loss_recipe, out2, batch["mask"], rgb,
                                           cfg.edge_weight, cfg.lovasz)
                    kl = consistency_loss(outputs["logits"], out2["logits"])
                    loss = loss + loss2 + cfg.consistency * kl
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if cfg.schedule == "cosine":
                    scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                global_step += 1
                seen += x.shape[0] * world
                loss_sum += float(loss.detach())
                n_loss += 1
                lr = optimizer.param_groups[0]["lr"]
                if bar is not None:
                    ips = seen / max(1e-9, time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{loss_sum / n_loss:.4f}", lr=f"{lr:.2e}",
                                    img_s=f"{ips:.1f}")
                    bar.update(1)
                if writer is not None and global_step % 10 == 0:
                    writer.add_scalar("train/loss", float(loss.detach()), global_step)
                    writer.add_scalar("train/lr", lr, global_step)
                if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < steps_per_epoch:
                    if main:
                        save_atomic(checkpoint(epoch, step + 1), last_path)
            if bar is not None:
                bar.close()
            elapsed = time.perf_counter() - t0
            results = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(1, n_loss),
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_s": seen / max(1e-9, elapsed),
                "epoch_s": elapsed,
            }
            if main:
                if val_loader is not None:
                    results.update(validate(ema.module if ema is not None else model, val_loader,
                                            cfg.channels_last))
                    score = results["val_fg_iou"]
                else:
                    score = -results["train_loss"]
                if cfg.schedule == "plateau":
                    scheduler.step(score)
                improved = score > best
                best = max(best, score)
                ckpt = checkpoint(epoch + 1, 0)
                save_atomic(ckpt, last_path)
                if improved:
                    save_atomic(ckpt, best_path)
                _append_csv(log_path, results)
                if writer is not None:
                    for k, v in results.items():
                        writer.add_scalar(f"epoch/{k}", v, epoch + 1)
                print(_summary(results, improved), flush=True)
            if world > 1:
                dist.barrier()
    except KeyboardInterrupt:
        if main:
            print(f"\ninterrupted: resume with --resume (last checkpoint: {last_path})")
        raise
    finally:
        if writer is not None:
            writer.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return results


def _append_csv(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _summary(r: dict[str, float], improved: bool) -> str:
    text = (f"epoch {r['epoch']}: loss {r['train_loss']:.4f}, lr {r['lr']:.2e}, "
            f"{r['images_per_s']:.1f} img/s")
    if "val_fg_iou" in r:
        text += f", val fg-IoU {r['val_fg_iou']:.2f}, val MAD {r['val_mad']:.4f}"
    return text + (" (best)" if improved else "")
