"""Background photographs without people, taken from Debian's desktop wallpaper packages.

Composited training pairs need many real places to paste people into. The desktop
environments' wallpaper packages ship a few dozen freely licensed photographs (landscapes,
plants, water, rooms), mixed with far more illustrations, renders, gradients and logos that
would teach the model backgrounds no camera sees. ``debian_wallpapers`` downloads the
packages (``apt-get download``: no root, nothing installed), unpacks them (``dpkg-deb -x``)
into a temporary folder, keeps the photographs (``is_photograph``), drops near-duplicates
and writes the rest as JPEG.

Nothing here touches the network or apt at import time: only ``debian_wallpapers`` does,
when it is called.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from segme.io.files import atomic_output

DEFAULT_PACKAGES = (
    "gnome-backgrounds",
    "mate-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-20.04",
    "plasma-workspace-wallpapers",
    "sway-backgrounds",
)

# Raster formats only: SVG wallpapers are vector art by construction.
RASTER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

# Files shipped by the default packages that pass every test in ``is_photograph`` but must
# not be used (checked by eye on contact sheets of the Debian 12 versions). Simple
# statistics cannot tell a clean 3D render, a soft painting or a photo blurred into colour
# clouds from a smooth photograph; nor can they see people. Names as ``_wallpaper_name``
# gives them.
EXCLUDED = frozenset({
    ("gnome-backgrounds", "truchet-d"),                     # rendered tiles
    ("mate-backgrounds", "Float-into-MATE"),                # vector waves and logo
    ("mate-backgrounds", "Ubuntu-Mate-Cold-no-logo"),       # aurora blurred to colour clouds
    ("mate-backgrounds", "Ubuntu-Mate-Warm-no-logo"),       # (its variants: the same)
    ("mate-backgrounds", "Ubuntu-Mate-Radioactive-no-logo"),
    ("plasma-workspace-wallpapers", "Autumn"),              # painting
    ("plasma-workspace-wallpapers", "Volna"),               # low-poly render of a beach
    ("ukui-wallpapers", "string"),                          # rendered swirl
    # a photo, but a person's legs stand in the blurred background: as a background it
    # would teach the model that people there are not people
    ("lomiri-wallpapers-20.04", "Kleiber_by_Lukas_Baubkus"),
})

# is_photograph's thresholds. The statistics are measured on a copy whose short side is
# _WORK_SIDE, so they do not depend on the file's resolution.
_WORK_SIDE = 512
_FLAT_STEP = 0.5       # grey levels per pixel: a gradient below this counts as flat
_MAX_FLAT = 0.35       # photos (even with sky or bokeh) measured <= 0.33; vector art >= 0.36
_MAX_FLAT_BLURRED = 0.40   # same after a blur: flat art hidden under added grain
_MIN_COLOURS = 8       # 4-bit RGB bins holding >= 0.1% of pixels; grey photos have >= 11
_MAX_REPEAT = 0.95     # autocorrelation peak: tilings and stripes repeat, scenes do not
_MAX_NOISE_FLOOR = 1.0     # grey levels: the calmest tenth of a photo is nearly smooth

_JPEG_QUALITY = 92
_OUT_SIDE = 1024
_DUP_SIDE = 32         # grey thumbnail side for the near-duplicate test
_DUP_DIFF = 8.0        # mean abs difference (grey levels) under which two are one photo:
                       # rescaled copies measured <= 0.4, distinct photos >= 22


def _work_copy(rgb: np.ndarray) -> np.ndarray:
    """uint8 [h, w, 3] copy of ``rgb`` whose short side is ``_WORK_SIDE`` (area resampling)."""
    h, w = rgb.shape[:2]
    k = _WORK_SIDE / min(h, w)
    if k == 1.0:
        return rgb
    size = (max(1, round(w * k)), max(1, round(h * k)))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp)


def photo_stats(rgb: np.ndarray) -> dict[str, float]:
    """The statistics ``is_photograph`` thresholds, for tuning and for the record.

    Args:
        rgb: uint8 [H, W, 3] RGB, any size (measured on a copy with short side 512).

    Returns:
        ``flat``: fraction of pixels whose grey gradient is under 0.5 levels per pixel.
        ``flat_blurred``: the same, under 0.25, after a Gaussian blur (sigma 3 px).
        ``colours``: number of 4-bit-per-channel RGB bins holding at least 0.1% of pixels.
        ``repeat``: highest normalised autocorrelation of the detail (sigma-8 high-pass)
        at shifts of 8 px to a third of the short side.
        ``noise_floor``: 10th percentile over 16x16 blocks of the std (grey levels) of the
        sigma-1 high-pass residual.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 [H, W, 3] RGB, got {rgb.dtype} {rgb.shape}")
    img = _work_copy(rgb)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)

    def flat_fraction(g: np.ndarray, step: float) -> float:
        # Sobel's kernel weighs the unit step 8 times (3x3 with 1-2-1 smoothing, both sides)
        mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) / 8
        return float((mag < step).mean())

    # Gradients, flat fills and vector shapes are flat almost everywhere; a photo's sky or
    # out-of-focus background is smooth too, but sensor noise and texture keep it above
    # half a grey level per pixel over most of the frame.
    flat = flat_fraction(grey, _FLAT_STEP)
    # Designers add film grain or dither to flat art (sway's, MATE's): blurred, it is flat
    # again, while a photo's structure survives a 3-px blur.
    flat_blurred = flat_fraction(cv2.GaussianBlur(grey, (0, 0), 3.0), _FLAT_STEP / 2)

    # Logos and two-tone art fill few colour bins; even a greyscale photo fills a dozen.
    q = (cv2.GaussianBlur(img, (0, 0), 1.0) >> 4).astype(np.int32)
    codes = (q[..., 0] << 8 | q[..., 1] << 4 | q[..., 2]).ravel()
    colours = int((np.bincount(codes, minlength=4096) >= 0.001 * codes.size).sum())

    # Tilings and stripes match a shifted copy of themselves; a scene does not.
    small = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    detail = small - cv2.GaussianBlur(small, (0, 0), 8.0)
    spec = np.fft.rfft2(detail)
    ac = np.fft.fftshift(np.fft.irfft2(spec * np.conj(spec), s=detail.shape))
    h, w = ac.shape
    centre = ac[h // 2, w // 2]
    yy, xx = np.ogrid[:h, :w]
    r = np.hypot(yy - h // 2, xx - w // 2)
    ring = (r > 8) & (r < min(h, w) / 3)
    repeat = float(ac[ring].max() / centre) if centre > 1e-6 else 1.0

    # A photo has calm parts (sky, blur, shade) where only a little sensor and JPEG noise
    # remains; patterns, paintings and brush-textured illustrations are busy everywhere.
    # (The price: photos busy edge to edge, a moss close-up, a forest, are rejected too.)
    resid = grey - cv2.GaussianBlur(grey, (0, 0), 1.0)
    bs = 16
    hh, ww = (resid.shape[0] // bs) * bs, (resid.shape[1] // bs) * bs
    blocks = resid[:hh, :ww].reshape(hh // bs, bs, ww // bs, bs).std(axis=(1, 3))
    noise_floor = float(np.percentile(blocks, 10))

    return {"flat": flat, "flat_blurred": flat_blurred, "colours": colours,
            "repeat": repeat, "noise_floor": noise_floor}


def is_photograph(rgb: np.ndarray) -> bool:
    """Whether an image looks like a photograph rather than art, a render or a gradient.

    Heuristic (tuned on the default packages' wallpapers): it rejects images that are flat
    over more than 35% of the frame, flat under added grain, few-coloured, periodic, or
    busy everywhere (see ``photo_stats``). It errs towards rejecting: a lost photo costs
    little, an illustration in the background set teaches the model scenes no camera sees.

    Args:
        rgb: uint8 [H, W, 3] RGB, any size.

    Returns:
        True when every test passes.
    """
    s = photo_stats(rgb)
    return (s["flat"] <= _MAX_FLAT and s["flat_blurred"] <= _MAX_FLAT_BLURRED
            and s["colours"] >= _MIN_COLOURS and s["repeat"] <= _MAX_REPEAT
            and s["noise_floor"] <= _MAX_NOISE_FLOOR)


# --------------------------------------------------------------------------- packages


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # apt's "W:" lines (e.g. downloading unsandboxed as root) are noise next to an "E:"
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or ["no message"])[-1]


def _package_exists(name: str) -> bool:
    """Whether apt's package lists know ``name`` as a real (downloadable) package."""
    res = _run(["apt-cache", "show", "--no-all-versions", name])
    return res.returncode == 0 and "Package:" in res.stdout


def _download(name: str, folder: Path) -> Path:
    """``apt-get download`` the package into ``folder`` and unpack it there; return the root."""
    res = _run(["apt-get", "download", name], cwd=folder)
    debs = sorted(folder.glob(f"{name}_*.deb"))
    if res.returncode != 0 or not debs:
        raise RuntimeError(
            f"apt-get download {name} failed ({_last_line(res.stderr)}); check the network "
            f"and run 'sudo apt-get update'"
        )
    root = folder / name
    res = _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
    if res.returncode != 0:
        raise RuntimeError(f"dpkg-deb -x {debs[0].name} failed: {_last_line(res.stderr)}")
    debs[0].unlink()  # the unpacked copy is all that is needed; halve the disk used
    return root


# Path parts that say nothing about which wallpaper a file is.
_GENERIC_PARTS = {"usr", "share", "backgrounds", "wallpapers", "contents", "images"}
_RESOLUTION = re.compile(r"^\d+x\d+$")


def _wallpaper_name(path: Path, root: Path) -> str:
    """A readable, file-safe name for a wallpaper file.

    The file's stem, except where it is only a resolution: Plasma ships
    ``<Name>/contents/images/1920x1080.jpg``, so the name there is the folder's
    (``images_dark`` adds ``_dark``).
    """
    stem = path.stem
    if _RESOLUTION.match(stem):
        parts = [p for p in path.relative_to(root).parent.parts if p not in _GENERIC_PARTS]
        named = [p for p in parts if p != "images_dark"]
        stem = (named[-1] if named else stem) + ("_dark" if "images_dark" in parts else "")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or "wallpaper"


@dataclass
class _Candidate:
    path: Path
    name: str
    pixels: int


def _candidates(root: Path, min_side: int) -> list[_Candidate]:
    """Raster files of at least ``min_side`` px on the short side, one per identical file,
    largest first (so near-duplicates keep their largest copy)."""
    found: dict[str, _Candidate] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in RASTER_SUFFIXES or not path.is_file():
            continue
        try:
            with Image.open(path) as img:  # the header only: no decode yet
                w, h = img.size
        except Exception:
            continue
        if min(w, h) < min_side:
            continue
        # Plasma links one image under a dozen resolution names: read the bytes once
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        cand = _Candidate(path, _wallpaper_name(path, root), w * h)
        if digest not in found:
            found[digest] = cand
    return sorted(found.values(), key=lambda c: (-c.pixels, str(c.path)))


def _decode(path: Path, min_side: int) -> np.ndarray:
    """uint8 [H, W, 3] RGB, EXIF-oriented; JPEGs are decoded at a reduced scale when that
    still leaves the short side at least ``max(min_side, 1024)``."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            keep = max(min_side, _OUT_SIDE)
            k = keep / min(img.size)
            img.draft("RGB", (max(1, round(img.width * k)), max(1, round(img.height * k))))
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            # wallpapers with alpha are made to be laid over a colour: lay them over black
            # rather than keep whatever the transparent pixels hold
            img = img.convert("RGBA")
            base = Image.new("RGBA", img.size, (0, 0, 0, 255))
            img = Image.alpha_composite(base, img)
        return np.asarray(img.convert("RGB"))


def _thumb(rgb: np.ndarray) -> np.ndarray:
    """float32 [32, 32] grey thumbnail of the whole frame, for the near-duplicate test."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (_DUP_SIDE, _DUP_SIDE), interpolation=cv2.INTER_AREA).astype(
        np.float32)


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """uint8 [h, w, 3] with the short side at most ``side`` (area resampling)."""
    h, w = rgb.shape[:2]
    k = side / min(h, w)
    if k >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))),
                      interpolation=cv2.INTER_AREA)


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    # segme.io.images.write_image saves JPEG at quality 95; 92 is asked for here, so this
    # goes through the same atomic rename that write_image uses.
    with atomic_output(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="JPEG", quality=_JPEG_QUALITY)


def debian_wallpapers(out: str | Path, packages: Sequence[str] = DEFAULT_PACKAGES,
                      min_side: int = 640) -> dict[str, int]:
    """Download Debian wallpaper packages and write their photographs to ``out``.

    Each kept photo is written as ``out/<package>_<name>.jpg`` (JPEG quality 92, short side
    at most 1024, written atomically). Kept: raster files at least ``min_side`` px on the
    short side that pass ``is_photograph`` and are not in ``EXCLUDED``; of
    near-duplicates (one photo at several resolutions, across packages too) the largest.
    Files of an earlier run are overwritten, never deleted: empty ``out`` first to drop
    photos a newer filter rejects.

    Args:
        out: folder to write into (created if missing).
        packages: Debian package names.
        min_side: smallest acceptable short side in pixels, before downscaling.

    Returns:
        Photos kept per package, in ``packages`` order. A package apt does not know is
        skipped and reported as ``{"warning: <name> not found, skipped": 0}``.

    Raises:
        RuntimeError: ``apt-get``, ``apt-cache`` or ``dpkg-deb`` is missing, or a download
            or unpack fails.
    """
    missing = [t for t in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not found: debian_wallpapers needs a Debian or Ubuntu "
            f"system with apt and dpkg (apt-get install apt dpkg)"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    kept_thumbs: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="segme-wallpapers-") as tmp:
        for name in packages:
            if not _package_exists(name):
                warnings.warn(f"package {name} is not in apt's lists; skipped", stacklevel=2)
                counts[f"warning: {name} not found, skipped"] = 0
                continue
            root = _download(name, Path(tmp))
            counts[name] = 0
            used: set[str] = set()
            for cand in _candidates(root, min_side):
                if (name, cand.name) in EXCLUDED:
                    continue
                try:
                    rgb = _decode(cand.path, min_side)
                except Exception:
                    continue  # a broken file in a package is its problem, not ours
                thumb = _thumb(rgb)
                if any(float(np.abs(thumb - t).mean()) < _DUP_DIFF for t in kept_thumbs):
                    continue
                if not is_photograph(rgb):
                    continue
                stem = cand.name
                n = 2
                while stem in used:  # two different photos under one name
                    stem, n = f"{cand.name}_{n}", n + 1
                used.add(stem)
                _write_jpeg(out / f"{name}_{stem}.jpg", _shrink(rgb, _OUT_SIDE))
                kept_thumbs.append(thumb)
                counts[name] += 1
            shutil.rmtree(root, ignore_errors=True)  # keep at most one package on disk
    return counts
