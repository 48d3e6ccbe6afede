"""Training throughput on this CPU: images per second of a training step, per setting.

A step = forward (training outputs), the family's loss, backward and an AdamW update, on a
fixed random batch (data loading excluded: `segme train` logs the end-to-end figure). Each
setting is timed in turn for a few rounds and the median reported, with the ratio to the
plain float32, channels-first, eager step of the same run.

    python benchmarks/train_speed.py --model mnv3_unet --size 224 --batch 16 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from segme.models import create_model
from segme.train.losses import compute_loss

SETTINGS = {
    "fp32, channels-first (eager)": dict(channels_last=False, bf16=False, compile=False),
    "fp32, channels-last (segme train's default)": dict(channels_last=True, bf16=False,
                                                        compile=False),
    "bf16 autocast, channels-last": dict(channels_last=True, bf16=True, compile=False),
    "fp32, channels-last, torch.compile": dict(channels_last=True, bf16=False, compile=True),
}


def make_step(name: str, kwargs: dict, size: int, batch: int, channels_last: bool, bf16: bool,
              compile: bool):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, model.in_channels, size, size).to(memory_format=fmt)
    truth = (torch.rand(batch, 1, size, size) > 0.5).float()
    rgb = torch.rand(batch, 3, size, size)
    forward = torch.compile(model.forward_train) if compile else model.forward_train

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        out = {k: v.float() for k, v in out.items()}
        loss, _ = compute_loss(model.loss_recipe, out, truth, rgb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="mnv3_unet")
    ap.add_argument("--model-arg", action="append", default=[], help="KEY=VALUE")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-compile", action="store_true", help="leave torch.compile out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kwargs = {}
    for item in args.model_arg:
        k, _, v = item.partition("=")
        kwargs[k] = float(v) if v.replace(".", "", 1).isdigit() else v

    steps = {}
    for label, s in SETTINGS.items():
        if s["compile"] and args.skip_compile:
            continue
        step = make_step(args.model, kwargs, args.size, args.batch, **s)
        step()  # warm-up (and compilation)
        step()
        steps[label] = step
    times = {k: [] for k in steps}
    for _ in range(args.rounds):
        for label, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[label].append((time.perf_counter() - t0) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med[next(iter(med))]
    print(f"{args.model} {kwargs or ''} at {args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} thread(s), median of {args.rounds} rounds of {args.steps} steps\n")
    print("| setting | images/s | ratio to fp32 channels-first |")
    print("|---|---|---|")
    for label, t in med.items():
        print(f"| {label} | {args.batch / t:.1f} | {ref / t:.2f} |")


if __name__ == "__main__":
    main()
