"""Photos a second: `segme mask` in one process against `segme batch mask` on Ray.

Makes a folder of ``--photos`` links to the photos of ``--data`` (repeated as needed), then
times, on this machine and in this one run (so that the ratios hold whatever else the
machine is doing):

- ``segme mask SRC -o OUT --jobs J``, the single-process CLI, for each ``--jobs``;
- ``segme.batch.run("mask", ...)`` on a local Ray cluster with 1 and 2 model actors
  (the pipeline's wall time; Ray's start-up is reported apart), the model actors' memory
  (VmRSS, sampled), and the outputs checked equal to the CLI's;
- a simulated multi-node run: two Ray nodes started on this machine with ``ray start
  --head`` and ``ray start --address``, one CPU each, the same photos on both, the photos
  each node's actor ran; the nodes are stopped afterwards (``ray stop``). Refused when a
  Ray cluster already runs on the machine, which ``ray stop`` would end too.

Prints a Markdown table. Outputs go to ``--work`` (a temporary folder unless given).

    python benchmarks/batch.py --photos 2000 --data ../shared/data/portraits/val/images
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEGME = shutil.which("segme", path=os.path.dirname(sys.executable)) or shutil.which("segme")
RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
PORT = 6390  # the simulated head node's GCS port (not Ray's default, 6379)


def link_photos(data: Path, n: int, folder: Path) -> list[Path]:
    """``n`` links in ``folder`` to the photos of ``data``, repeated in turn."""
    from segme.io.sources import expand_images

    photos = expand_images(data)
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(n):
        src = photos[i % len(photos)].resolve()
        link = folder / f"r{i // len(photos)}_{src.name}"
        if not link.exists():
            link.symlink_to(src)
        links.append(link)
    return links


def rss_mb(pid: int) -> float:
    """A process's own memory (RssAnon, MB): VmRSS would also count the pages of Ray's
    shared object store that the actor has touched, which belong to the node, not to it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def single(src: Path, out: Path, jobs: int, model: str) -> float:
    """Wall seconds of ``segme mask SRC -o OUT --jobs J`` (the process's start included)."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([SEGME, "mask", str(src), "-o", str(out), "--jobs", str(jobs), "--model",
                    model], check=True, capture_output=True)
    return time.perf_counter() - t0


def on_ray(src: Path, out: Path, actors: int, model: str, address: str | None = None):
    """``segme.batch.run`` into a fresh ``out``; (summary, peak actor RSS in MB)."""
    from segme import batch

    shutil.rmtree(out, ignore_errors=True)
    peak = {"mb": 0.0}

    def sample(summary) -> None:
        for worker in summary.workers:
            peak["mb"] = max(peak["mb"], rss_mb(int(worker.split(":")[1])))

    summary = batch.run("mask", [src], out, model=model, actors=actors,
                        cpus_per_actor=1.0 if actors == 1 else 0.5, address=address,
                        progress=sample)
    assert summary.failed == 0 and summary.written == summary.photos, summary.line()
    return summary, peak["mb"]


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.png"))
    if names != sorted(p.name for p in b.glob("*.png")):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def ray_running() -> bool:
    proc = subprocess.run(["pgrep", "-x", "raylet"], capture_output=True)
    return proc.returncode == 0


def multi_node(src: Path, out: Path, model: str) -> tuple[object, float]:
    """Two Ray nodes on this machine (1 CPU each), one model actor on each."""
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--port", str(PORT), "--include-dashboard",
                    "false", *common], check=True, capture_output=True)
    try:
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{PORT}", *common],
                       check=True, capture_output=True)
        return on_ray(src, out, 2, model, address=f"127.0.0.1:{PORT}")
    finally:
        subprocess.run([RAY, "stop"], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/portraits/val/images"))
    ap.add_argument("--model", default="mnv3-unet-portraits-224")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--work", type=Path, help="folder for the links and outputs")
    ap.add_argument("--no-multi-node", action="store_true")
    args = ap.parse_args()
    if SEGME is None:
        sys.exit("the segme console script is not installed: pip install -e '.[ray]'")
    import ray

    work = args.work or Path(tempfile.mkdtemp(prefix="segme-batch-"))
    src = work / "photos"
    links = link_photos(args.data, args.photos, src)
    n = len(links)
    print(f"{n} photos ({len(set(p.resolve() for p in links))} distinct) from {args.data}; "
          f"model {args.model}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f} at the start", file=sys.stderr)

    rows = []
    single_s = {}
    for jobs in args.jobs:
        s = single(src, work / f"single-{jobs}", jobs, args.model)
        single_s[jobs] = s
        rows.append((f"`segme mask --jobs {jobs}` (one process)", "-", s, n / s, "-", "-"))

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    print(f"a local Ray cluster started in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ray_s = {}
    try:
        for actors in (1, 2):
            out = work / f"ray-{actors}"
            summary, mb = on_ray(src, out, actors, args.model)
            ray_s[actors] = summary.seconds
            same = same_outputs(out, work / f"single-{args.jobs[0]}")
            rows.append((f"`segme batch mask`, local Ray, {actors} actor(s)",
                         f"{summary.startup:.1f}", summary.seconds, summary.rate,
                         f"{mb:.0f}", "yes" if same else "NO"))
    finally:
        ray.shutdown()

    if not args.no_multi_node:
        if ray_running():
            print("a Ray cluster runs on this machine already: no simulated multi-node run "
                  "(ray stop would end it)", file=sys.stderr)
        else:
            summary, mb = multi_node(src, work / "ray-2-nodes", args.model)
            nodes = {}
            for worker, count in summary.workers.items():
                node = worker.split(":")[0]
                nodes[node] = nodes.get(node, 0) + count
            rows.append((f"`segme batch mask --ray 127.0.0.1:{PORT}`, 2 nodes x 1 CPU, "
                         "2 actors", f"{summary.startup:.1f}", summary.seconds, summary.rate,
                         f"{mb:.0f}", "yes" if same_outputs(work / "ray-2-nodes",
                                                            work / f"single-{args.jobs[0]}")
                         else "NO"))
            print("photos per node: " + ", ".join(f"{k}: {v}" for k, v in nodes.items()),
                  file=sys.stderr)

    print("\n| run | plan s | pipeline s | photos/s | actor's own memory MB (peak) | "
          "outputs = `segme mask`'s |")
    print("|---|---|---|---|---|---|")
    for name, start, s, rate, mb, same in rows:
        print(f"| {name} | {start} | {s:.1f} | {rate:.1f} | {mb} | {same} |")
    best_single = min(single_s.values())
    for actors, s in ray_s.items():
        print(f"\nRay, {actors} actor(s): {(s - best_single) / n * 1e3:+.2f} ms a photo against "
              f"the fastest single process ({n / best_single:.1f} photos/s); "
              f"{s / best_single:.2f}x its time")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; work folder: {work}")


if __name__ == "__main__":
    main()
