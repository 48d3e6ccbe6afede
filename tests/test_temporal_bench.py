"""The temporal benchmark: synthetic camera motion, temporal metrics on hand-made sequences,
and ``segme eval-video`` through the real console script."""

import json
from fractions import Fraction

import numpy as np
import pytest

from segme.data import camera_path, motion_clip, synthetic_pair
from segme.evaluate.temporal import TemporalAccumulator
from segme.evaluate.video import run_clip
from tests.console import assert_clean_error, needs_cli, run

H, W = 48, 64  # diagonal 80 px: band width d = round(0.02 * 80) = 2


def photo(seed=0, h=H, w=W):
    return synthetic_pair(np.random.default_rng(seed), h, w)


def content_shift(path, t, src, out):
    """How far image content moves from frame t-1 to t: max over corners and centre, as a
    fraction of the output diagonal."""
    ow, oh = out
    pts = np.array([[0, 0], [ow - 1, 0], [0, oh - 1], [ow - 1, oh - 1], [ow / 2, oh / 2]])
    a = np.vstack([path.matrix(t - 1, src, out), [0, 0, 1]])
    b = np.vstack([path.matrix(t, src, out), [0, 0, 1]])
    m = b @ np.linalg.inv(a)
    moved = pts @ m[:2, :2].T + m[:2, 2]
    return float(np.abs(moved - pts).max() / np.hypot(ow, oh))


# --- synthetic motion -------------------------------------------------------------------

@pytest.mark.parametrize("size", [None, (40, 30)])
def test_mask_gets_exactly_the_image_warp(size):
    image, _ = photo()
    green = image[:, :, 1].astype(np.float32) / 255  # a "mask" equal to one image channel
    frames, masks = motion_clip(image, green, frames=10, seed=3, shake_prob=1.0, size=size)
    out = size or (W, H)
    assert len(frames) == len(masks) == 10
    for f, m in zip(frames, masks):
        assert f.dtype == np.uint8 and f.shape == (out[1], out[0], 3)
        assert m.dtype == np.float32 and m.shape == (out[1], out[0])
        # bilinear uint8 vs float: at most one grey level apart (rounding), nowhere more
        assert np.abs(m * 255 - f[:, :, 1].astype(np.float32)).max() <= 1.0


def test_person_mask_stays_a_mask_and_moves():
    image, mask = photo(1)
    frames, masks = motion_clip(image, mask, frames=12, seed=0, static=0)
    assert all(0.0 <= m.min() and m.max() <= 1.0 for m in masks)
    assert all(0.05 < m.mean() < 0.95 for m in masks)  # the person stays in view
    assert not np.array_equal(masks[0], masks[-1])


def test_same_seed_same_clip_other_seed_other_clip():
    image, mask = photo()
    a = motion_clip(image, mask, frames=8, seed=5)
    b = motion_clip(image, mask, frames=8, seed=5)
    c = motion_clip(image, mask, frames=8, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0]))


def test_path_is_smooth_except_in_a_shake_and_still_in_the_static_segment():
    src = out = (W, H)
    shaken = 0
    for seed in range(12):
        path = camera_path(12, seed, static=4, shake_prob=1.0)
        assert path.static.sum() == 4 and not (path.static & path.shake).any()
        for t in range(1, len(path)):
            step = content_shift(path, t, src, out)
            if path.static[t] and path.static[t - 1]:
                assert np.array_equal(path.matrix(t, src, out), path.matrix(t - 1, src, out))
            elif not (path.shake[t] or path.shake[t - 1]):
                assert step < 0.025, (seed, t, step)  # smooth: < 2.5% of the diagonal
        if path.shake.any():
            shaken += 1
            t = int(np.argmax(path.shake))  # first shaken frame
            assert content_shift(path, t, src, out) > 0.035  # a jump, bigger than any pan
    assert shaken >= 10  # shake_prob=1: a burst whenever the clip has room for one


def test_static_frames_are_identical_and_the_view_stays_inside():
    image, mask = photo()
    path = camera_path(10, seed=2, static=4, shake_prob=0.0)
    frames, masks = motion_clip(image, mask, frames=10, seed=2, static=4, shake_prob=0.0)
    still = np.flatnonzero(path.static)
    for t in still[1:]:
        assert np.array_equal(frames[t], frames[still[0]])
        assert np.array_equal(masks[t], masks[still[0]])
    ys, xs = np.mgrid[0:H, 0:W]
    grid = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    for t in range(10):
        inv = np.linalg.inv(np.vstack([path.matrix(t, (W, H), (W, H)), [0, 0, 1]]))
        sx, sy, _ = inv @ grid
        outside = (sx < -0.5) | (sx > W - 0.5) | (sy < -0.5) | (sy > H - 0.5)
        assert outside.mean() < 0.05  # only the corners of a rolled view reach past the border


def test_motion_refuses_bad_input():
    image, mask = photo()
    with pytest.raises(ValueError, match="mask has shape"):
        motion_clip(image, mask[:10], frames=4)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        motion_clip(image, mask * 2, frames=4)
    with pytest.raises(ValueError, match="static"):
        motion_clip(image, mask, frames=4, static=5)


# --- temporal metrics on hand-made sequences --------------------------------------------

def left(cols, value=1.0):
    """Alpha [H, W] with ``value`` on the columns left of ``cols``."""
    a = np.zeros((H, W), np.float32)
    a[:, :cols] = value
    return a


STILL = np.full((H, W, 3), 120, np.uint8)


def test_a_constant_correct_sequence_scores_perfectly():
    acc = TemporalAccumulator()
    for _ in range(5):
        acc.add(left(30), STILL, left(30))
    assert acc.results() == {"fg_iou": 100.0, "dtssd": 0.0, "instability": 0.0, "frames": 5}


def test_alternating_masks_on_a_still_image():
    # Edges of left(30) are columns 29-30, of left(31) columns 30-31; the band (d = 2) is
    # columns 27..33: 7 x 48 pixels, of which column 30 (48 pixels) flips every frame.
    acc = TemporalAccumulator()
    per_frame = [acc.add(left(30 + t % 2), STILL) for t in range(6)]
    assert per_frame[0] == {}
    assert all(v["instability"] == pytest.approx(100 / 7) for v in per_frame[1:])
    assert acc.results() == {"instability": pytest.approx(100 / 7), "frames": 6}
    # sensor noise of +-1 grey level is not motion: same score
    rng = np.random.default_rng(0)
    noisy = TemporalAccumulator()
    for t in range(6):
        frame = (STILL.astype(int) + rng.integers(-1, 2, STILL.shape)).astype(np.uint8)
        noisy.add(left(30 + t % 2), frame)
    assert noisy.results()["instability"] == pytest.approx(100 / 7)


def test_instability_counts_soft_changes_inside_the_band_only():
    # 0.6 <-> 0.8 on the whole left part; only columns 27..29 of the band 27..32 change.
    acc = TemporalAccumulator()
    for t in range(4):
        acc.add(left(30, 0.6 + 0.2 * (t % 2)), STILL)
    assert acc.results()["instability"] == pytest.approx(100 * 3 * 0.2 / 6, rel=1e-5)


def test_flicker_where_the_image_moves_is_not_instability():
    acc = TemporalAccumulator()
    for t in range(4):
        acc.add(left(30 + t % 2), np.full((H, W, 3), 60 * t, np.uint8))
    assert acc.results()["instability"] is None  # no still band pixel: nothing measured


def test_moving_truth_followed_or_frozen():
    followed, frozen = TemporalAccumulator(), TemporalAccumulator()
    for t in range(5):
        truth = left(20 + t)  # the edge moves 1 px per frame, and the image with it
        frame = np.repeat((40 + 160 * truth).astype(np.uint8)[:, :, None], 3, axis=2)
        followed.add(truth, frame, truth)
        frozen.add(left(20), frame, truth)
    # the alpha changes only where the image does: no instability either
    assert followed.results() == {"fg_iou": 100.0, "dtssd": 0.0, "instability": 0.0,
                                  "frames": 5}
    res = frozen.results()
    # one column (48 of 3072 pixels) changes in truth but not in the prediction
    assert res["dtssd"] == pytest.approx(100 * np.sqrt(48 / 3072))  # 12.5
    # TP 960 per frame; FN 48 * (0 + 1 + 2 + 3 + 4)
    assert res["fg_iou"] == pytest.approx(100 * 4800 / 5280)
    assert res["instability"] == 0.0


def test_clips_are_separate():
    acc = TemporalAccumulator()
    for mask in (left(20), left(40)):  # two clips, each constant
        for _ in range(3):
            acc.add(mask, STILL, mask)
        acc.end_clip()
    assert acc.results() == {"fg_iou": 100.0, "dtssd": 0.0, "instability": 0.0, "frames": 6}


def test_metrics_refuse_bad_input():
    acc = TemporalAccumulator()
    with pytest.raises(ValueError, match="no frames"):
        acc.results()
    acc.add(left(30), STILL, left(30))
    with pytest.raises(ValueError, match="every frame of a clip or for none"):
        acc.add(left(30), STILL)
    acc.end_clip()
    acc.add(left(30), STILL)
    with pytest.raises(ValueError, match="end_clip"):
        acc.add(np.zeros((10, 10), np.float32), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="frame has size"):
        acc.add(left(30), STILL[:10])


class DelayedModel:
    """Stands in for a Segmenter whose method holds one frame back (like ``ofd``): it reads
    frame t+1 before yielding frame t's alpha, which is the frame's green channel."""

    def stream(self, frames, temporal="none"):
        held = None
        for f in frames:
            if held is not None:
                yield held
            held = f[:, :, 1].astype(np.float32) / 255
        if held is not None:
            yield held


def test_each_alpha_is_scored_against_its_own_frame():
    image, mask = photo()
    frames, _ = motion_clip(image, mask, frames=8, seed=1)
    truths = [f[:, :, 1].astype(np.float32) / 255 for f in frames]
    acc = TemporalAccumulator()
    seconds = run_clip(DelayedModel(), "ofd", frames, acc, truths)
    assert seconds >= 0.0
    res = acc.results()
    assert res["frames"] == 8 and res["dtssd"] == 0.0 and res["fg_iou"] == 100.0


# --- segme eval-video --------------------------------------------------------------------



@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny synthetic dataset and a tiny 4-channel (prior) model trained 1 epoch at 32 px."""
    root = tmp_path_factory.mktemp("tbench")
    run("synth", root / "data", "--train", 4, "--val", 3)
    run("train", "--model", "test_tiny_prior", "--data", root / "data/train", "--size", 32,
        "--epochs", 1, "--batch", 4, "--workers", 0, "--out", root / "run", "--no-progress")
    run("export", "--model", root / "run/last.pt", "-o", root / "prior.onnx")
    return root


def _clip_file(tmp_path):
    """A 7-frame motion clip as an MP4 file (a real clip's stand-in)."""
    pytest.importorskip("av", reason="PyAV (the video extra) is not installed")
    from segme.io.video import write_video

    image, mask = photo(2)
    frames, _ = motion_clip(image, mask, frames=7, seed=0)
    video = tmp_path / "clip.mp4"
    assert write_video(frames, video, Fraction(15)) == 7
    return video


@needs_cli
def test_eval_video_motion_and_real_clips(bench, tmp_path):
    video = _clip_file(tmp_path)
    res = run("eval-video", "--model", bench / "prior.onnx", "--data", bench / "data/val",
              "--clips", 2, "--frames", 8, "--videos", video, "--max-frames", 6,
              "--json", tmp_path / "r.json", "--no-progress")
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data) == ["none", "ema", "flow", "ofd", "prior"]  # all a prior model supports
    for method, sets in data.items():
        motion, clips = sets["motion"], sets["clips"]
        assert motion["frames"] == 16 and clips["frames"] == 6
        assert 0.0 <= motion["fg_iou"] <= 100.0 and motion["dtssd"] >= 0.0
        assert "fg_iou" not in clips and "dtssd" not in clips
        assert motion["fps"] > 0 and clips["fps"] > 0
        rows = [line.split() for line in res.stdout.splitlines() if line.startswith(method + " ")]
        assert [r[1] for r in rows] == ["motion", "clips"]
        assert rows[1][3:5] == ["-", "-"]  # no truth for real clips


def test_baseline_is_right_on_a_still_camera_and_lost_when_it_moves():
    """The seed's background subtraction, given the empty scene at the first frame's view:
    a bright person in a dark patterned room is found while the camera holds still; a
    camera that pans makes the room's pattern itself look like a person."""
    from segme.evaluate.video import empty_scene

    image, mask = photo(0, 96, 128)
    y, x = np.mgrid[:96, :128]
    room = (((y // 6 + x // 6) % 2) * 90).astype(np.uint8)[:, :, None].repeat(3, 2)
    image = np.where((mask >= 0.5)[:, :, None], image, room)
    empty = motion_clip(empty_scene(image, mask), mask, frames=1, seed=0)[0][0]
    scores = {}
    for static in (12, 0):
        clip, truths = motion_clip(image, mask, frames=12, seed=0, static=static)
        acc = TemporalAccumulator()
        run_clip(None, "bgsub", clip, acc, truths, background=empty)
        scores[static] = acc.results()
    assert scores[12]["fg_iou"] > 85 and scores[12]["instability"] == 0
    assert scores[0]["fg_iou"] < 60 and scores[0]["instability"] > 20


@needs_cli
def test_eval_video_measures_the_baseline_beside_the_model(bench, tmp_path):
    video = _clip_file(tmp_path)
    run("eval-video", "--data", bench / "data/val", "--clips", 2, "--frames", 6, "--videos",
        video, "--temporal", "ema,BGSUB", "--json", tmp_path / "r.json", "--no-progress")
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data) == ["ema", "bgsub"]
    motion, clips = data["bgsub"]["motion"], data["bgsub"]["clips"]
    assert motion["frames"] == 12 and clips["frames"] == 7
    assert 0.0 <= motion["fg_iou"] <= 100.0 and motion["dtssd"] >= 0.0 and motion["fps"] > 0


@needs_cli
def test_eval_video_markdown_with_chosen_methods(bench):
    out = run("eval-video", "--data", bench / "data/val", "--clips", 1, "--frames", 4,
              "--temporal", "none, ofd+ema", "--markdown", "--no-progress").stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("| method | set |") and len(lines) == 4
    assert lines[2].startswith("| none | motion | 4 |")
    assert lines[3].startswith("| ofd+ema | motion | 4 |")


@needs_cli
@pytest.mark.parametrize("args,words", [
    (["--data", "/no/such/dir"], ["--data folder not found", "/no/such/dir"]),
    (["--videos", "/no/such.mp4"], ["video not found", "/no/such.mp4"]),
    ([], ["nothing to evaluate"]),
    (["--data", ".", "--frames", 1], ["at least 2 frames"]),
    (["--data", ".", "--temporal", "none,blur"], ["unknown temporal method", "'blur'",
                                                  "none, ema, flow, ofd, prior", "bgsub"]),
    (["--data", ".", "--temporal", "prior"], ["prior", "previous-frame"]),  # built-in: RGB only
])
def test_eval_video_mistakes_give_one_line(args, words):
    assert_clean_error(run("eval-video", *args, ok=False), *words)
