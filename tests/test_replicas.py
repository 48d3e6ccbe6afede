"""`segme serve` scales out: two real replicas behind a round-robin client that retries, one
replica killed (SIGKILL) mid-load, and no request lost or answered wrong."""

import io
import os
import re
import select
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.console import SEGME, stop

pytest.importorskip("fastapi", reason="the serve extra is not installed")

MODEL = "mnv3-unet-portraits-192"  # built in, ONNX: no torch
CLIENTS, REQUESTS = 4, 24  # each client sends REQUESTS photos, one at a time


def start(*args) -> tuple[subprocess.Popen, str]:
    """``segme serve --port 0 ARGS``: the process and its address once /healthz answers."""
    proc = subprocess.Popen([SEGME, "serve", "--port", "0", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found, deadline = None, time.monotonic() + 60
    while not found:
        assert time.monotonic() < deadline and select.select([proc.stdout], [], [], 60)[0], \
            "segme serve printed no address within 60 s"
        line = proc.stdout.readline()
        assert line, proc.poll()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
    # its log, a line a request, is read and dropped: a full pipe would stop the server
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    while True:
        try:
            urllib.request.urlopen(f"{found.group(0)}/healthz", timeout=10).close()
            return proc, found.group(0)
        except urllib.error.URLError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


class RoundRobin:
    """What a load balancer does for its clients: each request to the next replica; a
    connection error sends it to the next one (the replica is left out until its /healthz
    answers again), a 503 waits the answer's Retry-After and tries again. Bounded: at most
    ``tries`` attempts a request."""

    def __init__(self, urls: list[str], tries: int = 20) -> None:
        self.urls, self.tries = urls, tries
        self.down: set[str] = set()
        self.next = 0
        self.lock = threading.Lock()
        self.errors = {"connection": 0, "503": 0}

    def pick(self) -> str:
        with self.lock:
            for _ in self.urls:
                url = self.urls[self.next % len(self.urls)]
                self.next += 1
                if url not in self.down or self.healthy(url):
                    self.down.discard(url)
                    return url
            raise AssertionError("no replica is up")

    @staticmethod
    def healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as res:
                return res.status == 200
        except OSError:
            return False

    def post(self, path: str, data: bytes) -> bytes:
        for _ in range(self.tries):
            url = self.pick()
            req = urllib.request.Request(f"{url}{path}", data=data, method="POST",
                                         headers={"Content-Type": "image/png"})
            try:
                with urllib.request.urlopen(req, timeout=30) as res:
                    return res.read()
            except urllib.error.HTTPError as e:
                if e.code != 503:
                    raise
                with self.lock:
                    self.errors["503"] += 1
                time.sleep(min(float(e.headers.get("Retry-After", 1)), 2.0))
            except OSError:  # refused, reset, closed mid-answer: the replica is gone
                with self.lock:
                    self.errors["connection"] += 1
                    self.down.add(url)
        raise AssertionError(f"no answer after {self.tries} tries")


def photo(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 110, (64, 48, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:64, :48]
    img[((yy - 24) / 14) ** 2 + ((xx - 16 - seed) / 10) ** 2 < 1] = (230, 190, 160)
    return img


@pytest.mark.skipif(SEGME is None, reason="the segme console script is not installed")
def test_clients_that_retry_lose_nothing_when_a_replica_dies():
    from segme import effects
    from segme.segmenter import Segmenter

    images = [photo(i) for i in range(8)]
    bodies = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        bodies.append(buf.getvalue())
    # what every replica must answer: the library's mask of each photo
    seg = Segmenter(MODEL, threads=1)
    expected = [effects.render("mask", img, seg(img)) for img in images]

    # small queues, so that the survivor also sends 503s that the clients must honour
    args = ("--model", MODEL, "--workers", 1, "--threads", 1, "--queue", 1)
    replicas = [start(*args), start(*args)]
    lb = RoundRobin([url for _, url in replicas])
    answers: list[tuple[int, bytes]] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def client(c: int) -> None:
        try:
            for r in range(REQUESTS):
                k = (c * REQUESTS + r) % len(images)
                answers.append((k, lb.post("/v1/mask", bodies[k])))
                if len(answers) >= CLIENTS * REQUESTS // 3:
                    done.set()
        except BaseException as e:  # reported by the main thread
            failures.append(e)
            done.set()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        assert done.wait(120), "no third of the requests answered within 120 s"
        victim = replicas[0][0]
        os.kill(victim.pid, signal.SIGKILL)  # mid-load: requests in flight on it
        for t in threads:
            t.join(180)
        assert not any(t.is_alive() for t in threads), "clients still running after 180 s"
    finally:
        for proc, _ in replicas:
            stop(proc)
    assert failures == []
    assert victim.returncode == -signal.SIGKILL
    assert len(answers) == CLIENTS * REQUESTS  # none lost
    wrong = [k for k, data in answers
             if not np.array_equal(np.asarray(Image.open(io.BytesIO(data))), expected[k])]
    assert wrong == []
    assert lb.errors["connection"] >= 1, "the killed replica was never tried again"
