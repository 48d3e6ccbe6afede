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

Scenarios (``--scenario``):

- ``clients``: the above.
- ``slow``: the same while ``--slow`` clients trickle their bodies (``--slow-rate`` bytes a
  second) and ``--idle`` clients send headers and nothing, each from its own loopback
  address (127.0.0.2, 127.0.0.3...; ``--attack-addresses 1``: all from one), each opening
  a new upload as soon as the server drops the last; a table of what they got follows.
- ``memory``: the clients post a near-limit 1-bit PNG (``--png-side``, 6300: 39.7 MP in
  about 5 kB) instead of the photo: what a stream of cheap, huge images costs in memory.
- ``jobs``: no server: each endpoint's job on synthetic photos (4 and 40 MP JPEG, a 40 MP
  1-bit PNG), one fresh process each: peak memory against the estimate the server's
  memory budget charges (``segme.serve.app.WORK_BYTES``, ``FULL_BYTES``).

    python benchmarks/load.py --levels 1 8 32 --duration 10 --image photo.jpg
    python benchmarks/load.py --scenario slow --levels 1 --slow 50 --idle 18 --duration 20
    python benchmarks/load.py --scenario memory --endpoint mask --levels 2 8 --duration 20
    python benchmarks/load.py --scenario jobs

Bounded: each level stops sending after ``--duration`` seconds and waits at most the
server's timeout + 10 s for the answers still due. Needs httpx (``segme[dev]``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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


def one_bit_png(side: int) -> bytes:
    """A 1-bit PNG, ``side`` pixels square, a person-sized white bar on black: 40 MP in 5 kB."""
    img = Image.new("1", (side, side))
    img.paste(1, (side // 3, side // 6, 2 * side // 3, side))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def photo_size(body: bytes) -> tuple[int, int]:
    """(width, height) from the header (PIL's Image.open warns of a bomb above 89 MP)."""
    from segme.io.images import image_size

    height, width = image_size(body)
    return width, height


def start_server(args: argparse.Namespace, log: io.TextIOBase) -> tuple[subprocess.Popen, str]:
    segme = shutil.which("segme")
    if segme is None:
        sys.exit("the segme console script is not installed (pip install -e '.[dev]')")
    cmd = [segme, "serve", "--port", "0", "--workers", str(args.workers), "--queue",
           str(args.queue), "--timeout", str(args.timeout), *args.serve_args]
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
    # the access log follows, a line a request: unread, a full pipe would stop the server
    threading.Thread(target=proc.stdout.read, daemon=True).start()
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
    attack: Counter = field(default_factory=Counter)  # slow and idle clients: what they got

    @property
    def answers(self) -> int:
        return self.ok + self.busy + self.client_errors + self.server_errors


async def slow_upload(url: str, rate: float, source: str, stop_at: float,
                      tally: Counter) -> None:
    """Uploads that send headers (Content-Length 100 kB) and then ``rate`` bytes a second
    (0: nothing) until the server answers; a new one as soon as it does, until ``stop_at``.
    ``tally``: uploads opened, then each one's status, or why it has none."""
    parts = urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: "
            "image/jpeg\r\nContent-Length: 100000\r\n\r\n").encode()
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port,
                                                           local_addr=(source, 0))
        except OSError:
            tally["no connection"] += 1
            await asyncio.sleep(0.5)
            continue
        tally["opened"] += 1
        status = "still sending"
        try:
            writer.write(head)
            answer = asyncio.ensure_future(reader.readline())
            while time.monotonic() < stop_at:
                done, _ = await asyncio.wait([answer], timeout=1 / rate if rate else 0.5)
                if done:
                    words = answer.result().split()
                    status = words[1].decode() if len(words) > 1 else "closed"
                    break
                if rate:
                    writer.write(b"x")
            answer.cancel()
        except OSError:
            status = "reset"
        finally:
            writer.close()
        tally[status] += 1
        if status in ("429", "503"):
            await asyncio.sleep(1)  # their Retry-After: a flood of connections is another test


async def run_level(url: str, body: bytes, n: int, args: argparse.Namespace,
                    pid: int) -> Level:
    level = Level(n)
    exact_peak = reset_peak(pid)
    level.rss_start = memory_mb(pid)["VmRSS"]
    sampled = level.rss_start
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    timeout = httpx.Timeout(args.timeout + 10)
    headers = {"content-type": args.content_type}
    attackers = []
    if args.scenario == "slow":  # in place for a second before the clients start
        attack_until = time.monotonic() + 1 + args.duration
        rates = [args.slow_rate] * args.slow + [0.0] * args.idle
        addresses = args.attack_addresses or len(rates)
        attackers = [asyncio.create_task(slow_upload(url, rate, f"127.0.0.{2 + i % addresses}",
                                                     attack_until, level.attack))
                     for i, rate in enumerate(rates)]
        await asyncio.sleep(1)
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
    await asyncio.gather(*attackers)
    sampler.cancel()
    mem = memory_mb(pid)
    level.rss_end = mem["VmRSS"]
    level.rss_peak = mem["VmHWM"] if exact_peak else max(sampled, level.rss_end)
    return level


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q)) * 1000.0


def probe_job(verb: str, body: bytes, model: Path | None) -> tuple:
    """In a fresh process: one ``verb`` job on ``body``, as a server worker runs it;
    ((H, W), shrink, peak bytes above the warm process, the server's estimate in bytes)."""
    from segme.segmenter import Segmenter
    from segme.serve.app import VERBS, Job

    seg = Segmenter(model, threads=1)

    def job(data: bytes) -> tuple[Job, int]:
        j = Job(verb, data, "the photo", VERBS[verb].formats[0],
                color=(0, 177, 64) if verb == "replace" else None)
        return j, j.prepare(max_pixels=10**9)

    warm, _ = job(one_bit_png(64))
    warm(seg, max_pixels=10**9)  # the session's and the allocator's first allocations
    j, estimate = job(body)
    pid = os.getpid()
    if not reset_peak(pid):
        raise OSError("cannot reset VmHWM (/proc/self/clear_refs): no peak to measure")
    before = memory_mb(pid)["VmRSS"]
    j(seg, max_pixels=10**9)
    return j.size, j.shrink, (memory_mb(pid)["VmHWM"] - before) * 2**20, estimate


def job_memory(args: argparse.Namespace) -> None:
    """The ``jobs`` scenario: a table of each endpoint's peak memory against its estimate."""
    rng = np.random.default_rng(0)
    texture = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))

    def jpeg(width: int, height: int) -> bytes:
        buf = io.BytesIO()
        texture.resize((width, height), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=90)
        return buf.getvalue()

    photos = {"JPEG 2300x1700": jpeg(2300, 1700), "JPEG 7000x5600": jpeg(7000, 5600),
              f"1-bit PNG {args.png_side}x{args.png_side}": one_bit_png(args.png_side)}
    print("| endpoint | photo | shrink | peak MB | bytes/pixel | estimate MB | peak/estimate |")
    print("|---|---|---|---|---|---|---|")
    spawn = multiprocessing.get_context("spawn")
    for name, body in photos.items():
        for verb in ("mask", "cutout", "replace", "blur"):
            with ProcessPoolExecutor(1, mp_context=spawn) as ex:
                (h, w), shrink, peak, estimate = ex.submit(probe_job, verb, body,
                                                           args.model).result()
            print(f"| {verb} | {name} | {shrink} | {peak / 1e6:.0f} | {peak / (h * w):.1f} | "
                  f"{estimate / 1e6:.0f} | {peak / estimate:.2f} |", flush=True)


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
    ap.add_argument("--scenario", default="clients", choices=["clients", "slow", "memory", "jobs"])
    ap.add_argument("--slow", type=int, default=50, help="slow: clients trickling bodies")
    ap.add_argument("--slow-rate", type=float, default=1.0, help="slow: their bytes a second")
    ap.add_argument("--idle", type=int, default=18, help="slow: clients sending no body")
    ap.add_argument("--attack-addresses", type=int, default=0, help="slow: loopback addresses "
                    "they come from (default: one each)")
    ap.add_argument("--png-side", type=int, default=6300, help="memory, jobs: the 1-bit PNG")
    ap.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[],
                    help="the rest goes to segme serve (e.g. --memory-mb 500)")
    args = ap.parse_args()
    if args.duration <= 0 or min(args.levels) < 1:
        ap.error("--duration must be positive and every level at least 1 client")
    if args.scenario == "jobs":
        job_memory(args)
        return

    args.content_type = "image/jpeg"
    if args.scenario == "memory":
        body, args.content_type = one_bit_png(args.png_side), "image/png"
        photo = f"a 1-bit PNG {args.png_side}x{args.png_side}"
    elif args.image:
        body, photo = args.image.read_bytes(), args.image.name
        width, height = photo_size(body)
        photo += f" {width}x{height}"
    else:
        body, photo = default_photo()
    query = "?bg=green" if args.endpoint == "replace" else ""

    with tempfile.TemporaryFile("w+") as log:
        proc, base = start_server(args, log)
        try:
            with httpx.Client(timeout=30) as c:  # first request: warm the sessions up
                c.post(f"{base}/v1/{args.endpoint}{query}", content=body,
                       headers={"content-type": args.content_type}).raise_for_status()
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

    budget = f", memory {health['memory_limit_mb']} MB" if "memory_limit_mb" in health else ""
    print(f"segme serve: {health['arch']} {health['input_size'][0]}x{health['input_size'][1]}, "
          f"{health['workers']} workers x {health['threads']} threads, queue "
          f"{health['queue_limit']}{budget}; POST /v1/{args.endpoint} with {photo} "
          f"({len(body) / 1e3:.1f} kB), {args.duration:g} s per level\n")
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
    if args.scenario == "slow":
        addresses = args.attack_addresses or args.slow + args.idle
        print(f"\nmeanwhile {args.slow} clients trickling {args.slow_rate:g} B/s and {args.idle} "
              f"idle ones, from {addresses} address(es), a new upload as each ended:\n")
        keys = sorted({k for lv in levels for k in lv.attack})
        print("| clients | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for lv in levels:
            print(f"| {lv.clients} | " + " | ".join(str(lv.attack[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
