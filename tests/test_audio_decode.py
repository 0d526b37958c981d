"""Audio decoding of real media files made with ffmpeg's lavfi sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tiktokfer_assets.audio.decode import AudioDecodeError, NoAudioError, decode_audio, is_silent, signal_dbfs


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def test_wav_resampled_to_the_requested_rate(tmp_path: Path) -> None:
    # 2.0 s of a 440 Hz sine (lavfi's amplitude: 1/8) as 44.1 kHz stereo PCM.
    path = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "2", str(path))
    for rate in (16000, 8000):
        x = decode_audio(path, rate)
        assert x.dtype == np.float32 and x.ndim == 1
        assert abs(len(x) - 2 * rate) <= 2
        assert peak_hz(x, rate) == pytest.approx(440, abs=1.0)
        # Both channels carry the sine, so the downmix keeps its amplitude: RMS = 0.125 / sqrt(2).
        assert float(np.sqrt(np.mean(x[rate // 10 : -rate // 10] ** 2))) == pytest.approx(0.125 / np.sqrt(2), rel=0.02)


def test_aac_in_mp4_with_a_video_stream(tmp_path: Path) -> None:
    # 3 s of noise plus a 1 kHz tone, AAC at 48 kHz, in an mp4 whose first stream is video.
    path = tmp_path / "clip.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=3",
        "-f", "lavfi", "-i", "anoisesrc=color=white:amplitude=0.05:sample_rate=48000:duration=3:seed=1",
        "-filter_complex", "[1:a][2:a]amix=inputs=2:normalize=0[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-b:a", "128k", str(path),
    )  # fmt: skip
    x = decode_audio(path)
    assert x.dtype == np.float32
    assert abs(len(x) - 3 * 16000) < 0.05 * 16000  # AAC frames pad the ends by a few ms
    assert peak_hz(x, 16000) == pytest.approx(1000, abs=2.0)
    assert np.max(np.abs(x)) <= 1.0
    assert not is_silent(x)


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    # 300 Hz only on the left, 1200 Hz only on the right: mono keeps both.
    path = tmp_path / "stereo.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=1200:sample_rate=16000:duration=1",
        "-filter_complex", "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]", str(path),
    )  # fmt: skip
    x = decode_audio(path)
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    at = lambda f: spectrum[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert at(300) > 100 * at(700) and at(1200) > 100 * at(700)
    assert at(300) == pytest.approx(at(1200), rel=0.05)


def test_video_without_audio_raises_no_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent_film.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
           str(path))
    with pytest.raises(NoAudioError) as caught:
        decode_audio(path)
    assert isinstance(caught.value, AudioDecodeError)
    assert caught.value.path == str(path)


def test_text_file_named_mp4_raises_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "not_a_video.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(AudioDecodeError) as caught:
        decode_audio(path)
    assert not isinstance(caught.value, NoAudioError)
    assert str(path) in str(caught.value)
    assert "Invalid data" in str(caught.value)  # ffprobe's own words, passed on


def test_truncated_file_raises_decode_error(tmp_path: Path) -> None:
    # The first 2 KiB of a real mp4 (the moov atom is at the end): ffprobe cannot read it.
    full, cut = tmp_path / "full.mp4", tmp_path / "cut.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(full))
    cut.write_bytes(full.read_bytes()[:2048])
    with pytest.raises(AudioDecodeError):
        decode_audio(cut)


def test_missing_file_raises_decode_error(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="No such file"):
        decode_audio(tmp_path / "nowhere.mp4")


def test_silence_and_levels(tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=sample_rate=16000:channel_layout=mono", "-t", "1", str(path))
    nothing = decode_audio(path)
    assert len(nothing) == 16000 and is_silent(nothing)
    assert is_silent(np.zeros(0, dtype=np.float32))
    tone = (0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    assert signal_dbfs(tone) == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.01)  # -23 dBFS
    assert not is_silent(tone)
    assert is_silent(tone, threshold_dbfs=-20.0)
    assert is_silent(tone * 1e-3)  # -83 dBFS


def test_rate_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        decode_audio(tmp_path / "x.wav", 0)
