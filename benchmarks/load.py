"""Load test of ``segme serve`` on loopback: N concurrent clients, a fixed time each.

Starts the real server (``segme serve --port 0``) as a subprocess, then for each client
count N runs N clients in a loop for ``--duration`` seconds, each posting the same photo to
one endpoint and waiting for the answer before the next request (a client that gets 503
waits its Retry-After first, as a polite client would). Prints a Markdown table:

- requests: answers received; 2xx/s: successful answers per second (the throughput);
- p50 / p99 ms: latency of the 2xx answers (a 503 is quick and would hide the queueing);
- 2xx, 503, 4xx, 5xx (other than 503), conn err (no connection), lost (sent, no answer);
- the server's resident memory (VmRSS of /proc/<pid>/status) at the level's start and end,
  and its peak during the level (VmHWM, reset before each level where the kernel allows,
  else the largest of samples taken every 50 ms).

    python benchmarks/load.py --levels 1 8 32 --duration 10 --image photo.jpg

Bounded: each level stops sending after ``--duration`` seconds and waits at most the
server's timeout + 10 s for the answers still due. Needs httpx (``segme[dev]``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def default_photo() -> tuple[bytes, str]:
    """scikit-image's astronaut (512x512) when installed, else a synthetic portrait."""
    try:
        from skimage import data

        image, name = data.astronaut(), "astronaut 512x512"
    except ImportError:
        from segme.data.synthetic import synthetic_pair

        image, _ = synthetic_pair(np.random.default_rng(0), 512, 512)
        name = "synthetic 512x512"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue(), name


def start_server(args: argparse.Namespace, log: io.TextIOBase) -> tuple[subprocess.Popen, str]:
    segme = shutil.which("segme")
    if segme is None:
        sys.exit("the segme console script is not installed (pip install -e '.[dev]')")
    cmd = [segme, "serve", "--port", "0", "--workers", str(args.workers), "--queue",
           str(args.queue), "--timeout", str(args.timeout)]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    found = re.search(r"http://\S+", line)
    if not found:
        proc.kill()
        log.seek(0)
        sys.exit(f"segme serve did not start:\n{line}{log.read()[-3000:]}")
    return proc, found.group(0)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0; needs permission)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Level:
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx only
    ok: int = 0
    busy: int = 0  # 503
    client_errors: int = 0  # 4xx
    server_errors: int = 0  # 5xx other than 503
    conn_errors: int = 0
    lost: int = 0
    rss_start: float = 0.0
    rss_peak: float = 0.0
    rss_end: float = 0.0

    @property
    def answers(self) -> int:
        return self.ok + self.busy + self.client_errors + self.server_errors


async def run_level(url: str, body: bytes, n: int, args: argparse.Namespace,
                    pid: int) -> Level:
    level = Level(n)
    exact_peak = reset_peak(pid)
    level.rss_start = memory_mb(pid)["VmRSS"]
    sampled = level.rss_start
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    timeout = httpx.Timeout(args.timeout + 10)
    headers = {"content-type": "image/jpeg"}
    t0 = time.monotonic()
    stop_at = t0 + args.duration

    async def one_client(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                res = await client.post(url, content=body, headers=headers)
                await res.aread()
            except (httpx.ConnectError, httpx.ConnectTimeout):
                level.conn_errors += 1
                await asyncio.sleep(0.1)
                continue
            except httpx.TransportError:  # sent, then reset, closed or timed out
                level.lost += 1
                continue
            status = res.status_code
            if 200 <= status < 300:
                level.ok += 1
                level.latencies.append(time.perf_counter() - start)
            elif status == 503:
                level.busy += 1
                wait = float(res.headers.get("retry-after", "1") or 1)
                await asyncio.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
            elif status < 500:
                level.client_errors += 1
            else:
                level.server_errors += 1

    async def sample_memory() -> None:
        nonlocal sampled
        while True:
            sampled = max(sampled, memory_mb(pid)["VmRSS"])
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample_memory())
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        await asyncio.gather(*(one_client(client) for _ in range(n)))
    level.seconds = time.monotonic() - t0
    sampler.cancel()
    mem = memory_mb(pid)
    level.rss_end = mem["VmRSS"]
    level.rss_peak = mem["VmHWM"] if exact_peak else max(sampled, level.rss_end)
    return level


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q)) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--image", type=Path, help="photo to post (default: scikit-image's astronaut)")
    ap.add_argument("--endpoint", default="cutout", choices=["cutout", "mask", "replace", "blur"])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="client counts")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    ap.add_argument("--model", type=Path, help="model file (default: the built-in model)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, help="per worker (default: cores / workers)")
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=30.0, help="the server's --timeout")
    args = ap.parse_args()
    if args.duration <= 0 or min(args.levels) < 1:
        ap.error("--duration must be positive and every level at least 1 client")

    if args.image:
        body, photo = args.image.read_bytes(), args.image.name
        width, height = Image.open(io.BytesIO(body)).size
        photo += f" {width}x{height}"
    else:
        body, photo = default_photo()
    query = "?bg=green" if args.endpoint == "replace" else ""

    with tempfile.TemporaryFile("w+") as log:
        proc, base = start_server(args, log)
        try:
            with httpx.Client(timeout=30) as c:  # first request: warm the sessions up
                c.post(f"{base}/v1/{args.endpoint}{query}", content=body,
                       headers={"content-type": "image/jpeg"}).raise_for_status()
                health = c.get(f"{base}/healthz").json()
            levels = [asyncio.run(run_level(f"{base}/v1/{args.endpoint}{query}", body, n, args,
                                            proc.pid))
                      for n in args.levels]
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"segme serve: {health['arch']} {health['input_size'][0]}x{health['input_size'][1]}, "
          f"{health['workers']} workers x {health['threads']} threads, queue "
          f"{health['queue_limit']}; POST /v1/{args.endpoint} with {photo} "
          f"({len(body) / 1e3:.0f} kB), {args.duration:g} s per level\n")
    print("| clients | requests | 2xx/s | p50 ms | p99 ms | 2xx | 503 | 4xx | 5xx | conn err "
          "| lost | RSS start MB | RSS peak MB | RSS end MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lv in levels:
        print(f"| {lv.clients} | {lv.answers} | {lv.ok / lv.seconds:.1f} | "
              f"{percentile(lv.latencies, 50):.0f} | {percentile(lv.latencies, 99):.0f} | "
              f"{lv.ok} | {lv.busy} | {lv.client_errors} | {lv.server_errors} | "
              f"{lv.conn_errors} | {lv.lost} | {lv.rss_start:.0f} | {lv.rss_peak:.0f} | "
              f"{lv.rss_end:.0f} |")
    if any(lv.latencies for lv in levels):
        mean = statistics.fmean(x for lv in levels for x in lv.latencies) * 1000
        print(f"\nmean 2xx latency over all levels: {mean:.0f} ms")


if __name__ == "__main__":
    main()
