"""Find where each of a challenge's prompts is said in a performer's video.

The baseline video's audio is cut into one snippet per prompt; each snippet is
located in the video's audio by normalised cross-correlation (NCC) computed with
FFTs, the method of the original pipeline's ``check_subaudio``, made robust to what
performers do to the sound: their own music and noise on top (0 dB and louder),
volume changes, clipping, another sample rate and codec, a re-recording through a
phone, a video that starts before or after the sound, videos that stop early or were
edited. Everything works at 8 kHz (``WORK_RATE``), in two stages, both NCC:

1. Coarse: a log-mel spectrogram at 100 frames/s (32 bands, 100-3800 Hz) with each
   frame's mean across bands removed, so the common loudness envelope (beats,
   fades) does not correlate by itself. The multi-band NCC of every snippet against
   the whole video comes from one FFT of the video's feature, shared by all
   prompts (snippet spectra are cached by the ``PromptLocator``). The three best
   peaks per prompt are candidates.
2. Fine: NCC of the whitened waveform in +-30 ms around a candidate, refined to
   1/8 sample by interpolating the correlation. Whitening (the magnitude of each
   signal's own order-16 LPC inverse filter, zero phase, 150-3000 Hz) flattens the
   long-term spectrum so bass, kick drums and sustained chords stop dominating the
   correlation.

Measured on the test generator's signals (tests/test_audio_matching.py; 8 videos x
13 prompts per condition, music 10 dB louder than the prompts): the coarse top peak
is the true position for 96.5 % of prompts (plain log-mel 96.5 %, spectral flux
78 %; through a phone: 98.8 %, 96.5 %, 65 %); at the true position the fine NCC's
5th percentile is 0.39 whitened against 0.30 unwhitened, while the best NCC at a
wrong candidate is 0.32 whitened against 0.47 unwhitened.

A match must pass four tests, calibrated on the same generator (1443 wrong
candidates against 430 true matches in six conditions, 3639 random +-30 ms windows,
and 579 complete prompts against 108 with half or more cut out by an edit): an NCC
of at least ``MIN_SCORE``; a peak at least ``MIN_PEAK_RATIO`` times the largest
sidelobe within +-30 ms (wrong candidates on periodic music score up to 0.32, but
with a ratio of about 1.0); each half of the prompt matching at least
``MIN_HALF_RATIO`` as well as the whole (a prompt cut in half by an edit still
scores about 0.7 of a full match, its missing half about 0); and agreement with the
other prompts. A performer plays one sound, so the prompts of one continuous
stretch share a time shift: matches are grouped by shift, and a group needs two
prompts or one match of at least ``MIN_LONE_SCORE`` (wrong candidates passing the
other tests reach 0.25). The best group places its prompts and looks for the
others where its shift puts them; further groups (the parts of an edited video)
place prompts only between those already placed, in the baseline's order, and a
match that fits nowhere is reported "out of order". A prompt the best shift puts
(partly) outside the video is "outside video": only lags that keep the whole
snippet inside the video are ever compared, so a prompt cut by the file's edge is
never matched on its remaining part.

A sound at another rate: apps "speed up" a sound (resampled, pitch and tempo together,
+10-30 %), time-stretch it (tempo only), and a phone filming a speaker drifts its clock;
then no shift holds for all prompts (0.25 % faster lost 2 of 11 prompts, 3 % all).
Whenever a prompt stays "below threshold" at the sound's own rate, ``_retimed`` views
the video on the baseline's time axis at each rate of ``_RATE_GRID`` (tempo only within
4 %, resampled 0.75-1.4: the log-mel's bands scaled in frequency too), and the coarse
candidates of all prompts vote for a line, video time = offset + baseline time / rate
(``lines.best_line``). The best supported line's rate is refitted to its prompts, and a
prompt is found where the line puts it when its log-mel NCC there reaches
``MIN_LINE_SCORE``, with ``MIN_LINE_PROMPTS`` prompts on the line. The rate is reported
per video (``PromptMatch.rate``). Measured on this generator (13 prompts, music at 0 dB,
tempo 0.97-1.03 by ffmpeg's rubberband, resampled 0.9, 1.1, 1.25; tests/test_audio_matching.py):
145 of 145 present prompts found, start error at most 7.4 ms (resampled: 1.4 ms), rate
within 0.01 %; the best line of 10 unrelated sounds reaches at most 0.22 at its third
prompt. Such a match's ``score`` is that log-mel NCC (true prompts: at least 0.55 under
music at 0 dB, 5th percentile 0.35 at +10 dB), not the whitened-waveform NCC.

Known limits: a prompt that is a held note or a beep is periodic, so alone it is
ambiguous by one period and reported "below threshold"; it is found where other
prompts' shift places it, if its NCC reaches ``MIN_PERIODIC_SCORE``. The snippets
include the sound's own music, so a video carrying that music without the voice
(an instrumental, another sound on the same backing track) can match prompts
through the music alone, at the places the sound would put them. A performer's
music more than 15 dB louder than the prompts costs recall (98 % found at +15 dB,
74 % at +20 dB on the test generator), not precision.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import fft as sp_fft
from scipy import linalg as sp_linalg
from scipy import signal as sp_signal

from tiktokfer_assets.audio.decode import is_silent
from tiktokfer_assets.audio.lines import Line, Votes, best_line

WORK_RATE = 8000
"""Rate (Hz) at which both stages work: speech formants and onsets lie below 4 kHz."""
_MEL_BAND_HZ = (100.0, 3800.0)
_N_FFT = 256  # 32 ms frames
_HOP = 80  # 10 ms hop: the coarse stage's time step
_N_MELS = 32
_LOG_FLOOR = 1e-3  # log(mel + floor * mean mel): digital silence does not dominate
_LPC_ORDER = 16
_WHITE_EDGES_HZ = ((60.0, 150.0), (3000.0, 3700.0))  # pass band of the whitened waveform, with its edges
_LANCZOS_A = 8  # half width (samples) of the interpolation kernel of the fine peak
_FINE_HALF = round(0.03 * WORK_RATE)  # the fine search looks +-30 ms around a candidate (samples)
_SHIFT_TOLERANCE_S = 0.02  # prompts of one continuous stretch of the sound share their shift to this
_ORDER_OVERLAP_S = 0.1  # matched spans of consecutive prompts may overlap this much (hand-set prompt boundaries)
_COARSE_CANDIDATES = 3
_SPECTRA_CACHED = 4  # FFT sizes whose snippet spectra a PromptLocator keeps (videos of similar lengths share one)

_MAIN_LOBE = round(0.0015 * WORK_RATE)  # half width of a whitened NCC peak's main lobe, left out of the sidelobe search

MIN_SCORE = 0.2
"""Minimum whitened-waveform NCC of a found prompt (wrong positions passing the other
tests: 3 of 3639 random windows reach 0.2; true matches: 5th percentile 0.34-0.87)."""
MIN_LONE_SCORE = 0.35
"""Minimum NCC of a match that no other prompt's shift confirms (wrong coarse candidates
passing the other tests reach 0.25)."""
MIN_PEAK_RATIO = 1.1
"""Minimum ratio of the NCC peak to the largest sidelobe within +-30 ms (true matches:
1st percentile 1.3, short steady-pitch prompts down to 1.14; periodic music: about 1.0)."""
MIN_PERIODIC_SCORE = 0.5
"""Minimum NCC of a match whose peak ratio is under MIN_PEAK_RATIO, accepted only where other
prompts' shift places it (random windows: the best balanced peak of 3639, whatever its
ratio, scored 0.35)."""
MIN_HALF_RATIO = 0.32
"""Minimum NCC of either half of a prompt relative to the whole's (complete prompts: at
least 0.42; prompts with half or more cut out by an edit: at most 0.24)."""

REASON_NO_AUDIO = "no audio"
REASON_SILENT = "silent"
REASON_BELOW_THRESHOLD = "below threshold"
REASON_OUT_OF_ORDER = "out of order"
REASON_OUTSIDE_VIDEO = "outside video"


@dataclass(frozen=True)
class PromptSpan:
    """One prompt of a challenge: its label and its span (seconds) in the baseline's audio."""

    label: str
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.start_s < self.end_s):
            raise ValueError(f"prompt {self.label!r}: need 0 <= start_s < end_s, got {self.start_s}, {self.end_s}")


@dataclass(frozen=True)
class PromptMatch:
    """Where a prompt was found in a video (seconds in the video's audio), or why it was not.

    ``score`` is the whitened-waveform NCC of the match, the log-mel NCC for a sound at
    another rate (of the best candidate seen when not found; 0.0 when nothing could be
    compared). ``reason`` is None when found, otherwise one of "no audio", "silent",
    "below threshold", "out of order", "outside video". The found spans of one video
    follow the baseline's order and never overlap.
    """

    label: str
    prompt_index: int
    found: bool
    start_s: float | None
    end_s: float | None
    score: float
    reason: str | None
    rate: float | None = None
    """Playback rate of the sound in the video (1.25: 25 % faster; video time = offset + baseline
    time / rate), one per video; None when no prompt was found."""


def unmatched(prompts: Sequence[PromptSpan], reason: str) -> list[PromptMatch]:
    """Rows saying that none of ``prompts`` was found, for ``reason`` (e.g. a video without audio)."""
    return [PromptMatch(p.label, i, False, None, None, 0.0, reason) for i, p in enumerate(prompts)]


def reaction_span(
    match: PromptMatch, window: tuple[float, float] = (1.0, 2.5), video_duration_s: float | None = None
) -> tuple[float, float] | None:
    """Span in which the performer reacts to a found prompt: ``window`` seconds after its end.

    For challenges (face_challenge) where the face answering a prompt comes after
    the prompt is heard. None when the prompt was not found, or when the window
    starts at or after ``video_duration_s``; the end is clipped to the duration.
    """
    lo, hi = window
    if not 0.0 <= lo < hi:
        raise ValueError(f"reaction window must satisfy 0 <= start < end, got {window}")
    if not match.found or match.end_s is None:
        return None
    start, end = match.end_s + lo, match.end_s + hi
    if video_duration_s is not None:
        if start >= video_duration_s:
            return None
        end = min(end, video_duration_s)
    return start, end


# --------------------------------------------------------------------------- features


def _mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_lo: float, f_hi: float, scale: float = 1.0
) -> np.ndarray:
    """Triangular mel filters (HTK mel scale) as an (n_mels, n_fft // 2 + 1) matrix, all frequencies times ``scale``."""
    mel = np.linspace(2595.0 * np.log10(1 + f_lo / 700), 2595.0 * np.log10(1 + f_hi / 700), n_mels + 2)
    edges = scale * 700.0 * (10.0 ** (mel / 2595.0) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None).astype(np.float32)


_MEL = _mel_filterbank(_N_FFT, WORK_RATE, _N_MELS, *_MEL_BAND_HZ)
_WINDOW = np.hanning(_N_FFT).astype(np.float32)


def _to_work_rate(x: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if sample_rate == WORK_RATE:
        return x
    g = math.gcd(WORK_RATE, sample_rate)
    return sp_signal.resample_poly(x, WORK_RATE // g, sample_rate // g).astype(np.float32)


def _analyse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A signal at WORK_RATE in the two forms the matcher compares: whitened waveform and coarse log-mel.

    Both come from one short-time power spectrum: its mean over the frames is the
    long-term spectrum the whitening flattens.
    """
    if len(x) < _N_FFT:
        return _whiten(x, None), np.zeros((_N_MELS, 0), dtype=np.float32)
    power = _power(x)
    return _whiten(x, power.mean(axis=0)), _log_mel(power)


def _power(x: np.ndarray) -> np.ndarray:
    """(frames, bins) short-time power spectra of ``x`` (at WORK_RATE, at least _N_FFT samples), one per _HOP."""
    frames = np.lib.stride_tricks.sliding_window_view(x, _N_FFT)[::_HOP] * _WINDOW
    spectrum = sp_fft.rfft(frames, axis=1)
    return spectrum.real**2 + spectrum.imag**2


def _whiten(x: np.ndarray, mean_power: np.ndarray | None) -> np.ndarray:
    """Flatten the long-term spectrum ``mean_power`` of ``x`` without changing its phase.

    The gain is the magnitude of the LPC inverse filter (order 16) fitted to the
    long-term spectrum, applied in the frequency domain and limited to the speech
    band. Zero phase matters: baseline and video get different gains, and a
    component they share (the sound) must stay in phase in both, or its narrow-band
    parts (the bed's bass and chords) correlate with arbitrary sign.
    """
    n_fft = sp_fft.next_fast_len(max(len(x), 1))
    gain = _band_taper(n_fft)
    if mean_power is not None:
        autocorr = sp_fft.irfft(mean_power.astype(np.float64), _N_FFT)[: _LPC_ORDER + 1]
        if autocorr[0] > 0:
            autocorr[0] *= 1.0 + 1e-6  # white-noise correction keeps the system well conditioned
            coeffs = sp_linalg.solve_toeplitz(autocorr[:_LPC_ORDER], -autocorr[1:])
            gain = gain * np.abs(sp_fft.rfft(np.concatenate(([1.0], coeffs)), n_fft))
    return sp_fft.irfft(sp_fft.rfft(x, n_fft) * gain, n_fft)[: len(x)]


@functools.lru_cache(maxsize=8)
def _band_taper(n_fft: int) -> np.ndarray:
    """Zero-phase band-pass gain on an rfft grid: 1 over the speech band, raised-cosine edges, 0 at DC and near Nyquist.

    Keeping the whitened signal away from Nyquist makes its correlation smooth
    enough between samples to interpolate the peak to a fraction of a sample.
    """
    f = np.fft.rfftfreq(n_fft, 1.0 / WORK_RATE)
    (lo0, lo1), (hi1, hi0) = _WHITE_EDGES_HZ
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((f - lo0) / (lo1 - lo0), 0.0, 1.0))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((f - hi1) / (hi0 - hi1), 0.0, 1.0))
    taper = rise * fall
    taper.flags.writeable = False  # shared by the cache
    return taper


def _log_mel(power: np.ndarray, mel_filters: np.ndarray = _MEL) -> np.ndarray:
    """(n_mels, frames) log-mel spectrogram of short-time power spectra, each frame's mean across bands removed.

    Frame k covers samples [k*_HOP, k*_HOP + _N_FFT) of the signal.
    """
    mel = power @ mel_filters.T
    mel = np.log(mel + _LOG_FLOOR * float(mel.mean()) + 1e-30)
    mel -= mel.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(mel.T, dtype=np.float32)


# --------------------------------------------------------------------------- NCC


def _ncc(products: np.ndarray, template_energy: float, window_energy: np.ndarray) -> np.ndarray:
    """NCC per lag from raw cross-products with a zero-mean template and each window's energy (0 where it has none)."""
    norm = np.sqrt(np.maximum(window_energy, 0.0) * template_energy)
    out = np.zeros(len(products))
    ok = norm > 1e-9 * max(float(norm.max(initial=0.0)), 1e-30)
    out[ok] = products[ok] / norm[ok]
    return out


def _running_sum(x: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis (float64) with a leading zero: window sums are differences of it."""
    out = np.zeros(x.shape[:-1] + (x.shape[-1] + 1,))
    np.cumsum(x, axis=-1, dtype=np.float64, out=out[..., 1:])
    return out


class _CoarseSearch:
    """Multi-band NCC of all snippets against one video's log-mel, from one FFT of the video.

    The bands of a (bands x frames) window are treated as one vector: each band's
    window mean is removed and the energies add up.
    """

    def __init__(self, video_feature: np.ndarray, template_spectra, n_fft: int):
        self.frames = video_feature.shape[1]
        self.n_fft = n_fft
        self.spectrum = sp_fft.rfft(video_feature, n_fft, axis=1)
        self.sum1 = _running_sum(video_feature)  # per band
        self.sum2 = _running_sum(np.square(video_feature, dtype=np.float64).sum(axis=0))  # all bands
        self.cross = sp_fft.irfft(np.einsum("pcf,cf->pf", template_spectra, self.spectrum), n_fft, axis=1)

    def curve(self, index: int, length: int, template_energy: float) -> np.ndarray:
        """NCC of snippet ``index`` (``length`` frames) at every lag keeping it inside the video."""
        n = self.frames - length + 1
        if length == 0 or n <= 0:
            return np.zeros(0)
        s1 = self.sum1[:, length : length + n] - self.sum1[:, :n]
        energy = self.sum2[length : length + n] - self.sum2[:n] - np.einsum("ij,ij->j", s1, s1) / length
        return _ncc(self.cross[index, :n], template_energy, energy)


@dataclass(frozen=True)
class _Fine:
    lag: float  # template start in the video's whitened signal (samples at WORK_RATE, to 1/8 sample)
    score: float  # NCC at lag
    peak_ratio: float  # score over the largest |NCC| within +-30 ms outside the peak's main lobe
    balance: float  # NCC of the worse-matching half of the prompt, over score (about 0 when half is missing)


def _lanczos(values: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Band-limited interpolation (Lanczos kernel) of ``values``, sampled at 0, 1, ..., at positions ``xs``."""
    k = np.floor(xs).astype(int)[:, None] + np.arange(1 - _LANCZOS_A, _LANCZOS_A + 1)
    d = xs[:, None] - k
    weights = np.sinc(d) * np.sinc(d / _LANCZOS_A) * ((k >= 0) & (k < len(values)))
    return np.sum(values[np.clip(k, 0, len(values) - 1)] * weights, axis=1)


@dataclass(frozen=True)
class _Template:
    """A snippet's whitened waveform, ready for the fine search: its energy and its FFT are computed once."""

    samples: np.ndarray  # zero-mean
    energy: float
    n_fft: int  # holds a video segment of len(samples) + 2 * _FINE_HALF: circular correlation is exact there
    spectrum: np.ndarray  # conjugated rfft of samples at n_fft

    @classmethod
    def of(cls, samples: np.ndarray) -> _Template:
        samples = (samples - samples.mean()).astype(np.float64)
        n_fft = sp_fft.next_fast_len(len(samples) + 2 * _FINE_HALF)
        return cls(samples, float(np.einsum("i,i->", samples, samples)), n_fft, np.conj(sp_fft.rfft(samples, n_fft)))


def _fine_search(template: _Template, video: np.ndarray, centre: float) -> _Fine | None:
    """Whitened-waveform NCC of ``template`` at lags centre +- 30 ms that keep it inside the video.

    The best integer lag is refined to 1/8 sample by interpolating the
    cross-correlation: a shift that falls between two samples would otherwise
    lose a large part of the score of a broadband signal.
    """
    length = len(template.samples)
    lo, hi = max(0, round(centre) - _FINE_HALF), min(len(video) - length, round(centre) + _FINE_HALF)
    if hi < lo:
        return None
    segment = video[lo : hi + length]
    products = sp_fft.irfft(sp_fft.rfft(segment, template.n_fft) * template.spectrum, template.n_fft)[: hi - lo + 1]
    sum2 = _running_sum(np.square(segment))
    energy = sum2[length:] - sum2[:-length]
    curve = _ncc(products, template.energy, energy)
    best = int(np.argmax(curve))
    lags = np.clip(best + np.arange(-4, 5) / 8, 0, len(curve) - 1)
    norms = np.sqrt(np.maximum(np.interp(lags, np.arange(len(energy)), energy) * template.energy, 1e-30))
    scores = _lanczos(products, lags) / norms
    x, peak = float(lags[int(np.argmax(scores))]), min(float(scores.max()), 1.0)  # interpolation may overshoot 1 a hair
    before = curve[max(0, best - _FINE_HALF) : max(0, best - _MAIN_LOBE)]
    after = curve[best + _MAIN_LOBE + 1 : best + _FINE_HALF + 1]
    sidelobe = float(np.abs(np.concatenate([before, after])).max(initial=0.0))
    return _Fine(
        lag=lo + x,
        score=peak,
        peak_ratio=peak / sidelobe if sidelobe > 0 else 0.0,
        balance=_halves_ncc(template.samples, segment, sum2, x) / peak if peak > 0 else 0.0,
    )


def _halves_ncc(template: np.ndarray, segment: np.ndarray, sum2: np.ndarray, x: float) -> float:
    """The lower of the NCCs of the template's two halves at lag ``x`` of ``segment``, ignoring a near-silent half.

    ``sum2`` is the running sum of the segment's squares. A prompt that an edit cut
    in half still correlates as a whole (about 0.7 times its full score), but the
    half that is missing does not correlate at all.
    """
    half = len(template) // 2
    n_lags = len(segment) - len(template) + 1
    k0, k1 = max(0, math.floor(x) - _LANCZOS_A + 1), min(n_lags - 1, math.floor(x) + _LANCZOS_A)
    total = float(np.einsum("i,i->", template, template))
    nccs = []
    for offset, part in ((0, template[:half]), (half, template[half:])):
        part_energy = float(np.einsum("i,i->", part, part))
        if part_energy < 0.05 * total:
            continue
        local = np.correlate(segment[k0 + offset : k1 + offset + len(part)], part, mode="valid")
        ks = np.arange(k0, k1 + 1)
        window_energy = float(np.interp(x, ks, sum2[ks + offset + len(part)] - sum2[ks + offset]))
        nccs.append(float(_lanczos(local, np.array([x - k0]))[0]) / math.sqrt(max(part_energy * window_energy, 1e-30)))
    return min(nccs)


def _peaks(curve: np.ndarray, min_distance: int, count: int) -> list[int]:
    """Indices of up to ``count`` maxima of ``curve``, best first, each at least ``min_distance`` from the better
    ones."""
    curve = curve.copy()
    found: list[int] = []
    while len(found) < count and curve.size and np.isfinite(curve).any():
        best = int(np.argmax(curve))
        found.append(best)
        curve[max(0, best - min_distance + 1) : best + min_distance] = -np.inf
    return found


# --------------------------------------------------------------------------- locate


@dataclass(frozen=True)
class _Snippet:
    """One prompt cut from the baseline, in both compared forms."""

    prompt: PromptSpan
    start: int  # span in the baseline, samples at WORK_RATE
    end: int
    white: _Template  # whitened waveform of the span
    frame0: int  # first coarse frame inside the span
    feature: np.ndarray  # zero-mean-per-band log-mel frames inside the span

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def centre_s(self) -> float:
        """Baseline time (s) of the centre of the coarse frames inside the span."""
        return ((self.frame0 + (self.feature.shape[1] - 1) / 2) * _HOP + _N_FFT / 2) / WORK_RATE


class PromptLocator:
    """A challenge's baseline cut into prompt snippets once, then located in any number of videos.

    ``locate(video)`` is ``locate_prompts`` without re-analysing the baseline, which
    is what the subvideos asset does for the thousands of videos of a challenge.
    """

    def __init__(
        self, baseline: np.ndarray, prompts: Sequence[PromptSpan], sample_rate: int, *, min_score: float = MIN_SCORE
    ):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not 0.0 < min_score <= 1.0:
            raise ValueError(f"min_score must lie in (0, 1], got {min_score}")
        baseline = np.asarray(baseline, dtype=np.float32)
        baseline_s = len(baseline) / sample_rate
        for i, p in enumerate(prompts):
            if p.end_s > baseline_s + 1.0 / sample_rate:
                raise ValueError(
                    f"prompt {p.label!r} ends at {p.end_s} s, after the baseline's end ({baseline_s:.3f} s)"
                )
            if i and p.start_s < prompts[i - 1].end_s:
                raise ValueError(f"prompt {p.label!r} starts before the prompt preceding it ends")
            if is_silent(baseline[int(p.start_s * sample_rate) : int(p.end_s * sample_rate)]):
                raise ValueError(f"the baseline is silent during prompt {p.label!r}")
        self.sample_rate = sample_rate
        self.min_score = min_score
        work = _to_work_rate(baseline, sample_rate)
        white, feature = _analyse(work)
        self.snippets: list[_Snippet] = []
        for p in prompts:
            start, end = round(p.start_s * WORK_RATE), min(round(p.end_s * WORK_RATE), len(work))
            frame0 = -(-start // _HOP)
            frame1 = max(frame0, (end - _N_FFT) // _HOP + 1)
            frames = feature[:, frame0:frame1]
            self.snippets.append(
                _Snippet(
                    prompt=p,
                    start=start,
                    end=end,
                    white=_Template.of(white[start:end]),
                    frame0=frame0,
                    feature=frames - frames.mean(axis=1, keepdims=True),
                )
            )
        self._max_frames = max((s.feature.shape[1] for s in self.snippets), default=0)
        self._feature_energy = [float(np.sum(np.square(s.feature, dtype=np.float64))) for s in self.snippets]
        self._spectra: dict[int, np.ndarray] = {}

    def _coarse_search(self, video_feature: np.ndarray) -> _CoarseSearch:
        """Coarse search of all snippets in ``video_feature``; snippet spectra are cached per FFT size."""
        n_fft = 1 << max(1, video_feature.shape[1] + self._max_frames - 1).bit_length()
        spectra = self._spectra.get(n_fft)
        if spectra is None:
            if len(self._spectra) >= _SPECTRA_CACHED:
                self._spectra.clear()
            stacked = np.zeros((len(self.snippets), _N_MELS, n_fft), dtype=np.float32)
            for i, s in enumerate(self.snippets):
                stacked[i, :, : s.feature.shape[1]] = s.feature
            spectra = self._spectra[n_fft] = np.conj(sp_fft.rfft(stacked, axis=2))
        return _CoarseSearch(video_feature, spectra, n_fft)

    def locate(self, video: np.ndarray) -> list[PromptMatch]:
        """Locate every prompt in ``video`` (mono float at the locator's sample rate); see ``locate_prompts``."""
        prompts = [s.prompt for s in self.snippets]
        if not prompts:
            return []
        if len(video) == 0:
            return unmatched(prompts, REASON_NO_AUDIO)
        if is_silent(np.asarray(video)):
            return unmatched(prompts, REASON_SILENT)
        work = _to_work_rate(video, self.sample_rate)
        matches = _VideoMatch(self, *_analyse(work)).run()
        if not any(m.reason == REASON_BELOW_THRESHOLD for m in matches):
            return _at_own_rate(matches)
        return _retimed(self, work, matches)


class _VideoMatch:
    """The matching of one video against a PromptLocator's snippets (state of one ``locate`` call)."""

    def __init__(self, locator: PromptLocator, white: np.ndarray, feature: np.ndarray):
        self.snippets = locator.snippets
        self.min_score = locator.min_score
        self.white = white
        self.coarse = locator._coarse_search(feature)
        self.feature_energy = locator._feature_energy
        self.tolerance = round(_SHIFT_TOLERANCE_S * WORK_RATE)
        self.overlap = round(_ORDER_OVERLAP_S * WORK_RATE)
        self.best_seen = [0.0] * len(self.snippets)

    def verify(self, i: int, shift: float, *, placed: bool = False) -> _Fine | None:
        """Fine match of snippet i near video position start + shift, when it passes the thresholds.

        ``placed``: the shift is one other prompts established. A periodic prompt (a
        held note, a beep) has sidelobes as high as its peak, one period away; there
        the shift has already said where it is, so a peak ratio under MIN_PEAK_RATIO
        is accepted when the score reaches MIN_PERIODIC_SCORE.
        """
        snippet = self.snippets[i]
        fine = _fine_search(snippet.white, self.white, snippet.start + shift)
        if fine is None:
            return None
        self.best_seen[i] = max(self.best_seen[i], fine.score)
        clear_peak = fine.peak_ratio >= MIN_PEAK_RATIO or (placed and fine.score >= MIN_PERIODIC_SCORE)
        passes = fine.score >= self.min_score and clear_peak and fine.balance >= MIN_HALF_RATIO
        return fine if passes else None

    def shift(self, i: int, fine: _Fine) -> float:
        """Shift (samples) of snippet i's match: its position in the video minus its position in the baseline."""
        return fine.lag - self.snippets[i].start

    def inside(self, i: int, shift: float) -> bool:
        """True when snippet i, moved by ``shift``, lies wholly inside the video."""
        s = self.snippets[i]
        return s.start + shift >= 0 and s.end + shift <= len(self.white)

    def groups(self, verified: list[list[_Fine]]) -> list[tuple[float, dict[int, _Fine]]]:
        """Verified matches grouped by shared shift (credible groups only), best supported first.

        Greedily, the shift with the largest summed score of the prompts agreeing with
        it (within the tolerance) becomes a group and its votes are removed. A group is
        credible when two prompts or more agree on its shift, or when its one match
        scores at least MIN_LONE_SCORE.
        """
        votes = [(self.shift(i, f), i, f) for i, fs in enumerate(verified) for f in fs]

        def members(centre: float) -> dict[int, _Fine]:
            best: dict[int, _Fine] = {}
            for shift, i, f in votes:
                if abs(shift - centre) <= self.tolerance and (i not in best or f.score > best[i].score):
                    best[i] = f
            return best

        def support(group: dict[int, _Fine]) -> float:
            return sum(f.score for f in group.values())

        groups = []
        while votes:
            centre = max((v[0] for v in votes), key=lambda shift: support(members(shift)))
            group = members(centre)
            if len(group) >= 2 or max(f.score for f in group.values()) >= MIN_LONE_SCORE:
                groups.append((centre, group))
            votes = [v for v in votes if abs(v[0] - centre) > self.tolerance]
        return sorted(groups, key=lambda g: -support(g[1]))

    def run(self) -> list[PromptMatch]:
        n_video = len(self.white)
        # Coarse candidates as shifts (video sample minus baseline sample), best first.
        candidates = []
        for i, s in enumerate(self.snippets):
            length = s.feature.shape[1]
            lags = _peaks(self.coarse.curve(i, length, self.feature_energy[i]), length // 2, _COARSE_CANDIDATES)
            candidates.append([(lag - s.frame0) * _HOP for lag in lags])
        verified = [[f for f in (self.verify(i, c) for c in shifts[:1]) if f] for i, shifts in enumerate(candidates)]
        groups = self.groups(verified)
        if not groups:  # nothing credible at the best coarse peaks: the other candidates get their turn
            for i, shifts in enumerate(candidates):
                verified[i] += [f for f in (self.verify(i, c) for c in shifts[1:]) if f]
            groups = self.groups(verified)

        chosen: list[_Fine | None] = [None] * len(self.snippets)
        reasons = [REASON_BELOW_THRESHOLD] * len(self.snippets)
        for i, s in enumerate(self.snippets):
            if s.length > n_video or (groups and not self.inside(i, groups[0][0])):
                reasons[i] = REASON_OUTSIDE_VIDEO
        # The best supported shift places its prompts and looks for the others where it puts
        # them; further groups (the parts of an edited video) place prompts only where they
        # fit between those already placed, in the baseline's order.
        for rank, (shift, members) in enumerate(groups):
            for i in range(len(self.snippets)):
                if chosen[i] is not None:
                    continue
                fine = members.get(i)
                if fine is None and self.inside(i, shift):
                    fine = self.verify(i, shift, placed=True)
                if fine is None:
                    continue
                if rank == 0 or self.fits_order(i, fine, chosen):
                    chosen[i] = fine
                else:
                    reasons[i] = REASON_OUT_OF_ORDER

        # Found spans are made disjoint: where two consecutive ones overlap (by at most
        # _ORDER_OVERLAP_S: a prompt whose start an edit cut off, or a few ms of drift
        # between adjacent prompts), the later one starts where the earlier one ends.
        matches = []
        previous_end = -math.inf
        for i, (s, fine) in enumerate(zip(self.snippets, chosen)):
            label = s.prompt.label
            if fine is None:
                matches.append(PromptMatch(label, i, False, None, None, round(self.best_seen[i], 6), reasons[i]))
                continue
            shift_s = self.shift(i, fine) / WORK_RATE
            start, end = round(s.prompt.start_s + shift_s, 6), round(s.prompt.end_s + shift_s, 6)
            start = max(start, previous_end)
            if start >= end:  # a prompt shorter than its overlap with the previous one: no span is left
                matches.append(PromptMatch(label, i, False, None, None, round(fine.score, 6), REASON_OUT_OF_ORDER))
                continue
            previous_end = end
            matches.append(PromptMatch(label, i, True, start, end, round(fine.score, 6), None))
        return matches

    def fits_order(self, i: int, fine: _Fine, chosen: list[_Fine | None]) -> bool:
        """True when snippet i at ``fine`` starts after every placed earlier prompt ends and ends before every
        later one starts."""
        start, end = fine.lag, fine.lag + self.snippets[i].length
        for j, other in enumerate(chosen):
            if other is None or j == i:
                continue
            if j < i and start < other.lag + self.snippets[j].length - self.overlap:
                return False
            if j > i and end > other.lag + self.overlap:
                return False
        return True


# --------------------------------------------------------------------------- another rate


def _stretched(feature: np.ndarray, rate: float) -> tuple[np.ndarray, float, float]:
    """``feature`` (a video's log-mel) on the baseline's time axis, for a sound played ``rate`` times faster.

    Returns the view and (scale, offset) turning its frame centres into video seconds:
    ``video_s = frame * scale + offset``.
    """
    n = int(feature.shape[1] * rate)
    pos = np.arange(n) / rate
    i = np.minimum(pos.astype(int), feature.shape[1] - 2)
    frac = (pos - i).astype(np.float32)
    view = feature[:, i] * (1 - frac) + feature[:, i + 1] * frac
    return view, _HOP / (rate * WORK_RATE), _N_FFT / 2 / WORK_RATE


def _stretch_view(power: np.ndarray, feature: np.ndarray, rate: float) -> tuple[np.ndarray, float, float]:
    """A sound time-stretched (tempo only, pitch kept) to ``rate``: only the time axis changes."""
    return _stretched(feature, rate)


def _resample_view(power: np.ndarray, feature: np.ndarray, rate: float) -> tuple[np.ndarray, float, float]:
    """A sound resampled to ``rate`` (pitch and tempo together): mel bands at ``rate`` times their frequencies too."""
    return _stretched(_log_mel(power, _mel_filterbank(_N_FFT, WORK_RATE, _N_MELS, *_MEL_BAND_HZ, rate)), rate)


_VIEWS = {"stretched": _stretch_view, "resampled": _resample_view}
_RATE_GRID = sorted(
    [("stretched", 1.0 + 0.01 * k) for k in (-4, -3, -2, -1, 1, 2, 3, 4)]
    + [("resampled", float(r)) for r in 0.75 * 1.03 ** np.arange(22) if abs(r - 1.0) > 0.04],
    key=lambda kind_rate: abs(math.log(kind_rate[1])),
)
"""Rates tried, nearest to 1 first, when the sound is not at its own: tempo only within 4 % (1 % apart:
a 2 s prompt then lies within 10 ms of its place at both ends), pitch and tempo together from 0.75 to
1.4 (3 % apart)."""
_RATE_WINDOW = {"stretched": 0.0075, "resampled": 0.02}  # lines fitted at a grid rate may lie this far from it
_LINE_TOLERANCE_S = 0.03  # a vote supports a line passing within this of it
_KEEP_TOLERANCE_S = 0.01  # a match at the sound's own rate this near a line's place is kept (it is finer)
_PLACE_FRAMES = 2  # at the fitted rate, a prompt's coarse peak is sought this many frames around the line's place
MIN_LINE_PROMPTS = 3
"""Prompts that must lie on one line for a sound at another rate to count as found."""
MIN_LINE_SCORE = 0.3
"""Minimum log-mel NCC of a prompt placed by a line at another rate."""


def _votes(locator: PromptLocator, view: np.ndarray, scale: float, offset: float) -> Votes:
    """The coarse candidates of every snippet in ``view`` as votes (snippet centres, baseline vs video seconds)."""
    search = locator._coarse_search(view)
    prompt, base_s, video_s, score = [], [], [], []
    for i, s in enumerate(locator.snippets):
        length = s.feature.shape[1]
        curve = search.curve(i, length, locator._feature_energy[i])
        for lag in _peaks(curve, max(1, length // 2), _COARSE_CANDIDATES):
            centre = _subframe(curve, lag) + (length - 1) / 2
            prompt.append(i)
            base_s.append(s.centre_s)
            video_s.append(centre * scale + offset)
            score.append(max(float(curve[lag]), 0.0))
    return Votes(np.array(prompt, dtype=int), np.array(base_s), np.array(video_s), np.array(score))


def _subframe(curve: np.ndarray, k: int) -> float:
    """Position of the maximum of ``curve`` near index k, refined by a parabola through its neighbours."""
    if 0 < k < len(curve) - 1:
        y0, y1, y2 = curve[k - 1], curve[k], curve[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            return k + 0.5 * float(y0 - y2) / float(denom)
    return float(k)


def _retimed(locator: PromptLocator, work: np.ndarray, matches: list[PromptMatch]) -> list[PromptMatch]:
    """``matches`` (at the sound's own rate) or, when more prompts lie on one line at another rate, those.

    Every rate of ``_RATE_GRID`` views the video on the baseline's time axis; the
    coarse candidates of all prompts vote for lines (``best_line``); the best
    supported line's kind and fitted rate give a last view, in which each prompt's
    coarse NCC near the line's place decides whether it is found (``MIN_LINE_SCORE``,
    with ``MIN_LINE_PROMPTS`` on the line). Spans are the line's: the baseline's span
    through the line. Prompts matched at the sound's own rate on the line keep that match.
    """
    if len(work) < 2 * _N_FFT:
        return matches
    power = _power(work)
    feature = _log_mel(power)
    best: tuple[Line, str] | None = None
    for kind, rate in _RATE_GRID:
        view, scale, offset = _VIEWS[kind](power, feature, rate)
        w = _RATE_WINDOW[kind]
        line = best_line(
            _votes(locator, view, scale, offset), (rate / (1 + w), rate * (1 + w)),
            tolerance_s=_LINE_TOLERANCE_S, min_prompts=MIN_LINE_PROMPTS,
        )
        if line is not None and (best is None or line.support > best[0].support):
            best = (line, kind)
            if len(line.members) * 2 >= len(locator.snippets):  # half the prompts agree: no other rate will do better
                break
    if best is None:
        return matches
    line, kind = best
    view, scale, offset = _VIEWS[kind](power, feature, line.rate)
    search = locator._coarse_search(view)
    duration_s, rate = len(work) / WORK_RATE, round(line.rate, 6)
    placed: list[PromptMatch] = []
    for i, s in enumerate(locator.snippets):
        p, length = s.prompt, s.feature.shape[1]
        start, end = line.video_s(p.start_s), line.video_s(p.end_s)
        if start < 0 or end > duration_s:
            placed.append(PromptMatch(p.label, i, False, None, None, 0.0, REASON_OUTSIDE_VIDEO))
            continue
        centre = (line.video_s(s.centre_s) - offset) / scale
        lag = round(centre - (length - 1) / 2)
        curve = search.curve(i, length, locator._feature_energy[i])
        near = curve[max(0, lag - _PLACE_FRAMES) : lag + _PLACE_FRAMES + 1]
        score = round(float(near.max(initial=0.0)), 6)
        own = matches[i]
        if own.found and abs(own.start_s - start) <= _KEEP_TOLERANCE_S:
            placed.append(replace(own, rate=rate))
        elif score >= MIN_LINE_SCORE:
            placed.append(PromptMatch(p.label, i, True, round(start, 6), round(end, 6), score, None, rate))
        else:
            placed.append(PromptMatch(p.label, i, False, None, None, score, REASON_BELOW_THRESHOLD))
    found = sum(m.found for m in placed)
    if found < MIN_LINE_PROMPTS or found <= sum(m.found for m in matches):
        return _at_own_rate(matches)
    return placed


def _at_own_rate(matches: list[PromptMatch]) -> list[PromptMatch]:
    """``matches`` made at the sound's own rate, saying so."""
    return [replace(m, rate=1.0) if m.found else m for m in matches]


def locate_prompts(
    baseline: np.ndarray,
    prompts: Sequence[PromptSpan],
    video: np.ndarray,
    sample_rate: int,
    *,
    min_score: float = MIN_SCORE,
) -> list[PromptMatch]:
    """Locate every prompt of ``baseline`` in ``video`` (both mono float signals at ``sample_rate``).

    Returns one ``PromptMatch`` per prompt, in the order of ``prompts`` (the
    baseline's order), with start/end in seconds of the video's audio. A prompt is
    found only when its whitened-waveform NCC is at least ``min_score`` with a
    clear peak, and it agrees with the shift shared by the other prompts or fits
    between them in the baseline's order; otherwise ``found`` is False and
    ``reason`` says why. Raises ValueError when the prompts are unordered, extend
    past the baseline, or the baseline is silent under a prompt. To match many
    videos against one baseline, build a ``PromptLocator`` once instead.
    """
    return PromptLocator(baseline, prompts, sample_rate, min_score=min_score).locate(video)
