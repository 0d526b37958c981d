"""Benchmark of the subvideos matching: locating 13 prompts vs decoding the video's audio.

Builds, in a temporary directory, a 60 s challenge video the way a performer makes
one: the baseline sound (13 spoken prompts, synthesised by ffmpeg's lavfi ``flite``
source, over a beeping music-like bed) starts 1.234 s into the video, the performer
adds their own bed at 0 dB relative to the prompts, and the result is encoded as
AAC (44.1 kHz) in an mp4 with a video stream. Then, in the same run, it measures the
median over ``--repeats`` runs of:

* decode: ``decode_audio(video)`` (ffprobe + one ffmpeg decode to mono float);
* locate: ``PromptLocator.locate(signal)``, the per-video cost in the subvideos
  asset (the baseline is analysed once per challenge), and ``locate_prompts``
  (baseline analysis included);

and prints both, their ratio (goal: locate / decode < 1) and the accuracy of the
located prompts against the known truth. The same is measured for the decoded audio
"sped up" by ``SPED_UP`` (resampled: pitch and tempo together), where the matcher
searches the rates of ``matching._RATE_GRID`` once the sound's own rate fails. Both are
measured at the matcher's working rate (8 kHz, what the asset decodes at) and at 16 kHz.

Run: ``.venv/bin/python bench/bench_subvideos.py [--repeats 7]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ffmpeg
import numpy as np
from scipy.io import wavfile

from tiktokfer_assets.audio.decode import decode_audio
from tiktokfer_assets.audio.matching import WORK_RATE, PromptLocator, PromptSpan, locate_prompts
from tiktokfer_assets.testkit.generator import retime

DURATION_S = 60.0
SHIFT_S = 1.234  # the sound starts this late in the video
RATE = 16000
SPED_UP = 1.1  # the rate of the re-timed variant of the video's audio
PROMPT_RMS = 0.1
WORDS = [
    "who can make the best emoji face", "here we go", "kiss", "disgust", "clenched teeth", "surprise",
    "eye roll", "cringe", "angry", "sad", "cry", "thinking face", "clown face",
]  # fmt: skip


def _lavfi(source: str, path: Path) -> np.ndarray:
    """Render an ffmpeg lavfi audio source to a WAV at RATE and return its samples."""
    (
        ffmpeg.input(source, f="lavfi").output(str(path), ac=1, ar=RATE)
        .global_args("-nostdin", "-loglevel", "error")
        .overwrite_output()
        .run()
    )
    return decode_audio(path, RATE)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def build(tmp: Path) -> tuple[Path, list[PromptSpan], Path, list[float]]:
    """Baseline audio file, its prompts, the encoded challenge video and the true prompt starts in it."""
    rng = np.random.default_rng(7)
    d = DURATION_S
    # Music-like beds: a beeping tone (a beep every second) over coloured noise.
    bed_base = _lavfi(f"sine=f=196:beep_factor=3:d={d}[a];anoisesrc=color=pink:a=0.08:d={d}:seed=1[b];"
                      "[a][b]amix=inputs=2", tmp / "bed0.wav")
    bed_perf = _lavfi(f"sine=f=247:beep_factor=5:d={d}[a];anoisesrc=color=brown:a=0.15:d={d}:seed=2[b];"
                      "[a][b]amix=inputs=2", tmp / "bed1.wav")
    n = int(DURATION_S * RATE)
    baseline = np.zeros(n, dtype=np.float32)
    bed = bed_base[:n]
    baseline[: len(bed)] = 0.5 * PROMPT_RMS * bed / _rms(bed)  # the sound's own bed, 6 dB under the prompts
    prompts = []
    slot = (DURATION_S - SHIFT_S - 2.0) / len(WORDS)
    for i, words in enumerate(WORDS):
        voice = _lavfi(f"flite=text='{words}':voice=kal16", tmp / f"prompt{i}.wav")
        voice = PROMPT_RMS * voice / _rms(voice)
        start = 0.5 + i * slot + rng.uniform(0.0, max(0.0, slot - len(voice) / RATE - 0.2))
        a = int(start * RATE)
        baseline[a : a + len(voice)] += voice
        prompts.append(PromptSpan(words.replace(" ", "_"), a / RATE, (a + len(voice)) / RATE))
    shifted = np.zeros(n, dtype=np.float32)
    s = int(SHIFT_S * RATE)
    shifted[s:] = baseline[: n - s]
    performer = PROMPT_RMS * bed_perf[:n] / _rms(bed_perf[:n])  # 0 dB music-to-prompt ratio
    mix = 0.7 * (shifted + performer) / np.max(np.abs(shifted + performer))
    wavfile.write(tmp / "baseline.wav", RATE, baseline)
    wavfile.write(tmp / "video_audio.wav", RATE, mix.astype(np.float32))
    video = tmp / "video.mp4"
    picture = ffmpeg.input(f"color=c=gray:s=320x568:r=30:d={DURATION_S}", f="lavfi")
    sound = ffmpeg.input(str(tmp / "video_audio.wav"))
    (
        ffmpeg.output(picture, sound, str(video), vcodec="libx264", preset="ultrafast", acodec="aac", ar=44100,
                      audio_bitrate="128k", shortest=None)
        .global_args("-nostdin", "-loglevel", "error")
        .overwrite_output()
        .run()
    )
    return tmp / "baseline.wav", prompts, video, [p.start_s + SHIFT_S for p in prompts]


def _timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_subvideos_") as tmp_name:
        baseline_wav, prompts, video, truth = build(Path(tmp_name))
        print(f"video: {DURATION_S:.0f} s, {len(prompts)} prompts, AAC 44.1 kHz in mp4, performer bed at 0 dB, "
              f"sound shifted by {SHIFT_S} s")
        for rate in (WORK_RATE, 16000):
            baseline = decode_audio(baseline_wav, rate)
            locator = PromptLocator(baseline, prompts, rate)
            # The three measurements alternate within each repeat so that a busy machine slows all alike.
            sped = retime(decode_audio(video, rate), rate, speed=SPED_UP)
            decode_t, locate_t, full_t, sped_t = [], [], [], []
            for _ in range(args.repeats):
                t, signal = _timed(lambda: decode_audio(video, rate))
                decode_t.append(t)
                t, matches = _timed(lambda: locator.locate(signal))
                locate_t.append(t)
                full_t.append(_timed(lambda: locate_prompts(baseline, prompts, signal, rate))[0])
                t, sped_matches = _timed(lambda: locator.locate(sped))
                sped_t.append(t)
            decode_s, locate_s, full_s, sped_s = (statistics.median(ts) for ts in (decode_t, locate_t, full_t, sped_t))
            print(f"\n@ {rate} Hz (median of {args.repeats})")
            print(f"  decode_audio                     {decode_s * 1000:8.1f} ms")
            print(f"  PromptLocator.locate (per video) {locate_s * 1000:8.1f} ms   "
                  f"locate / decode = {locate_s / decode_s:.2f}")
            print(f"  locate_prompts (baseline too)    {full_s * 1000:8.1f} ms   "
                  f"locate / decode = {full_s / decode_s:.2f}")
            _accuracy(matches, truth)
            sped_ratio = sped_s / decode_s
            print(f"  locate, sound at {SPED_UP}x           {sped_s * 1000:8.1f} ms   "
                  f"locate / decode = {sped_ratio:.2f}")
            _accuracy(sped_matches, [t / SPED_UP for t in truth])


def _accuracy(matches, truth: list[float]) -> None:
    found = [m for m in matches if m.found]
    errors_ms = [abs(m.start_s - truth[m.prompt_index]) * 1000 for m in found] or [float("nan")]
    rates = sorted({m.rate for m in found})
    print(f"  found {len(found)}/{len(matches)}, start error median {statistics.median(errors_ms):.2f} ms, "
          f"max {max(errors_ms):.2f} ms, rate {rates}")


if __name__ == "__main__":
    main()
