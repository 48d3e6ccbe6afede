"""Video files in and out with PyAV (the ``video`` extra): frames as uint8 RGB arrays,
the frame rate kept, the audio track copied untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from segme.io.files import atomic_output

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


class VideoError(ValueError):
    """A video that cannot be read or written; the message names the file."""


def _av():
    try:
        import av
    except ImportError:
        raise ImportError("videos need PyAV: pip install 'segme[video]'") from None
    return av


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class VideoReader:
    """Decoded frames of a video file.

    Attributes:
        fps: frame rate (a Fraction; 25 when the file does not say).
        width, height: frame size in pixels.
        frames: frame count from the header (0 when unknown).
        has_audio: whether there is an audio stream to carry over.
    """

    def __init__(self, path: str | Path) -> None:
        av = _av()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            # FFmpeg's errors read "[Errno N] reason: 'path'": the reason is what a user needs
            reason = getattr(e, "strerror", None) or str(e)
            raise VideoError(f"cannot read {self.path}: not a video FFmpeg can decode "
                             f"({reason})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = Fraction(rate) if rate else Fraction(25)
        self.frames = int(self._stream.frames or 0)
        self.has_audio = bool(self._container.streams.audio)
        # presentation time of every frame yielded so far, in time_base units (None where
        # the file has none): a writer given them keeps a variable frame rate's timing
        self.time_base = self._stream.time_base
        self.pts: list[int | None] = []
        # A phone records a portrait video as landscape frames plus a display matrix that
        # turns them upright (players honour it; PyAV's decoder does not). Frames are
        # turned here, so the model sees the person upright and the output, written
        # without a matrix, plays the right way up. The first frame says by how much.
        self._frames = self._container.decode(self._stream)
        try:
            self._first = self._decode_next()
        except VideoError:
            self._container.close()
            raise
        self.rotation = _quarter_turns(self._first) * 90 if self._first is not None else 0
        w, h = self._stream.codec_context.width, self._stream.codec_context.height
        self.width, self.height = (h, w) if self.rotation % 180 else (w, h)

    def _decode_next(self):
        av = _av()
        try:
            return next(self._frames, None)
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot decode {self.path}: {e}") from None

    def __iter__(self) -> Iterator[np.ndarray]:
        """uint8 [H, W, 3] RGB frames in display order, turned upright."""
        frame, self._first = self._first, None
        while frame is not None:
            array = frame.to_ndarray(format="rgb24")
            self.pts.append(frame.pts)
            k = _quarter_turns(frame)
            yield np.ascontiguousarray(np.rot90(array, k)) if k else array
            frame = self._decode_next()

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright (its display matrix's
    rotation, FFmpeg's convention, rounded to a multiple of 90 degrees); 0 without one."""
    return int(round((frame.rotation or 0) / 90.0)) % 4


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height and width by repeating the last row / column (4:2:0 needs it)."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        pad = ((0, h % 2), (0, w % 2)) + ((0, 0),) * (frame.ndim - 2)
        frame = np.pad(frame, pad, mode="edge")
    return frame


def write_video(
    frames: Iterable[np.ndarray], path: str | Path, fps: Fraction, audio_from: Path | None = None,
    timing: VideoReader | None = None,
) -> int:
    """Encode frames to ``path`` atomically; returns the number of frames written.

    ``.mp4``: H.264 (yuv420p, CRF 18, preset superfast) for RGB frames. ``.mov``: ProRes
    4444 with alpha for RGBA frames (cut-outs), H.264 otherwise. The audio stream of ``audio_from`` is copied
    without re-encoding. Nothing is left at ``path`` if encoding fails or no frame comes.

    ``timing``: the reader the frames come from, one written frame per decoded one, in
    order; each frame keeps its source's presentation time, so a variable frame rate (a
    phone's, a screen recording's) stays in step with the copied audio. Without it, or
    where the source's times are missing or not increasing, frames are spaced 1 / fps.
    """
    av = _av()
    path = Path(path)
    fmt = {".mp4": "mp4", ".mov": "mov"}.get(path.suffix.lower())
    if fmt is None:
        raise VideoError(f"cannot write {path.name}: use .mp4, or .mov for transparency")
    count = 0
    with atomic_output(path) as tmp:
        out = av.open(str(tmp), "w", format=fmt)
        src = av.open(str(audio_from)) if audio_from is not None else None
        try:
            stream = audio = None
            for frame in frames:
                alpha = frame.ndim == 3 and frame.shape[2] == 4
                if frame.ndim == 2:
                    frame = np.repeat(frame[:, :, None], 3, axis=2)
                if stream is None:
                    if alpha and fmt != "mov":
                        raise VideoError(f"cannot write {path.name}: transparency needs .mov")
                    stream = _video_stream(out, fps, alpha, frame.shape)
                    clock = _Clock(timing, fps)
                    stream.codec_context.time_base = stream.time_base = clock.time_base
                    # every stream must exist before the first packet writes the header
                    if src is not None and src.streams.audio:
                        audio = out.add_stream_from_template(src.streams.audio[0])
                if not alpha:
                    frame = _even(frame)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                                format="rgba" if alpha else "rgb24")
                vf.pts = clock.pts(count)
                for packet in stream.encode(vf):
                    out.mux(packet)
                count += 1
            if stream is None:
                raise VideoError(f"no frames to write to {path.name} (empty video?)")
            for packet in stream.encode():
                out.mux(packet)
            if audio is not None:
                for packet in src.demux(src.streams.audio[0]):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    packet.stream = audio
                    out.mux(packet)
        finally:
            out.close()
            if src is not None:
                src.close()
    return count


class _Clock:
    """Output presentation times: the source's (``timing.pts``, relative to its first
    frame) while they are present and increasing, else frame index / fps from there on."""

    def __init__(self, timing: VideoReader | None, fps: Fraction) -> None:
        if timing is not None and not timing.time_base:
            timing = None  # a stream without a time base: even spacing
        self.timing = timing
        self.time_base = Fraction(timing.time_base) if timing is not None else 1 / Fraction(fps)
        self.step = max(1, round(1 / (Fraction(fps) * self.time_base)))  # one frame, in ticks
        self.last: int | None = None

    def pts(self, index: int) -> int:
        source = self.timing.pts if self.timing is not None else []
        if index < len(source) and source[index] is not None and source[0] is not None:
            t = source[index] - source[0]
            if self.last is None or t > self.last:
                self.last = t
                return t
            self.timing = None  # out of order or repeated: even spacing from here on
        self.last = index * self.step if self.last is None else self.last + self.step
        return self.last


def _video_stream(out, fps: Fraction, alpha: bool, shape: tuple[int, ...]):
    h, w = shape[:2]
    if alpha:
        stream = out.add_stream("prores_ks", rate=fps)
        stream.pix_fmt = "yuva444p10le"
        stream.options = {"profile": "4444", "alpha_bits": "16"}
        stream.width, stream.height = w, h
    else:
        stream = out.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        # superfast: same CRF quality, ~1.7x faster than veryfast for ~1.4x the bytes; the
        # encoder is the slowest stage of a 720p pipeline on 2 cores (docs/video.md)
        stream.options = {"crf": "18", "preset": "superfast"}
        stream.width, stream.height = w + w % 2, h + h % 2
    stream.time_base = Fraction(1) / fps
    return stream


class LoopingFrames:
    """Endless RGB frames of a video, starting over at its end (a moving background).

    Thread-safe: parallel workers each take the next frame.
    """

    def __init__(self, path: str | Path) -> None:
        import threading

        self.path = Path(path)
        self._lock = threading.Lock()
        self._reader = VideoReader(self.path)
        self._it = iter(self._reader)

    def __next__(self) -> np.ndarray:
        with self._lock:
            frame = next(self._it, None)
            if frame is None:  # the end: start over
                self._reader.close()
                self._reader = VideoReader(self.path)
                self._it = iter(self._reader)
                frame = next(self._it, None)
                if frame is None:
                    raise VideoError(f"{self.path} has no frames to use as a background")
            return frame

    def __iter__(self) -> LoopingFrames:
        return self

    def close(self) -> None:
        self._reader.close()
