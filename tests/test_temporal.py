"""Streaming state (segme.temporal): order, delay, each method's effect, cuts, independence."""

import numpy as np
import pytest

from segme.cards import ModelCard
from segme.io.pipeline import latest, prefetch
from segme.temporal import OFD_TOLERANCE, Stream, parse_method, stream_pairs

CARD = ModelCard(arch="fake", input_size=(32, 32), mean=(0, 0, 0), std=(1, 1, 1))
PRIOR_CARD = ModelCard(arch="fake_prior", input_size=(32, 32), mean=(0, 0, 0), std=(1, 1, 1),
                       stateful_inputs=["prev_alpha"])


class Scripted:
    """A fake model call returning a scripted alpha per call and recording its inputs."""

    def __init__(self, values):
        self.values, self.inputs = list(values), []

    def __call__(self, x):
        self.inputs.append(x.copy())
        v = self.values[len(self.inputs) - 1]
        return np.full((1, 1, 32, 32), v, np.float32) if np.isscalar(v) else v[None, None]


def frames(n, value=100, size=(24, 40)):
    return [np.full((*size, 3), value, np.uint8) for _ in range(n)]


def run(method, values, clip, **kw):
    st = Stream(Scripted(values), kw.pop("card", CARD), method, **kw)
    pairs = list(stream_pairs(st, clip))
    return st, [p[0] for p in pairs], [float(p[1].mean()) for p in pairs]


@pytest.mark.parametrize("method", ["none", "ema", "ofd", "ofd+ema", "ema+ofd"])
def test_one_alpha_per_frame_in_order_at_the_frame_size(method):
    clip = [np.full((24, 40, 3), 10 * i, np.uint8) for i in range(7)]
    st, out_frames, _ = run(method, [0.5] * 7, clip, cut_threshold=None)
    assert [f[0, 0, 0] for f in out_frames] == [f[0, 0, 0] for f in clip]
    st2 = Stream(Scripted([0.5] * 7), CARD, method)
    assert all(a.shape == (24, 40) and a.dtype == np.float32 for _, a in stream_pairs(st2, clip))


def test_ofd_holds_one_frame_and_repairs_a_lone_flip():
    st = Stream(Scripted([0.9, 0.9, 0.1, 0.9, 0.9]), CARD, "ofd")
    clip = frames(5)
    assert len(st.push(clip[0])) == 0  # held until the next frame shows whether it flickers
    ready = st.push(clip[1])
    assert len(ready) == 1 and ready[0][0] is clip[0]
    rest = [a for f in clip[2:] for _, a in st.push(f)] + [a for _, a in st.flush()]
    assert len(rest) == 4 and all(np.allclose(a, 0.9) for a in rest)
    # a real change (two frames in a row) is not a flip: it goes through
    _, _, out = run("ofd", [0.9, 0.9, 0.1, 0.1, 0.1], frames(5))
    assert out == pytest.approx([0.9, 0.9, 0.1, 0.1, 0.1])
    # differences under the tolerance are left alone
    small = 0.9 - OFD_TOLERANCE / 2
    _, _, out = run("ofd", [0.9, 0.9, small, 0.9], frames(4))
    assert out[2] == pytest.approx(small)


def test_ema_smooths_a_still_image_and_follows_motion():
    values = [0.2, 0.8] * 6
    _, _, none = run("none", values, frames(12))
    _, _, ema = run("ema", values, frames(12))
    assert np.std(ema[4:]) < 0.5 * np.std(none[4:])  # still image: the shimmer is damped
    moving = [np.full((24, 40, 3), v, np.uint8) for v in (0, 80, 160, 240) * 3]
    _, _, follow = run("ema", values, moving, cut_threshold=None)
    assert follow == pytest.approx(none, abs=1e-5)  # everything moves: no smoothing at all


def test_a_cut_resets_the_state_and_a_new_size_too():
    clip = frames(4, value=20) + frames(4, value=230)  # two shots
    st, _, out = run("ema", [0.1] * 4 + [0.9] * 4, clip)
    assert st.cuts == 1 and out[4] == pytest.approx(0.9)  # nothing of shot 1 smeared into 2
    st, _, out = run("ema", [0.1] * 4 + [0.9] * 4, clip, cut_threshold=None)
    assert st.cuts == 0 and out[4] < 0.9
    resized = frames(3) + frames(3, size=(30, 30))
    st, out_frames, _ = run("ofd+ema", [0.5] * 6, resized)
    assert st.cuts == 1 and [f.shape for f in out_frames] == [f.shape for f in resized]


def test_prior_feeds_the_previous_alpha_back_and_starts_empty():
    model = Scripted([0.3, 0.6, 0.7, 0.2])
    st = Stream(model, PRIOR_CARD, "prior")
    clip = frames(2, value=20) + frames(2, value=230)  # a cut before the third frame
    list(stream_pairs(st, clip))
    priors = [float(x[0, 3].mean()) for x in model.inputs]
    assert [x.shape for x in model.inputs] == [(1, 4, 32, 32)] * 4
    assert priors == pytest.approx([0.0, 0.3, 0.0, 0.7])


def test_streams_are_independent():
    a_vals, b_vals = [0.2, 0.8, 0.2, 0.8], [0.9, 0.9, 0.1, 0.9]
    alone_a = run("ofd+ema", a_vals, frames(4))[2]
    alone_b = run("ofd+ema", b_vals, frames(4, value=50))[2]
    sa, sb = Stream(Scripted(a_vals), CARD, "ofd+ema"), Stream(Scripted(b_vals), CARD, "ofd+ema")
    got_a, got_b = [], []
    for fa, fb in zip(frames(4), frames(4, value=50)):
        got_a += [float(a.mean()) for _, a in sa.push(fa)]
        got_b += [float(a.mean()) for _, a in sb.push(fb)]
    got_a += [float(a.mean()) for _, a in sa.flush()]
    got_b += [float(a.mean()) for _, a in sb.flush()]
    assert got_a == pytest.approx(alone_a) and got_b == pytest.approx(alone_b)


def test_method_names_are_checked():
    assert parse_method("ofd+ema") == ("ofd", "ema")
    assert parse_method("none") == ("none",) and parse_method("none+ema") == ("ema",)
    with pytest.raises(ValueError, match="unknown temporal method 'blur'.*none, ema, flow, ofd"):
        parse_method("blur")
    with pytest.raises(ValueError, match="previous-frame input"):
        parse_method("prior", CARD)
    assert parse_method("prior+ema", PRIOR_CARD) == ("prior", "ema")


def test_segmenter_stream_on_a_real_model(tmp_path):
    import torch

    from segme import Segmenter
    from segme.export.onnx import export_onnx
    from segme.models import create_model

    torch.manual_seed(0)
    model = create_model("test_tiny")
    # one upsampling for images and streams (by default they differ: test_segmenter.py)
    seg = Segmenter(export_onnx(model, tmp_path / "m.onnx", model.card(32)), threads=1,
                    upsample="bilinear")
    rng = np.random.default_rng(0)
    clip = [rng.integers(0, 255, (40, 56, 3), np.uint8) for _ in range(5)]
    plain = list(seg.stream(clip))
    assert len(plain) == 5 and all(np.array_equal(a, seg(f)) for a, f in zip(plain, clip))
    first, second = list(seg.stream(clip, "ofd+ema")), list(seg.stream(clip, "ofd+ema"))
    assert len(first) == 5 and all(np.array_equal(a, b) for a, b in zip(first, second))
    with pytest.raises(ValueError, match="previous-frame input"):
        list(seg.stream(clip, "prior"))


def test_prefetch_keeps_order_and_raises_the_producers_error():
    assert list(prefetch(range(50), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(broken()))
    it = prefetch(iter(range(10**9)))  # an endless producer stops when the consumer does
    assert next(it) == 0
    it.close()


def test_latest_drops_what_a_slow_consumer_missed():
    import time

    def source():
        for i in range(20):
            time.sleep(0.005)
            yield i

    src = latest(source())
    got = []
    for x in src:
        got.append(x)
        time.sleep(0.03)
    assert got == sorted(got) and got[-1] == 19 and src.dropped == 20 - len(got) > 0


def test_flow_smooths_a_moving_scene_where_ema_lets_go():
    import cv2

    card = ModelCard(arch="fake", input_size=(64, 64), mean=(0, 0, 0), std=(1, 1, 1))
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((64, 128)).astype(np.float32), (0, 0), 2)
    texture = (texture - texture.min()) / np.ptp(texture)
    person = np.zeros((64, 128), np.float32)
    person[16:56, 40:72] = 1
    shift = [2 * t for t in range(10)]  # the camera pans 2 px a frame
    clip = [np.repeat((texture[:, s:s + 64] * 255).astype(np.uint8)[..., None], 3, 2)
            for s in shift]
    truth = [person[:, s:s + 64] for s in shift]
    noisy = [t + rng.normal(0, 0.15, t.shape).astype(np.float32) for t in truth]

    def error(method):
        st = Stream(Scripted(noisy), card, method, cut_threshold=None)
        out = [a for _, a in stream_pairs(st, clip)]
        return np.mean([np.abs(a - t)[8:-8, 8:-8].mean() for a, t in zip(out[4:], truth[4:])])

    assert error("ema") > 0.8 * error("none")  # everything moves: ema keeps the noise
    assert error("flow") < 0.7 * error("none")  # flow lines the frames up and averages
