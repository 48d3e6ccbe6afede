"""Segmentation and matting metrics for person masks (numpy + OpenCV only).

Feed image pairs to :class:`MetricAccumulator` and read the totals with ``result()``;
:func:`format_table` prints them. Predictions and truths are alphas ``[H, W]`` in [0, 1]
(``uint8`` 0..255 is accepted and divided by 255). Results are reported for the whole set
(``"all"``) and for each source, the file-name prefix before the first ``_``
(:func:`source_of`: ``pfcn_00012.png`` -> ``pfcn``).

Definitions. ``P`` = prediction >= threshold (0.5) is person, ``G`` = truth >= threshold is
person. Set-level means the counts are summed over all pixels of all images *before* the
ratio is taken (one confusion matrix for the set); "mean per image" means the ratio is taken
per image and averaged. IoU-type values are percentages (0..100).

- ``fg_iou``: foreground IoU, set-level: TP / (TP + FP + FN). This is the number in the
  reference table of ``data/README.md``.
- ``miou``: 2-class mIoU, set-level: mean of the foreground IoU above and the background
  IoU TN / (TN + FN + FP) of the same summed confusion matrix.
- ``mean_iou``: foreground IoU of each image, averaged over images. An image where neither
  truth nor prediction has a person pixel scores 100.
- ``boundary_iou``: IoU inside a band around both edges, the definition of the reference
  numbers in ``data/README.md`` (it reproduces MediaPipe's 82.0 there). Band width
  d = round(``boundary_ratio`` * sqrt(H^2 + W^2)), at least 1 px (d = 16 for 640x480). The
  edge pixels of a mask are those whose 3x3 neighbourhood holds both person and background
  (inner and outer contour; the image border is not an edge). The band B is every pixel
  within chessboard distance d of an edge pixel of the truth or of the prediction.
  Per image I = |G ∩ P ∩ B| and U = |(G ∪ P) ∩ B|; ``boundary_iou`` is sum(I) / sum(U) over
  all images.
- ``mean_boundary_iou``: that I / U per image, averaged; an image with no edge in either
  mask scores 100.
- ``boundary_iou_cheng``: Boundary IoU of Cheng et al. (CVPR 2021), set-level, as in the
  official implementation (``boundary_iou_api``, ``mask_to_boundary``), same d.
  ``G_d ∩ G`` is the inner band of the truth: person pixels whose (2d+1) x (2d+1) square
  neighbourhood holds a background pixel, i.e. within chessboard distance d of the
  background. It is ``G`` minus ``G`` eroded by that square with zeros outside the image,
  which is what the official code's 1-px zero padding plus d erosions by a 3x3 square
  compute: the image border counts as an edge, so a mask touching the border has a band
  along it. ``P_d ∩ P`` likewise for the prediction. With
  I = |(G_d ∩ G) ∩ (P_d ∩ P)| and U = |(G_d ∩ G) ∪ (P_d ∩ P)| per image, it is
  sum(I) / sum(U). It is stricter than ``boundary_iou`` (only the inner bands count).
- ``pixel_acc``: binary pixel accuracy, set-level: (TP + TN) / all pixels, in percent.

Alpha errors use the soft values (no threshold), over the whole image (no trimap), per
image, averaged over images (the matting convention):

- ``mad``: mean |pred - truth| over the image's pixels (alpha units, 0..1).
- ``mse``: mean (pred - truth)^2 over the image's pixels (raw, not scaled).
- ``sad``: sum |pred - truth| over the image's pixels / 1000.
- ``grad``: gradient error (Rhemann et al., CVPR 2009, as in the alpha-matting benchmark
  and its common Python ports): each alpha is filtered with first-order Gaussian-derivative
  filters, sigma 1.4 (9x9; Gaussian times its derivative, normalised to unit L2 norm,
  replicated border), the gradient magnitudes are compared, and
  sum (|grad pred| - |grad truth|)^2 / 1000. Unlike the benchmark's MATLAB code the alphas
  are not min-max rescaled first (``mat2gray``): they already lie in [0, 1], and the rescale
  would let a few extreme pixels change the score; for alphas spanning [0, 1] the two agree.
- ``conn``: connectivity error (Rhemann et al. 2009): for thresholds t = 0.1, 0.2, ..., 1.0
  take Omega_t, the largest 4-connected component of {alpha_pred >= t and alpha_truth >= t};
  pixel i's level l_i = t - 0.1 for the first t at which i is not in Omega_t (1.0 if it is
  in all of them). With d_i = alpha_i - l_i, phi_i = 1 - d_i * [d_i >= 0.15] for each alpha,
  and the error is sum |phi_pred - phi_truth| / 1000.

``images`` is the number of images in the group. Truth may be soft (e.g. resized
bilinearly); it is thresholded like the prediction for the IoU-type metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import PurePath

import cv2
import numpy as np

METRIC_KEYS = (
    "fg_iou",
    "miou",
    "mean_iou",
    "boundary_iou",
    "mean_boundary_iou",
    "boundary_iou_cheng",
    "pixel_acc",
    "mad",
    "mse",
    "sad",
    "grad",
    "conn",
    "images",
)

_GRAD_SIGMA = 1.4
_CONN_STEP = 0.1
_CONN_MIN_DIFF = 0.15


def source_of(name: str) -> str:
    """Return the source of an image: its file-name prefix before the first ``_``.

    Args:
        name: file name or path, e.g. ``"val/images/pfcn_00012.jpg"``.

    Returns:
        ``"pfcn"`` for the example; the whole stem for names without ``_``
        (``"photo.png"`` -> ``"photo"``); ``""`` for an empty name. A source literally
        called ``all`` becomes ``all_`` so it cannot merge into the whole-set row.
    """
    stem = PurePath(name).stem if name else ""
    source = stem.split("_", 1)[0]
    return "all_" if source == "all" else source


@dataclass
class _Totals:
    """Running sums for one group of images (the set or one source)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    band_inter: int = 0
    band_union: int = 0
    cheng_inter: int = 0
    cheng_union: int = 0
    iou: float = 0.0
    boundary_iou: float = 0.0
    mad: float = 0.0
    mse: float = 0.0
    sad: float = 0.0
    grad: float = 0.0
    conn: float = 0.0
    images: int = 0

    def add(self, other: _Totals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> dict[str, float]:
        n = max(self.images, 1)
        return {
            "fg_iou": 100.0 * _ratio(self.tp, self.tp + self.fp + self.fn),
            "miou": 50.0
            * (
                _ratio(self.tp, self.tp + self.fp + self.fn)
                + _ratio(self.tn, self.tn + self.fp + self.fn)
            ),
            "mean_iou": self.iou / n,
            "boundary_iou": 100.0 * _ratio(self.band_inter, self.band_union),
            "mean_boundary_iou": self.boundary_iou / n,
            "boundary_iou_cheng": 100.0 * _ratio(self.cheng_inter, self.cheng_union),
            "pixel_acc": 100.0 * _ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn),
            "mad": self.mad / n,
            "mse": self.mse / n,
            "sad": self.sad / n,
            "grad": self.grad / n,
            "conn": self.conn / n,
            "images": self.images,
        }


def _ratio(num: float, den: float) -> float:
    # An empty union means both masks agree that there is nothing there: a perfect score.
    return num / den if den else 1.0


class MetricAccumulator:
    """Accumulates person-segmentation metrics over a set of images.

    See the module docstring for the exact definition of every metric.

    Example:
        >>> acc = MetricAccumulator()
        >>> for name, pred, truth in pairs:  # doctest: +SKIP
        ...     acc.update(pred, truth, name)
        >>> print(format_table(acc.result()))  # doctest: +SKIP

    Args:
        threshold: alpha at or above which a pixel counts as person, for prediction and truth.
        boundary_ratio: Boundary IoU band width as a fraction of the image diagonal.
    """

    def __init__(self, threshold: float = 0.5, boundary_ratio: float = 0.02) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if boundary_ratio <= 0.0:
            raise ValueError(f"boundary_ratio must be positive, got {boundary_ratio}")
        self.threshold = float(threshold)
        self.boundary_ratio = float(boundary_ratio)
        self._all = _Totals()
        self._sources: dict[str, _Totals] = {}
        self._grad_kernels = _gaussian_derivative_kernels(_GRAD_SIGMA)

    def update(self, pred: np.ndarray, truth: np.ndarray, name: str = "") -> dict[str, float]:
        """Add one image pair and return that image's own metrics.

        Args:
            pred: predicted alpha, float [H, W] in [0, 1] (or uint8 [H, W] in 0..255,
                or bool).
            truth: ground-truth alpha or mask of the same size and accepted dtypes.
            name: image file name; its source (:func:`source_of`) gets its own row in
                ``result()``. An empty name counts towards ``"all"`` only.

        Returns:
            This image's metrics: ``fg_iou``, ``miou``, ``boundary_iou``, ``pixel_acc``
            (percent; an empty union scores 100), ``mad``, ``mse``, ``sad``, ``grad``,
            ``conn`` (same units as in ``result()``).

        Raises:
            ValueError: if an array is not 2-D, has an unsupported dtype, holds values
                outside [0, 1], or the two sizes differ.
        """
        p = _as_alpha(pred, "pred")
        t = _as_alpha(truth, "truth")
        if p.shape != t.shape:
            raise ValueError(
                f"pred has size {p.shape} but truth has size {t.shape} (H, W); resize the "
                "prediction to the truth's size before evaluating"
            )

        pm = p >= self.threshold  # [H, W] bool
        tm = t >= self.threshold
        n_pix = pm.size
        tp = int(np.count_nonzero(pm & tm))
        fp = int(np.count_nonzero(pm)) - tp
        fn = int(np.count_nonzero(tm)) - tp
        tn = n_pix - tp - fp - fn

        d = _boundary_width(p.shape, self.boundary_ratio)
        band = _edge_band(pm, tm, d)
        band_inter = int(np.count_nonzero(pm & tm & band))
        band_union = int(np.count_nonzero((pm | tm) & band))
        pb = _inner_band(pm, d)
        tb = _inner_band(tm, d)

        abs_sum = cv2.norm(p, t, cv2.NORM_L1)
        sq_sum = cv2.norm(p, t, cv2.NORM_L2SQR)
        img = _Totals(
            tp=tp,
            fp=fp,
            fn=fn,
            tn=tn,
            band_inter=band_inter,
            band_union=band_union,
            cheng_inter=int(np.count_nonzero(pb & tb)),
            cheng_union=int(np.count_nonzero(pb | tb)),
            iou=100.0 * _ratio(tp, tp + fp + fn),
            boundary_iou=100.0 * _ratio(band_inter, band_union),
            mad=abs_sum / n_pix,
            mse=sq_sum / n_pix,
            sad=abs_sum / 1000.0,
            grad=_gradient_error(p, t, self._grad_kernels),
            conn=_connectivity_error(p, t),
            images=1,
        )
        self._all.add(img)
        if name:
            self._sources.setdefault(source_of(name), _Totals()).add(img)

        s = img.summary()
        return {
            "fg_iou": s["fg_iou"],
            "miou": s["miou"],
            "boundary_iou": s["boundary_iou"],
            "boundary_iou_cheng": s["boundary_iou_cheng"],
            "pixel_acc": s["pixel_acc"],
            "mad": s["mad"],
            "mse": s["mse"],
            "sad": s["sad"],
            "grad": s["grad"],
            "conn": s["conn"],
        }

    def result(self) -> dict[str, dict[str, float]]:
        """Return the metrics of the whole set and of each source.

        Returns:
            ``{"all": {...}, "<source>": {...}, ...}`` with sources in alphabetical order;
            each inner dict has the keys of :data:`METRIC_KEYS`.

        Raises:
            ValueError: if no image was added yet.
        """
        if not self._all.images:
            raise ValueError("no images were evaluated yet; call update() first")
        out = {"all": self._all.summary()}
        for src in sorted(self._sources):
            out[src] = self._sources[src].summary()
        return out


def _boundary_width(shape: tuple[int, ...], ratio: float = 0.02) -> int:
    """Boundary IoU band width in pixels: round(ratio * image diagonal), at least 1.

    Args:
        shape: image shape (H, W, ...).
        ratio: band width as a fraction of the diagonal.
    """
    h, w = shape[:2]
    return max(1, int(round(ratio * float(np.hypot(h, w)))))


def format_table(results: Mapping[str, Mapping[str, float]], markdown: bool = False) -> str:
    """Render ``MetricAccumulator.result()`` as a table.

    Args:
        results: ``{"all": {...}, "<source>": {...}}``; rows keep the ``"all"`` row first,
            then the other rows in the given order.
        markdown: give a GitHub-flavoured markdown table instead of aligned plain text.

    Returns:
        The table, one row per group and one column per metric, without a trailing newline.
    """
    rows = [k for k in results if k == "all"] + [k for k in results if k != "all"]
    keys = [k for k in METRIC_KEYS if any(k in results[r] for r in rows)]
    keys += [k for r in rows for k in results[r] if k not in keys]
    keys = list(dict.fromkeys(keys))
    header = ["source", *keys]
    body = [[r, *(_format_value(k, results[r].get(k)) for k in keys)] for r in rows]
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(keys)) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    ]
    return "\n".join(lines)


def _format_value(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "images":
        return str(int(value))
    if key in ("mad", "mse"):
        return f"{value:.5f}"
    return f"{value:.2f}"


def _as_alpha(x: np.ndarray, what: str) -> np.ndarray:
    """Check one input and return it as float32 [H, W] in [0, 1] (contiguous)."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.ndim != 2:
        raise ValueError(
            f"{what} must be a single-channel [H, W] alpha, got shape {x.shape}; "
            "pass one mask per call (e.g. alpha[0, 0] for a [1, 1, H, W] output)"
        )
    if x.size == 0:
        raise ValueError(f"{what} is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(1.0 / 255.0)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"{what} has dtype {x.dtype}; pass float alpha in [0, 1] or uint8 in 0..255"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(
            f"{what} values must lie in [0, 1], got range [{lo}, {hi}]; scale uint8-like "
            "floats by 1/255 or apply the sigmoid to logits first"
        )
    return x


def _edge_band(pred: np.ndarray, truth: np.ndarray, d: int) -> np.ndarray:
    """Pixels within chessboard distance ``d`` of an edge of either mask (``boundary_iou``).

    An edge pixel has both values in its 3x3 neighbourhood; the image is extended by
    replicating its border, so the border itself is never an edge.
    """
    k3 = np.ones((3, 3), np.uint8)
    edges = np.zeros(pred.shape, np.uint8)
    for m in (pred, truth):
        u = m.view(np.uint8)
        dil = cv2.dilate(u, k3, borderType=cv2.BORDER_REPLICATE)
        ero = cv2.erode(u, k3, borderType=cv2.BORDER_REPLICATE)
        edges |= dil != ero
    band = cv2.dilate(edges, np.ones((2 * d + 1, 2 * d + 1), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return band.astype(bool)


def _inner_band(mask: np.ndarray, d: int) -> np.ndarray:
    """Person pixels within chessboard distance ``d`` of background or the image border.

    Same as the official ``mask_to_boundary``: erode by a (2d+1)^2 square with zeros
    outside the image (its 1-px zero pad), keep what the erosion removed.
    """
    m = mask.view(np.uint8)  # bool -> 0/1 without a copy
    kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
    eroded = cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & (eroded == 0)


def _gaussian_derivative_kernels(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, ...]:
    """Separable form of the matting benchmark's Gaussian-derivative filter (``gaussgradient``).

    The benchmark's 2-D x filter is gaussian(y) * dgaussian(x) divided by its L2 norm, which
    factorises into the two 1-D kernels returned here, each with unit L2 norm.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dg = -x * g / sigma**2
    return (dg / np.linalg.norm(dg)).astype(np.float32), (g / np.linalg.norm(g)).astype(np.float32)


def _gradient_magnitude(alpha: np.ndarray, kernels: tuple[np.ndarray, ...]) -> np.ndarray:
    deriv, smooth = kernels
    gx = cv2.sepFilter2D(alpha, cv2.CV_32F, deriv, smooth, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(alpha, cv2.CV_32F, smooth, deriv, borderType=cv2.BORDER_REPLICATE)
    return cv2.magnitude(gx, gy)


def _gradient_error(pred: np.ndarray, truth: np.ndarray, kernels: tuple[np.ndarray, ...]) -> float:
    gp = _gradient_magnitude(pred, kernels)
    gt = _gradient_magnitude(truth, kernels)
    return cv2.norm(gp, gt, cv2.NORM_L2SQR) / 1000.0


def _connectivity_error(pred: np.ndarray, truth: np.ndarray) -> float:
    levels = np.arange(11, dtype=np.float32) * np.float32(_CONN_STEP)  # 0.0, 0.1, ..., 1.0
    both = np.minimum(pred, truth)  # both >= t  <=>  min >= t
    # l_i = 0.1 * (number of thresholds for which i is still in every Omega so far): once a
    # pixel leaves the largest component it is never counted again.
    alive = np.ones(both.shape, np.bool_)
    count = np.zeros(both.shape, np.uint8)
    for t in levels[1:]:
        inter = both >= t
        # Plain labelling + bincount measured ~2x faster than connectedComponentsWithStats,
        # whose bounding boxes and centroids are not needed here.
        n, labels = cv2.connectedComponents(inter.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        if n <= 1:  # nothing left: every remaining pixel disconnects here
            break
        sizes = np.bincount(labels.ravel(), minlength=n)
        sizes[0] = 0  # label 0 is the background
        alive &= labels == int(np.argmax(sizes))
        count += alive
    level = levels[count]  # [H, W] float32
    phi_p = _phi(pred - level)
    phi_t = _phi(truth - level)
    return cv2.norm(phi_p, phi_t, cv2.NORM_L1) / 1000.0


def _phi(diff: np.ndarray) -> np.ndarray:
    return np.where(diff >= _CONN_MIN_DIFF, 1.0 - diff, 1.0).astype(np.float32)
