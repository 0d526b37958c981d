"""Decode a media file's audio track to a mono float32 signal with one ffmpeg run.

The subvideos asset decodes every challenge video exactly once and shares the
signal between all prompts, so decoding is a single ffmpeg process that downmixes,
resamples and writes raw little-endian float32 samples to a pipe. ffprobe runs
first so that a file without an audio stream is told apart (``NoAudioError``) from
a file ffmpeg cannot read (``AudioDecodeError``): the first is a normal property
of some TikTok videos, the second a broken download.
"""

from __future__ import annotations

import math
from os import PathLike

import ffmpeg
import numpy as np

_STDERR_TAIL_CHARS = 2000


class AudioDecodeError(RuntimeError):
    """ffprobe or ffmpeg could not read the audio of a file; the message carries ffmpeg's stderr tail."""


class NoAudioError(AudioDecodeError):
    """The file is a readable media file but has no audio stream."""

    def __init__(self, path: str | PathLike[str]):
        super().__init__(f"{path}: no audio stream")
        self.path = str(path)


def _stderr_tail(error: ffmpeg.Error) -> str:
    text = (error.stderr or b"").decode("utf-8", errors="replace").strip()
    return text[-_STDERR_TAIL_CHARS:]


def decode_audio(path: str | PathLike[str], sample_rate: int = 16000) -> np.ndarray:
    """Return the first audio stream of ``path`` as float32 mono samples at ``sample_rate``.

    Channels are averaged by ffmpeg's downmix and the signal is resampled by
    ffmpeg's resampler, so the result is directly comparable across videos encoded
    at 44.1 kHz, 48 kHz or anything else. Values lie in [-1, 1] (decoders of lossy
    codecs can overshoot slightly; those samples are clipped).

    Raises ``NoAudioError`` when the file has no audio stream and
    ``AudioDecodeError`` (with ffmpeg's stderr tail) when probing or decoding fails.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path = str(path)
    try:
        info = ffmpeg.probe(path, v="error")
    except ffmpeg.Error as error:
        raise AudioDecodeError(f"{path}: ffprobe failed: {_stderr_tail(error)}") from error
    if not any(stream.get("codec_type") == "audio" for stream in info.get("streams", [])):
        raise NoAudioError(path)
    try:
        raw, _ = (
            ffmpeg.input(path)["a:0"]
            .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate)
            .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
            .run(capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as error:
        raise AudioDecodeError(f"{path}: ffmpeg audio decode failed: {_stderr_tail(error)}") from error
    signal = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)
    np.clip(signal, -1.0, 1.0, out=signal)
    return signal


def signal_dbfs(signal: np.ndarray) -> float:
    """RMS level of ``signal`` in dB relative to full scale (a full-scale sine is -3 dBFS); -inf when empty or
    all zero."""
    if signal.size == 0:
        return float("-inf")
    samples = np.ravel(signal)
    rms = math.sqrt(float(np.einsum("i,i->", samples, samples, dtype=np.float64)) / samples.size)
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def is_silent(signal: np.ndarray, threshold_dbfs: float = -60.0) -> bool:
    """True when the RMS level of ``signal`` is below ``threshold_dbfs`` (an empty signal is silent)."""
    return signal_dbfs(signal) < threshold_dbfs
