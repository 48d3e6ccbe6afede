"""Tests for segme.evaluate.metrics on tiny synthetic masks with hand-computed values."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segme.evaluate.metrics import METRIC_KEYS, MetricAccumulator, format_table, source_of

IOU_KEYS = ("fg_iou", "miou", "mean_iou", "boundary_iou", "mean_boundary_iou", "boundary_iou_cheng",
            "pixel_acc")
ERROR_KEYS = ("mad", "mse", "sad", "grad", "conn")


def head_and_shoulders(h: int = 48, w: int = 64) -> np.ndarray:
    """Binary person mask float32 [H, W]: an ellipse head on a shoulder block."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, h // 3), (w // 8, h // 5), 0, 0, 360, 1, -1)
    cv2.ellipse(m, (w // 2, h), (w // 3, h // 3), 0, 0, 360, 1, -1)
    return m.astype(np.float32)


def square(h: int, w: int, top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[top : top + size, left : left + size] = 1.0
    return m


def single(pred: np.ndarray, truth: np.ndarray, name: str = "") -> dict[str, float]:
    acc = MetricAccumulator()
    acc.update(pred, truth, name)
    return acc.result()["all"]


def test_source_of():
    assert source_of("pfcn_00012") == "pfcn"
    assert source_of("val/images/ccp_0007.jpg") == "ccp"
    assert source_of("picsart_a_b.png") == "picsart"
    assert source_of("photo.png") == "photo"
    assert source_of("") == ""


def test_perfect_prediction():
    truth = head_and_shoulders()
    soft = cv2.GaussianBlur(truth, (0, 0), 2.0)  # soft alphas must also score perfectly
    for t in (truth, soft):
        r = single(t.copy(), t)
        for k in IOU_KEYS:
            assert r[k] == pytest.approx(100.0), k
        for k in ERROR_KEYS:
            assert r[k] == pytest.approx(0.0, abs=1e-9), k
        assert r["images"] == 1
        assert set(r) == set(METRIC_KEYS)


def test_all_wrong_prediction():
    truth = head_and_shoulders()
    r = single(1.0 - truth, truth)
    for k in IOU_KEYS:
        assert r[k] == pytest.approx(0.0), k
    assert r["mad"] == pytest.approx(1.0)
    assert r["mse"] == pytest.approx(1.0)
    assert r["sad"] == pytest.approx(truth.size / 1000)


def test_hand_computed_4x4():
    truth = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    pred = np.array(
        [[1.0, 0.4, 1.0, 1.0], [0.7, 1.0, 1.0, 1.0], [0.5, 0.9, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]],
        np.float32,
    )
    # TP = 7 (0.4 is a miss), FN = 1, FP = 2 (0.5 counts as person), TN = 6.
    # |diff| = 0.6, 0.3, 0.5, 0.9, 0.2 -> sum 2.5; squares sum 0.36+0.09+0.25+0.81+0.04 = 1.55.
    r = single(pred, truth)
    assert r["fg_iou"] == pytest.approx(100 * 7 / 10)
    # Background IoU = TN / (TN + FP + FN) = 6 / 9.
    assert r["miou"] == pytest.approx(100 * (7 / 10 + 6 / 9) / 2)
    assert r["mean_iou"] == pytest.approx(70.0)
    assert r["pixel_acc"] == pytest.approx(100 * 13 / 16)
    assert r["mad"] == pytest.approx(2.5 / 16, rel=1e-6)
    assert r["mse"] == pytest.approx(1.55 / 16, rel=1e-6)
    assert r["sad"] == pytest.approx(2.5 / 1000, rel=1e-6)


def test_update_returns_the_image_metrics():
    truth = square(8, 8, 2, 2, 4)
    pred = square(8, 8, 2, 2, 2)
    acc = MetricAccumulator()
    own = acc.update(pred, truth)
    assert own["fg_iou"] == pytest.approx(25.0)
    assert own["pixel_acc"] == pytest.approx(100 * 52 / 64)
    assert own["sad"] == pytest.approx(12 / 1000)
    assert "images" not in own


def test_set_level_iou_differs_from_mean_per_image():
    acc = MetricAccumulator()
    # Image 1: truth 16 px, prediction finds 8 of them -> IoU 8/16.
    truth1 = np.ones((4, 4), np.float32)
    pred1 = np.zeros((4, 4), np.float32)
    pred1[:2] = 1.0
    # Image 2: truth 1 px, prediction empty -> IoU 0.
    truth2 = np.zeros((4, 4), np.float32)
    truth2[0, 0] = 1.0
    pred2 = np.zeros((4, 4), np.float32)
    acc.update(pred1, truth1)
    acc.update(pred2, truth2)
    r = acc.result()["all"]
    # Summed: TP = 8, FN = 8 + 1, FP = 0, TN = 0 + 15.
    assert r["fg_iou"] == pytest.approx(100 * 8 / 17)
    assert r["mean_iou"] == pytest.approx(100 * (0.5 + 0.0) / 2)
    assert r["miou"] == pytest.approx(100 * (8 / 17 + 15 / 24) / 2)
    assert r["pixel_acc"] == pytest.approx(100 * 23 / 32)
    assert r["images"] == 2


def test_cheng_boundary_iou_square_vs_shifted_square():
    # 10x10 image: diagonal 14.1, 2 % of it rounds to 0 -> band width d = 1 px, so each band
    # is the outer one-pixel ring of its 6x6 square: 36 - 16 = 20 px.
    truth = square(10, 10, 2, 2, 6)  # rows 2..7, cols 2..7
    pred = square(10, 10, 2, 3, 6)  # rows 2..7, cols 3..8
    # The rings share only rows 2 and 7, cols 3..7: 10 px. Union = 20 + 20 - 10 = 30.
    r = single(pred, truth)
    assert r["boundary_iou_cheng"] == pytest.approx(100 * 10 / 30)
    assert r["fg_iou"] == pytest.approx(100 * 30 / 42)


def test_cheng_boundary_iou_counts_the_image_border_as_edge():
    # As in the official implementation (zero padding before erosion), a mask touching the
    # image border has a band along it. Prediction: the whole 10x10 image, band = outer ring
    # of 36 px. Truth: columns 0..4, band = its ring of 50 - 24 = 26 px. Shared: rows 0 and 9
    # at cols 0..4 (10 px) and col 0 at rows 1..8 (8 px) = 18. Union = 26 + 36 - 18 = 44.
    truth = np.zeros((10, 10), np.float32)
    truth[:, :5] = 1.0
    pred = np.ones((10, 10), np.float32)
    assert single(pred, truth)["boundary_iou_cheng"] == pytest.approx(100 * 18 / 44)
    assert single(pred, pred)["boundary_iou_cheng"] == pytest.approx(100.0)


def test_cheng_band_width_scales_with_the_diagonal():
    # 100x100: diagonal 141.4, 2 % -> d = 3; a 3-px shift of a 40-px square.
    truth = square(100, 100, 30, 30, 40)
    pred = square(100, 100, 30, 33, 40)
    # Bands: 40^2 - 34^2 = 444 px each. Shared: rows 30..32 and 67..69 at cols 33..69
    # (2 * 3 * 37 = 222); on rows 33..66 the side strips (cols 30..32, 67..69 vs 33..35,
    # 70..72) do not meet. Union = 444 + 444 - 222 = 666.
    expected = 100 * 222 / 666
    assert single(pred, truth)["boundary_iou_cheng"] == pytest.approx(expected)


def test_cheng_boundary_iou_set_level_sums_intersections_and_unions():
    acc = MetricAccumulator()
    acc.update(square(10, 10, 2, 3, 6), square(10, 10, 2, 2, 6))  # I = 10, U = 30
    acc.update(square(10, 10, 2, 2, 6), square(10, 10, 2, 2, 6))  # I = U = 20
    r = acc.result()["all"]
    assert r["boundary_iou_cheng"] == pytest.approx(100 * 30 / 50)


def test_reference_boundary_iou_by_hand():
    # 8x8: d = 1. Truth = cols 0..3, prediction = cols 0..4 (all rows). Edge pixels: truth
    # cols 3-4, prediction cols 4-5; the band (1 px around them) is cols 2..6. Inside it
    # G & P = cols 2-3 (16 px), G | P = cols 2-4 (24 px).
    truth = np.zeros((8, 8), np.float32)
    truth[:, :4] = 1
    pred = np.zeros((8, 8), np.float32)
    pred[:, :5] = 1
    assert single(pred, truth)["boundary_iou"] == pytest.approx(100 * 16 / 24)
    # The image border is no edge: an all-person prediction has none; the band is the
    # truth's cols 2..5, G & P = cols 2-3 (16), G | P = cols 2-5 (32).
    assert single(np.ones((8, 8), np.float32), truth)["boundary_iou"] == pytest.approx(50.0)
    assert single(np.ones((8, 8), np.float32), np.ones((8, 8), np.float32))[
        "boundary_iou"] == pytest.approx(100.0)
    acc = MetricAccumulator()
    acc.update(pred, truth)
    acc.update(np.ones((8, 8), np.float32), truth)
    r = acc.result()["all"]
    assert r["boundary_iou"] == pytest.approx(100 * 32 / 56)  # sums, not a mean of ratios
    assert r["mean_boundary_iou"] == pytest.approx((100 * 16 / 24 + 50) / 2)


def test_per_source_grouping():
    truth = head_and_shoulders()
    acc = MetricAccumulator()
    acc.update(truth, truth, "pfcn_00001.png")
    acc.update(truth, truth, "val/pfcn_00002.png")
    acc.update(1.0 - truth, truth, "ccp_0001.jpg")
    acc.update(truth, truth, "photo.png")
    acc.update(truth, truth)  # no name: counts towards "all" only
    res = acc.result()
    assert list(res) == ["all", "ccp", "pfcn", "photo"]
    assert res["all"]["images"] == 5
    assert res["pfcn"]["images"] == 2
    assert res["pfcn"]["fg_iou"] == pytest.approx(100.0)
    assert res["ccp"]["fg_iou"] == pytest.approx(0.0)
    assert res["photo"]["images"] == 1
    assert res["all"]["mean_iou"] == pytest.approx(100 * 4 / 5)


def test_empty_images():
    empty = np.zeros((12, 16), np.float32)
    own = MetricAccumulator().update(empty, empty)
    for k in ("fg_iou", "miou", "boundary_iou", "pixel_acc"):
        assert own[k] == pytest.approx(100.0), k
    for k in ERROR_KEYS:
        assert own[k] == pytest.approx(0.0), k

    # A false alarm on an empty truth scores 0.
    alarm = square(12, 16, 2, 2, 4)
    own = MetricAccumulator().update(alarm, empty)
    assert own["fg_iou"] == pytest.approx(0.0)
    assert own["boundary_iou"] == pytest.approx(0.0)

    # An empty pair adds nothing to the set-level IoU but counts 100 in the per-image mean.
    acc = MetricAccumulator()
    acc.update(square(8, 8, 2, 2, 2), square(8, 8, 2, 2, 4))  # IoU 4 / 16
    acc.update(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))
    r = acc.result()["all"]
    assert r["fg_iou"] == pytest.approx(25.0)
    assert r["mean_iou"] == pytest.approx((25.0 + 100.0) / 2)


def test_uint8_input_matches_float():
    truth = head_and_shoulders()
    pred = cv2.GaussianBlur(truth, (0, 0), 1.5)
    pred8 = np.round(pred * 255).astype(np.uint8)
    r8 = single(pred8, (truth * 255).astype(np.uint8))
    rf = single(pred8.astype(np.float32) / 255, truth)
    for k in METRIC_KEYS:
        assert r8[k] == pytest.approx(rf[k], rel=1e-5, abs=1e-9), k


def test_invalid_inputs_raise():
    acc = MetricAccumulator()
    with pytest.raises(ValueError, match="size"):
        acc.update(np.zeros((4, 5), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        acc.update(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        acc.update(np.full((4, 4), 2.0, np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        acc.update(np.zeros((4, 4), np.int64), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="update"):
        acc.result()


def test_gradient_and_connectivity_errors():
    truth = head_and_shoulders()
    blurred = cv2.GaussianBlur(truth, (0, 0), 2.0)
    perfect = single(truth.copy(), truth)
    assert perfect["grad"] == pytest.approx(0.0, abs=1e-9)
    assert perfect["conn"] == pytest.approx(0.0, abs=1e-9)
    r = single(blurred, truth)
    assert r["grad"] > 0
    assert r["conn"] > 0


def test_connectivity_error_hand_computed():
    # min(pred, truth) = [1, 1, 0.55, 1]: at t = 0.6 the 0.55 pixel splits the row and the
    # largest component keeps pixels 0-1, so pixels 2 and 3 get level l = 0.5, pixels 0-1
    # l = 1.0. Pixel 2: truth d = 0.5 -> phi 0.5; pred d = 0.05 < 0.15 -> phi 1 (error 0.5).
    # Pixel 3: both d = 0.5 -> phi 0.5 (no error). Total 0.5 / 1000.
    truth = np.ones((1, 4), np.float32)
    pred = np.array([[1.0, 1.0, 0.55, 1.0]], np.float32)
    assert single(pred, truth)["conn"] == pytest.approx(0.5 / 1000, rel=1e-5)


def test_gradient_error_matches_the_benchmark_filter():
    # The matting benchmark's 2-D filter: gaussian(y) * dgaussian(x), unit L2 norm, 9x9 at
    # sigma 1.4; replicated border; squared difference of magnitudes summed, / 1000.
    sigma, half = 1.4, 4
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    fx = np.outer(g, -x * g / sigma**2)
    fx /= np.sqrt((fx**2).sum())

    def magnitude(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        gx = cv2.filter2D(a, -1, fx, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(a, -1, fx.T, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2)

    truth = head_and_shoulders(24, 32)
    pred = cv2.GaussianBlur(truth, (0, 0), 1.0)
    expected = ((magnitude(pred) - magnitude(truth)) ** 2).sum() / 1000
    assert single(pred, truth)["grad"] == pytest.approx(expected, rel=1e-4)


def test_format_table():
    truth = head_and_shoulders()
    acc = MetricAccumulator()
    acc.update(truth, truth, "pfcn_1.png")
    acc.update(1.0 - truth, truth, "ccp_1.png")
    res = acc.result()
    text = format_table(res).splitlines()
    assert len(text) == 4
    assert text[0].split()[:3] == ["source", "fg_iou", "miou"]
    assert [line.split()[0] for line in text[1:]] == ["all", "ccp", "pfcn"]
    assert text[3].split()[1:3] == ["100.00", "100.00"]
    md = format_table(res, markdown=True).splitlines()
    assert md[0].startswith("| source | fg_iou |")
    assert set(md[1]) <= set("|-:")
    assert md[2].startswith("| all |")
    assert len(md) == 5


def test_a_source_named_all_keeps_its_own_row():
    acc = MetricAccumulator()
    truth = np.zeros((8, 8), np.float32)
    truth[2:6, 2:6] = 1
    acc.update(truth, truth, "all_001.png")
    acc.update(np.zeros_like(truth), truth, "pfcn_001.png")
    res = acc.result()
    assert res["all"]["images"] == 2 and res["all_"]["images"] == 1
    assert res["all_"]["fg_iou"] == 100.0 and res["all"]["fg_iou"] == 50.0
