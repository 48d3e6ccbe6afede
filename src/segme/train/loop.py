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
from dataclasses import asdict
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
from segme.train.config import TrainConfig
from segme.train.losses import compute_loss, consistency_loss, resize_to


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
    return Trainer(cfg).run()


class Trainer:
    """One training run: ``Trainer(cfg).run()``.

    Construction checks the config and builds the model, data, optimiser and EMA, resumed
    from ``out/last.pt`` when asked (the order of these steps is the order the random
    generators are drawn in: keep it); ``run`` trains the epochs left.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        cfg.check()
        self.cfg = cfg
        self.rank, self.world = _dist_setup()
        self.main = self.rank == 0
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        _seed_all(cfg.seed)
        self.out = Path(cfg.out)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.build_model()
        self.build_data()
        self.build_optimiser()
        self.start_epoch, self.skip_steps, self.global_step, self.best = 0, 0, 0, -1.0
        self.resume()
        # a bar redrawn in a log file is noise: by default only on a terminal
        self.show_progress = sys.stderr.isatty() if cfg.progress is None else cfg.progress
        if self.main:
            print(f"training on {self.n_train} pairs from {len(self.folders)} folder(s), "
                  f"validating on {self.n_val}", flush=True)
        self.net: nn.Module = _TrainView(self.model)  # after resume: DDP starts from its weights
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.net)
        self.writer = None

    def build_model(self) -> None:
        """The network (from ImageNet weights and --init on a fresh run), its card, the input
        shapes of the steps and the teacher."""
        cfg = self.cfg
        model = create_model(cfg.model, **cfg.model_kwargs)
        cfg.check_model(model)
        self.hw = hw = as_hw(cfg.size or model.default_size)
        self.shapes = [(s, s) for s in sorted({hw[0], *cfg.scales})] if hw[0] == hw[1] else [hw]
        self.card = model.card(hw)
        _warm_up_batch_norm(model)
        self.teacher = (_Teacher(cfg.teacher, cfg.teacher_size, cfg.bf16, cfg.channels_last)
                        if cfg.teacher else None)
        fresh = not (cfg.resume and self.last_path.exists())
        if cfg.pretrained and fresh:
            message = model.load_pretrained()
            if self.main:
                print(message, flush=True)
        if cfg.init and fresh:
            message = init_from(model, cfg.init)
            if self.main:
                print(message, flush=True)
        self.model = model.to(memory_format=torch.channels_last) if cfg.channels_last else model

    def build_data(self) -> None:
        """The training set, its sampler and, on rank 0, the validation loader."""
        cfg, card = self.cfg, self.card
        self.folders = [cfg.data] if isinstance(cfg.data, str) else list(cfg.data)
        train_pairs = [p for folder in self.folders for p in find_pairs(folder)]
        val_pairs = find_pairs(cfg.val) if cfg.val else []
        self.n_train, self.n_val = len(train_pairs), len(val_pairs)
        if len(train_pairs) < cfg.batch * self.world:
            raise DataError(
                f"{', '.join(self.folders)}: {len(train_pairs)} pairs, fewer than one batch "
                f"({cfg.batch} x {self.world} processes); lower --batch"
            )
        prior = self.model.in_channels == 4
        # datasets decode every pair up front: a bad pair fails here, named, before training
        ds_args = dict(size=self.hw, mean=card.mean, std=card.std, prior=prior,
                       seed=cfg.seed, workers=max(1, cfg.workers))
        # crops at the largest input any step, the loss or the teacher needs
        crop = _crop_shape(self.shapes[-1], max(self.teacher.side if self.teacher else 0,
                                                cfg.loss_size))
        self.train_ds = SegDataset(train_pairs, train=True, backgrounds=cfg.backgrounds,
                                   bg_prob=cfg.bg_prob, scenes=cfg.scenes,
                                   scene_min_height=cfg.scene_min_height,
                                   scene_harmonize=cfg.scene_harmonize,
                                   replace_background=cfg.replace_background,
                                   consistency=cfg.consistency > 0, strength=cfg.augment,
                                   min_scale=cfg.min_scale, **{**ds_args, "size": crop})
        self.sampler = EpochSampler(len(self.train_ds), cfg.seed, self.rank, self.world)
        self.steps_per_epoch = len(self.sampler) // cfg.batch
        self.val_loader = None
        if val_pairs and self.main:
            val_ds = SegDataset(val_pairs, train=False, **ds_args)
            self.val_loader = DataLoader(val_ds, batch_size=cfg.batch, num_workers=cfg.workers)

    def build_optimiser(self) -> None:
        """AdamW, the learning-rate schedule and the moving average of the weights."""
        cfg = self.cfg
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay)
        if cfg.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, _lr_lambda(cfg, self.steps_per_epoch))
        else:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="max", factor=0.5, patience=3)
        self.ema = (AveragedModel(self.model, avg_fn=_ema_avg(cfg.ema), use_buffers=True)
                    if cfg.ema > 0 else None)

    def resume(self) -> None:
        """With --resume, the state of last.pt where there is one: weights, EMA, optimiser,
        schedule, position in the run and random generators."""
        if not self.cfg.resume:
            return
        if not self.last_path.exists():
            if self.main:
                print(f"no {self.last_path} yet: starting a new run")
            return
        ckpt = read_checkpoint(self.last_path)
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.module.load_state_dict(ckpt["ema"])
            self.ema.n_averaged.fill_(ckpt["ema_n"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.start_epoch, self.skip_steps = ckpt["epoch"], ckpt["step_in_epoch"]
        self.global_step, self.best = ckpt["global_step"], ckpt["best"]
        _set_rng_state(ckpt["rng"])
        if self.main:
            print(f"resumed from {self.last_path}: epoch {self.start_epoch + 1}, "
                  f"step {self.skip_steps}")

    def run(self) -> dict[str, float]:
        """Train the epochs left; returns the last one's metrics."""
        self.open_logs()
        results: dict[str, float] = {}
        try:
            for epoch in range(self.start_epoch, self.cfg.epochs):
                if epoch >= self.cfg.epochs - self.cfg.qat:  # the last --qat epochs
                    from segme.train import qat

                    qat.attach(self.model)
                results = self.train_epoch(epoch, self.skip_steps if epoch == self.start_epoch
                                           else 0)
                self.end_epoch(epoch, results)
        except KeyboardInterrupt:
            if self.main:
                print(f"\ninterrupted: resume with --resume (last checkpoint: "
                      f"{self.last_path})")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.world > 1 and dist.is_initialized():
                dist.destroy_process_group()
        return results

    def train_epoch(self, epoch: int, skip: int) -> dict[str, float]:
        """One pass over this process's share of the training set, from its step ``skip``;
        returns the epoch's mean loss, last learning rate and speed."""
        cfg = self.cfg
        if skip == 0:
            torch.manual_seed(cfg.seed * 100_003 + epoch)  # order-independent per epoch
        self.train_ds.set_epoch(epoch)
        self.sampler.set_epoch(epoch, skip * cfg.batch)
        loader = DataLoader(self.train_ds, batch_size=cfg.batch, sampler=self.sampler,
                            num_workers=cfg.workers, drop_last=True)
        self.model.train()
        bar = self.progress_bar(epoch, skip)
        t0, seen, loss_sum, n_loss = time.perf_counter(), 0, 0.0, 0
        for step, batch in enumerate(loader, start=skip):
            loss = self.step(batch)
            seen += batch["image"].shape[0] * self.world
            loss_sum += loss
            n_loss += 1
            lr = self.optimizer.param_groups[0]["lr"]
            if bar is not None:
                ips = seen / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss_sum / n_loss:.4f}", lr=f"{lr:.2e}",
                                img_s=f"{ips:.1f}")
                bar.update(1)
            self.log_step(loss, lr)
            if (cfg.save_every and (step + 1) % cfg.save_every == 0
                    and step + 1 < self.steps_per_epoch and self.main):
                self.save(epoch, step + 1)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t0
        return {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(1, n_loss),
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_s": seen / max(1e-9, elapsed),
            "epoch_s": elapsed,
        }

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        """One optimiser step on ``batch`` (crops at the largest input the run needs);
        returns its loss."""
        cfg, model, card = self.cfg, self.model, self.card
        full, shape = batch, self.shapes[-1]
        if len(self.shapes) > 1:  # the input depends on (seed, step) only: resumable
            shape = self.shapes[random.Random(cfg.seed * 1_000_003 + self.global_step)
                                .randrange(len(self.shapes))]
        batch = _rescale(batch, shape)
        outputs = _forward(self.net, _inputs(batch, cfg.channels_last), cfg.bf16)
        rgb = _rgb(batch, card.mean, card.std)
        truth, scored = batch["mask"], outputs
        if cfg.loss_size:  # bilinear up to the crop, as evaluation upsamples alpha
            truth = full["mask"]
            scored = {**outputs, "logits": resize_to(outputs["logits"], truth)}
        loss, _ = compute_loss(model.loss_recipe, scored, truth, rgb, cfg.edge_weight,
                               cfg.lovasz)
        if self.teacher is not None:
            kd = consistency_loss(self.teacher.logits(full, card, shape), outputs["logits"])
            loss = loss + cfg.distill * kd
        if "image2" in batch:
            out2 = _forward(self.net, _inputs(batch, cfg.channels_last, key="image2"), cfg.bf16)
            loss2, _ = compute_loss(model.loss_recipe, out2, batch["mask"], rgb,
                                    cfg.edge_weight, cfg.lovasz)
            kl = consistency_loss(outputs["logits"], out2["logits"])
            loss = loss + loss2 + cfg.consistency * kl
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if cfg.schedule == "cosine":
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(model)
        self.global_step += 1
        return float(loss.detach())

    def end_epoch(self, epoch: int, results: dict[str, float]) -> None:
        """After an epoch, on every process: rank 0 validates; every rank steps the plateau
        schedule on rank 0's score (their learning rates stay equal); rank 0 writes last.pt
        (and best.pt when the score rose) and logs."""
        score = self.validation(results) if self.main else 0.0
        if self.world > 1:
            shared = torch.tensor([score], dtype=torch.float64)
            dist.broadcast(shared, src=0)
            score = float(shared)
        if self.cfg.schedule == "plateau":
            self.scheduler.step(score)
        if self.main:
            improved = score > self.best
            self.best = max(self.best, score)
            self.save(epoch + 1, 0, best=improved)
            self.log_epoch(results, improved)
        if self.world > 1:
            dist.barrier()

    def validation(self, results: dict[str, float]) -> float:
        """Adds the validation metrics (of the EMA weights) to ``results``; returns the score
        best.pt goes by: val fg-IoU or, without validation, minus the training loss."""
        if self.val_loader is None:
            return -results["train_loss"]
        model = self.ema.module if self.ema is not None else self.model
        results.update(validate(model, self.val_loader, self.cfg.channels_last))
        return results["val_fg_iou"]

    def state(self, epoch: int, step_in_epoch: int) -> dict[str, Any]:
        """A checkpoint: everything a resumed run needs to continue at this point."""
        ema = self.ema
        return {
            "format": FORMAT,
            "card": self.card.to_json(),
            "config": asdict(self.cfg),
            "model": self.model.state_dict(),
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_n": int(ema.n_averaged) if ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "rng": _rng_state(),
        }

    def save(self, epoch: int, step_in_epoch: int, best: bool = False) -> None:
        """Write last.pt (and best.pt too when ``best``), each atomically."""
        ckpt = self.state(epoch, step_in_epoch)
        save_atomic(ckpt, self.last_path)
        if best:
            save_atomic(ckpt, self.best_path)

    def open_logs(self) -> None:
        """Rank 0: the run folder and, when asked for and installed, a TensorBoard writer."""
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if self.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tensorboard"))
            except ImportError:
                self.writer = None

    def progress_bar(self, epoch: int, skip: int) -> Any:
        """A tqdm bar for the epoch on rank 0 when progress is shown, else None."""
        if not (self.main and self.show_progress):
            return None
        from tqdm import tqdm

        return tqdm(total=self.steps_per_epoch, initial=skip,
                    desc=f"epoch {epoch + 1}/{self.cfg.epochs}", dynamic_ncols=True, leave=True)

    def log_step(self, loss: float, lr: float) -> None:
        """Every 10th step: loss and learning rate to TensorBoard."""
        if self.writer is not None and self.global_step % 10 == 0:
            self.writer.add_scalar("train/loss", loss, self.global_step)
            self.writer.add_scalar("train/lr", lr, self.global_step)

    def log_epoch(self, results: dict[str, float], improved: bool) -> None:
        """An epoch's metrics: a row of log.csv, TensorBoard scalars and a line on stdout."""
        _append_csv(self.out / "log.csv", results)
        if self.writer is not None:
            for k, v in results.items():
                self.writer.add_scalar(f"epoch/{k}", v, results["epoch"])
        print(_summary(results, improved), flush=True)

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
