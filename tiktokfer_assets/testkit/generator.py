"""Build a challenge whose true answers are known, from the real photos in the data folder.

The demo and every test use it. It writes, under ``out_dir``:

- ``baseline.mp4``: the original video: the baseline creator's photos over "the
  sound", a synthetic song with spoken prompts (espeak-ng speech) at known times;
- ``videos/*.mp4``: performances: other people over the same sound,
  started at another offset, re-mixed with their own background music and noise,
  volume ramps, another sample rate; plus the awkward cases a real challenge has:
  a landscape video filmed sideways, a split-screen duet with the baseline creator,
  a video with no audio track, a truncated file, a video longer than
  ``max_video_seconds`` and one that stops before the last prompts;
- ``challenge.yaml``: the challenge definition (local-folder source);
- ``truth.json``: who is in each video and where, which photo and expression is on
  screen when (``on_screen``), where each prompt is spoken in each video's timeline
  (and whether it is present at all), and how a performer is defined (``performers``).

Performers make real expressions. A performer is one person of the labelled
expression photos (``media/expressions/<class>/<Name>_<n>.jpg``; the person is the
file name without its number) who has a neutral photo and photos of other classes.
Outside expression windows the performer shows their neutral photo; from
``EXPRESSION_LEAD_S`` before an expression prompt is spoken to ``EXPRESSION_HOLD_S``
after it ends, their photo of that prompt's class; a performer without a photo of
that class steps out of the picture (an empty panel) for the window. Every video
of a performer shows the same photos, and a single-face video is one track, so
identity clustering sees one track mean per video that is dominated by the
performer's neutral photo: one individual per performer (tests/test_individuals_assets.py).
A name that is a folder of ``media/faces`` instead is a person whose (unlabelled)
photos are shown in turn all along, as the trending monitor's tests need.

Everything is deterministic given the seed (espeak-ng, numpy's generator, and
ffmpeg's encoders with fixed settings).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np
import yaml
from scipy.io import wavfile
from scipy.signal import resample_poly

from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.crops import PHOTO_SUFFIXES

SAMPLE_RATE = 22050  # espeak-ng's native rate; the sound is built at this rate
WIDTH, HEIGHT = 360, 640  # portrait, like a phone video
MARGIN = 10  # the canvas is larger by this on each side, so frames can drift
FPS = 15

# (label, words spoken); the first is an instruction, the rest are expressions
DEFAULT_PROMPTS = [
    ("ready", "ready, go"),
    ("surprise", "surprise"),
    ("angry", "angry"),
    ("sad", "sad"),
    ("disgust", "disgust"),
    ("happy", "happy"),
]
# prompt label -> expression class of the photos (media/expressions/<class>/); None: an instruction.
# Labels not listed here (a test's own prompts) are instructions too.
DEFAULT_EXPRESSIONS = {
    "ready": None, "surprise": "surprise", "angry": "anger", "sad": "sadness", "disgust": "disgust",
    "happy": "happiness",
}
NEUTRAL = "neutral"  # the class shown outside expression windows
PROMPT_SPACING_S = 2.0
SOUND_LEAD_S = 0.6
# A performer shows the expression from this long before the prompt starts to this long after it ends
# (the label span found from the audio is within ~0.05 s of the spoken one; the next prompt starts >= 2 s later).
EXPRESSION_LEAD_S = 0.3
EXPRESSION_HOLD_S = 0.7
DEMO_PEOPLE = 5  # the creator and four performers


@dataclass
class VideoPlan:
    """One generated video: who is in it, and how its audio relates to the sound."""

    video_id: str
    people: list[str]  # one person, or two for a duet (left, right)
    shift_s: float = 0.0  # the sound's t=0 is at this time of the video
    duration_s: float | None = None  # None: until the sound ends, plus a tail
    music_to_prompt_db: float | None = 0.0  # the performer's own music; None: none
    noise_db: float = -35.0
    speed: float = 1.0  # the sound plays this many times faster, its pitch with it (1.25: "sped up")
    tempo: float = 1.0  # the sound is time-stretched this many times faster, its pitch kept
    gain_ramp: tuple[float, float] = (1.0, 1.0)
    audio_rate: int = 44100
    has_audio: bool = True
    sideways: bool = False  # filmed in landscape: content rotated 90 degrees clockwise
    corrupt: bool = False  # the file is cut short (moov atom lost)


@dataclass
class GeneratedChallenge:
    root: Path
    challenge_yaml: Path
    truth_json: Path
    truth: dict = field(repr=False)

    def video(self, video_id: str) -> dict:
        return next(v for v in self.truth["videos"] if v["video_id"] == video_id)




def person_photos(person: str, root: Path | None = None) -> list[Path]:
    folder = (root or media_dir()) / "faces" / person
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no photos of {person} in {folder}; run `tiktokfer fetch` first")
    return photos


def expression_performers(root: Path | None = None) -> dict[str, dict[str, Path]]:
    """Performers of the expression photos: person -> {class: photo} (the first photo of each class).

    A person is a file name without its trailing number (``George_W_Bush_0012.jpg``); only
    people with a neutral photo and at least one other class qualify. Ordered by the number of
    classes (most first), then by name.
    """
    folder = (root or media_dir()) / "expressions"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing; run `tiktokfer fetch` first")
    photos: dict[str, dict[str, Path]] = {}
    for photo in sorted(folder.glob("*/*")):
        if photo.suffix.lower() in PHOTO_SUFFIXES:
            person = re.sub(r"_\d+$", "", photo.stem)
            photos.setdefault(person, {}).setdefault(photo.parent.name, photo)
    qualified = {p: c for p, c in photos.items() if NEUTRAL in c and len(c) >= 2}
    return dict(sorted(qualified.items(), key=lambda item: (-len(item[1]), item[0])))


@dataclass(frozen=True)
class Segment:
    """A photo on one panel from start_s to end_s; expression None: not labelled (a media/faces photo)."""

    start_s: float
    end_s: float
    photo: Path
    expression: str | None


def schedule(person: str, windows: list[tuple[float, float, str]], duration_s: float,
             root: Path | None = None) -> list[Segment]:
    """What ``person`` shows when, over ``duration_s``, given the expression windows (start, end, class)."""
    if ((root or media_dir()) / "faces" / person).is_dir():
        photos = person_photos(person, root)
        seg = duration_s / len(photos)
        return [Segment(round(k * seg, 3), round((k + 1) * seg, 3), photo, None) for k, photo in enumerate(photos)]
    performers = expression_performers(root)
    if person not in performers:
        raise ValueError(f"{person!r} is neither a folder of media/faces nor an expression performer")
    photos = performers[person]
    segments, t = [], 0.0
    for start, end, expression in windows:
        start, end = max(start, 0.0), min(end, duration_s)
        if end <= start:
            continue
        if start > t:
            segments.append(Segment(round(t, 3), round(start, 3), photos[NEUTRAL], NEUTRAL))
        if expression in photos:
            segments.append(Segment(round(start, 3), round(end, 3), photos[expression], expression))
        t = end
    if t < duration_s:
        segments.append(Segment(round(t, 3), round(duration_s, 3), photos[NEUTRAL], NEUTRAL))
    return segments


def expression_windows(spans: list[dict], expressions: dict[str, str | None], shift_s: float) -> list[tuple]:
    """(start, end, class) in a video's timeline for every expression prompt of the sound."""
    return [
        (span["start_s"] + shift_s - EXPRESSION_LEAD_S, span["end_s"] + shift_s + EXPRESSION_HOLD_S,
         expressions[span["label"]])
        for span in spans if expressions.get(span["label"]) is not None
    ]


def available_people(root: Path | None = None) -> list[str]:
    """The demo's people: the expression performers with the most classes (the last is the creator);
    under a photo folder without ``expressions/``, its ``faces/`` people."""
    base = root or media_dir()
    if (base / "expressions").is_dir():
        return list(expression_performers(root))[:DEMO_PEOPLE]
    if not (base / "faces").is_dir():
        raise FileNotFoundError(f"{base}/expressions is missing; run `tiktokfer fetch` first")
    return sorted(p.name for p in (base / "faces").iterdir() if p.is_dir())


# --- audio -------------------------------------------------------------------------------


def speak(words: str, workdir: Path) -> np.ndarray:
    """``words`` spoken by espeak-ng, float32 at SAMPLE_RATE, leading/trailing silence cut."""
    wav = workdir / f"speech_{re.sub(r'[^a-z0-9]+', '_', words.lower())}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-a", "180", "-w", str(wav), words], check=True)
    rate, data = wavfile.read(wav)
    assert rate == SAMPLE_RATE, rate
    signal = data.astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(signal) > 0.02)
    return signal[loud[0] : loud[-1] + 1]


def synth_music(duration_s: float, rng: np.random.Generator, *, bpm: float, root_hz: float) -> np.ndarray:
    """A song-like backing track: chords with harmonics on every beat, a kick and hi-hats. Peak-normalised."""
    n = int(round(duration_s * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    beat = 60.0 / bpm
    progression = [0, 5, 7, 3, 8, 10]
    for k, start in enumerate(np.arange(0.0, duration_s, beat)):
        i0, i1 = int(start * SAMPLE_RATE), min(n, int((start + beat) * SAMPLE_RATE))
        tt = t[i0:i1] - start
        envelope = np.exp(-tt * rng.uniform(2.0, 4.0))
        chord_root = root_hz * 2 ** (progression[(k // 4) % len(progression)] / 12)
        for interval in (0, 4, 7):
            f = chord_root * 2 ** (interval / 12)
            for h, amp in ((1, 1.0), (2, 0.4), (3, 0.2)):
                out[i0:i1] += 0.2 * amp * envelope * np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 2 * np.pi))
        kick = np.sin(2 * np.pi * (60 + 80 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 12)
        out[i0:i1] += 0.8 * kick
        hat_at = int(beat / 2 * SAMPLE_RATE)
        hat_len = min(i1 - i0 - hat_at, int(0.04 * SAMPLE_RATE))
        if hat_len > 0:
            out[i0 + hat_at : i0 + hat_at + hat_len] += 0.15 * rng.standard_normal(hat_len)
    return (out / np.max(np.abs(out))).astype(np.float32)


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0


def build_sound(prompts, workdir: Path, rng: np.random.Generator) -> tuple[np.ndarray, list[dict], float]:
    """The challenge's sound: backing music with prompts spoken over it.

    Returns the signal, the prompt spans (seconds in the sound) and the speech RMS.
    """
    spoken = [(label, speak(words, workdir)) for label, words in prompts]
    spans, t = [], SOUND_LEAD_S
    for label, speech in spoken:
        spans.append({"label": label, "start_s": round(t, 3), "end_s": round(t + len(speech) / SAMPLE_RATE, 3)})
        t += max(PROMPT_SPACING_S, len(speech) / SAMPLE_RATE + 0.6)
    duration = t + 0.4
    sound = 0.12 * synth_music(duration, rng, bpm=112, root_hz=196.0)
    speech_rms = []
    for (label, speech), span in zip(spoken, spans):
        i0 = int(round(span["start_s"] * SAMPLE_RATE))
        sound[i0 : i0 + len(speech)] += 0.7 * speech
        speech_rms.append(rms(0.7 * speech))
    peak = np.max(np.abs(sound))
    return (sound / peak * 0.9).astype(np.float32), spans, float(np.mean(speech_rms)) / peak * 0.9


def retime(signal: np.ndarray, sample_rate: int, *, speed: float = 1.0, tempo: float = 1.0) -> np.ndarray:
    """``signal`` played ``speed`` times faster with its pitch (resampled), then ``tempo`` times faster without it
    (ffmpeg's rubberband time-stretcher: prompts stay within 2 ms of baseline time / tempo at 0.97-1.03)."""
    out = np.asarray(signal, dtype=np.float32)
    if speed != 1.0:
        ratio = Fraction(speed).limit_denominator(1000)
        out = resample_poly(out, ratio.denominator, ratio.numerator).astype(np.float32)
    if tempo != 1.0:
        with tempfile.TemporaryDirectory(prefix="tiktokfer-tempo-") as tmp:
            src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
            wavfile.write(src, sample_rate, out)
            stretched = ffmpeg.input(str(src)).filter("rubberband", tempo=tempo)
            stretched.output(str(dst), acodec="pcm_f32le").run(quiet=True)
            out = wavfile.read(dst)[1].astype(np.float32)
    return out


def performance_audio(sound: np.ndarray, speech_rms: float, plan: VideoPlan, duration_s: float, rng) -> np.ndarray:
    """What a performer's phone records: the sound at ``shift_s`` (re-timed), their music, noise and volume changes."""
    sound = retime(sound, SAMPLE_RATE, speed=plan.speed, tempo=plan.tempo)
    n = int(round(duration_s * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float64)
    shift = int(round(plan.shift_s * SAMPLE_RATE))
    src0, dst0 = max(0, -shift), max(0, shift)
    length = min(len(sound) - src0, n - dst0)
    if length > 0:
        out[dst0 : dst0 + length] = sound[src0 : src0 + length]
    out *= np.linspace(plan.gain_ramp[0], plan.gain_ramp[1], n)
    if plan.music_to_prompt_db is not None:
        music = synth_music(duration_s, rng, bpm=float(rng.uniform(85, 140)), root_hz=float(rng.uniform(150, 330)))
        out += music[:n] * speech_rms * 10 ** (plan.music_to_prompt_db / 20) / max(rms(music), 1e-9)
    out += rng.standard_normal(n) * 10 ** (plan.noise_db / 20)
    out = np.clip(out, -1.0, 1.0)  # what a phone's limiter does to loud mixes
    return out.astype(np.float32)


def write_wav(path: Path, signal: np.ndarray, rate: int) -> None:
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        signal = resample_poly(signal, rate // g, SAMPLE_RATE // g).astype(np.float32)
    wavfile.write(path, rate, (np.clip(signal, -1, 1) * 32767).astype(np.int16))


# --- video -------------------------------------------------------------------------------


def _fit(photo: Path, box_w: int, box_h: int) -> tuple[int, int]:
    """Size of ``photo`` scaled to fit inside box_w x box_h, keeping its aspect (even numbers)."""
    info = ffmpeg.probe(str(photo))["streams"][0]
    w, h = int(info["width"]), int(info["height"])
    scale = min(box_w / w, box_h / h)
    return int(w * scale) // 2 * 2, int(h * scale) // 2 * 2


def _panel(segments: list[Segment], duration_s: float, bg: str):
    """A WIDTH x HEIGHT stream showing each segment's photo over its span, drifting slowly; and each
    segment's rectangle. Photos are overlaid on a plain background (the panel is empty between them)."""
    canvas_w, canvas_h = WIDTH + 2 * MARGIN, HEIGHT + 2 * MARGIN
    video = ffmpeg.input(f"color=c={bg}:s={canvas_w}x{canvas_h}:r={FPS}:d={duration_s}", f="lavfi")
    rects = []
    for photo in dict.fromkeys(s.photo for s in segments):
        shown = [s for s in segments if s.photo == photo]
        sw, sh = _fit(photo, canvas_w, canvas_h)
        ox, oy = (canvas_w - sw) // 2, (canvas_h - sh) // 2
        image = ffmpeg.input(str(photo), loop=1, t=duration_s, framerate=FPS).filter("scale", sw, sh)
        enable = "+".join(f"between(t,{s.start_s},{s.end_s - 1e-3})" for s in shown)
        video = video.overlay(image, x=ox, y=oy, enable=enable, eof_action="pass")
        box = [max(0, ox - MARGIN), max(0, oy - MARGIN), min(WIDTH, ox - MARGIN + sw), min(HEIGHT, oy - MARGIN + sh)]
        rects += [{"start_s": s.start_s, "end_s": s.end_s, "photo": f"{photo.parent.name}/{photo.name}",
                   "expression": s.expression, "box": box} for s in shown]
    video = video.filter("setsar", 1).filter("format", "yuv420p")
    video = video.filter(
        "crop", WIDTH, HEIGHT, f"{MARGIN}+{MARGIN - 2}*sin(t*0.9)", f"{MARGIN}+{MARGIN - 2}*cos(t*0.7)"
    )
    return video, sorted(rects, key=lambda r: r["start_s"])


def _rotate_box_cw(box: list[int], height: int) -> list[int]:
    """A box in an upright frame of the given height, after the frame is turned 90 degrees clockwise."""
    x1, y1, x2, y2 = box
    return [height - y2, x1, height - y1, x2]


def render_video(path: Path, people_segments: list[list[Segment]], duration_s: float, wav: Path | None,
                 *, sideways: bool = False, faststart: bool = True) -> list[dict]:
    """Encode a video of one panel per person (side by side); returns where each person is."""
    backgrounds = ["0x2d3e50", "0x6b4e71", "0x3c6e47"]
    panels, people = [], []
    for k, segments in enumerate(people_segments):
        panel, rects = _panel(segments, duration_s, backgrounds[k % len(backgrounds)])
        panels.append(panel)
        for rect in rects:
            x1, y1, x2, y2 = rect["box"]
            rect["box"] = [x1 + k * WIDTH, y1, x2 + k * WIDTH, y2]
        people.append(rects)
    video = ffmpeg.filter(panels, "hstack", inputs=len(panels)) if len(panels) > 1 else panels[0]
    if sideways:
        video = video.filter("transpose", 1)
        for rects in people:
            for rect in rects:
                rect["box"] = _rotate_box_cw(rect["box"], HEIGHT)
    streams = [video]
    if wav is not None:
        streams.append(ffmpeg.input(str(wav)).audio)
    options = {"vcodec": "libx264", "preset": "ultrafast", "crf": 30, "pix_fmt": "yuv420p", "r": FPS, "t": duration_s}
    if wav is not None:
        options.update(acodec="aac", audio_bitrate="96k")
    if faststart:
        options["movflags"] = "+faststart"
    ffmpeg.output(*streams, str(path), **options).global_args("-threads", "2").overwrite_output().run(quiet=True)
    return people


def default_plans(people: list[str], creator: str, sound_s: float, max_video_seconds: float) -> list[VideoPlan]:
    """The demo's videos: every performer in at least two videos, and every awkward case once."""
    performers = [p for p in people if p != creator]
    if len(performers) < 2:
        raise ValueError("need at least three people (a creator and two performers)")
    a, b = performers[0], performers[1]
    c = performers[2 % len(performers)]
    d = performers[3 % len(performers)]
    full = sound_s + 1.0
    return [
        VideoPlan("v01", [a], shift_s=1.0, music_to_prompt_db=0.0, gain_ramp=(1.0, 0.7)),
        VideoPlan("v02", [b], shift_s=-0.8, music_to_prompt_db=10.0, audio_rate=48000),
        VideoPlan("v03", [c], shift_s=0.3, duration_s=7.5, music_to_prompt_db=0.0),  # stops early
        VideoPlan("v04", [d], shift_s=1.7, music_to_prompt_db=10.0, gain_ramp=(0.5, 1.4)),
        VideoPlan("v05", [a], shift_s=0.5, sideways=True, music_to_prompt_db=0.0),
        VideoPlan("v06", [creator, b], shift_s=0.0, music_to_prompt_db=None),  # duet
        VideoPlan("v07", [d], has_audio=False),
        VideoPlan("v08", [c], shift_s=2.0, duration_s=max(full + 2.0, max_video_seconds + 4.0), music_to_prompt_db=0.0),
        VideoPlan("v09", [b], shift_s=0.0, duration_s=8.0, corrupt=True),
    ]


def on_screen(people: list[dict]) -> list[dict]:
    """The truth's ``on_screen`` list: every photo shown, by whom, with its expression and region."""
    return sorted(
        ({"start_s": r["start_s"], "end_s": r["end_s"], "person": p["person"], "expression": r["expression"],
          "photo": r["photo"], "region": r["box"]} for p in people for r in p["regions"]),
        key=lambda entry: (entry["start_s"], entry["region"][0]),
    )


def build_challenge(
    out_dir: str | Path,
    *,
    name: str = "demo",
    seed: int = 0,
    people: list[str] | None = None,
    creator: str | None = None,
    plans: list[VideoPlan] | None = None,
    prompts: list[tuple[str, str]] | None = None,
    expressions: dict[str, str | None] | None = None,
    max_video_seconds: float = 20.0,
    photos_root: Path | None = None,
) -> GeneratedChallenge:
    """Write a generated challenge to ``out_dir`` (see the module docstring).

    ``expressions`` maps prompt labels to photo classes (default: :data:`DEFAULT_EXPRESSIONS`;
    a label it lacks is an instruction).
    """
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    people = people or available_people(photos_root)
    creator = creator or people[-1]
    prompts = prompts or DEFAULT_PROMPTS
    vocabulary = {label: (expressions or DEFAULT_EXPRESSIONS).get(label) for label, _ in prompts}
    with tempfile.TemporaryDirectory(prefix="tiktokfer-gen-") as tmp:
        work = Path(tmp)
        sound, spans, speech_rms = build_sound(prompts, work, rng)
        sound_s = len(sound) / SAMPLE_RATE
        plans = default_plans(people, creator, sound_s, max_video_seconds) if plans is None else plans

        def segments_of(person: str, shift_s: float, duration_s: float) -> list[Segment]:
            return schedule(person, expression_windows(spans, vocabulary, shift_s), duration_s, photos_root)

        baseline_wav = work / "baseline.wav"
        write_wav(baseline_wav, sound, 44100)
        baseline_people = render_video(
            out / "baseline.mp4", [segments_of(creator, 0.0, sound_s)], sound_s, baseline_wav
        )

        videos = []
        for plan in plans:
            rate = plan.speed * plan.tempo
            duration = plan.duration_s or round(max(plan.shift_s, 0) + sound_s / rate - max(-plan.shift_s, 0) + 1.0, 3)
            wav = None
            if plan.has_audio:
                wav = work / f"{plan.video_id}.wav"
                write_wav(wav, performance_audio(sound, speech_rms, plan, duration, rng), plan.audio_rate)
            path = out / "videos" / f"{plan.video_id}.mp4"
            placed = render_video(
                path, [segments_of(p, plan.shift_s, duration) for p in plan.people], duration, wav,
                sideways=plan.sideways, faststart=not plan.corrupt,
            )
            if plan.corrupt:  # lose the moov atom at the end: no player can open it
                data = path.read_bytes()
                path.write_bytes(data[: len(data) * 2 // 5])
            prompt_truth = []
            for span in spans:
                start, end = span["start_s"] / rate + plan.shift_s, span["end_s"] / rate + plan.shift_s
                present = plan.has_audio and not plan.corrupt and start >= 0 and end <= min(duration, max_video_seconds)
                prompt_truth.append(
                    {"label": span["label"], "start_s": round(start, 3), "end_s": round(end, 3), "present": present}
                )
            shown = [{"person": person, "regions": rects} for person, rects in zip(plan.people, placed)]
            videos.append({
                **{k: v for k, v in asdict(plan).items() if k != "people"},
                "file": f"videos/{plan.video_id}.mp4",
                "duration_s": duration,
                "people": shown,
                "on_screen": on_screen(shown),
                "duet_left_is_creator": len(plan.people) == 2 and plan.people[0] == creator,
                "prompts": prompt_truth,
            })

    baseline_shown = [{"person": creator, "regions": baseline_people[0]}]
    truth = {
        "challenge": name,
        "seed": seed,
        "sound_duration_s": round(sound_s, 3),
        "prompts": spans,
        "expressions": vocabulary,
        "performers": {
            "definition": (
                "a performer is one person of media/expressions (the file name without its number) with a neutral "
                "photo and photos of other classes; they show the neutral photo outside expression windows and "
                f"their photo of the prompt's class from {EXPRESSION_LEAD_S} s before to {EXPRESSION_HOLD_S} s "
                "after each expression prompt, or an empty panel when they have none; every video of a performer "
                "shows the same photos. A media/faces person shows their unlabelled photos in turn all along."
            ),
            "photos": {
                person: {k: f"{v.parent.name}/{v.name}" for k, v in expression_performers(photos_root)[person].items()}
                for person in dict.fromkeys([creator, *(p for plan in plans for p in plan.people)])
                if not ((photos_root or media_dir()) / "faces" / person).is_dir()
            },
        },
        "baseline": {"file": "baseline.mp4", "person": creator, "regions": baseline_people[0],
                     "on_screen": on_screen(baseline_shown), "duration_s": round(sound_s, 3)},
        "videos": videos,
    }
    truth_json = out / "truth.json"
    truth_json.write_text(json.dumps(truth, indent=1))
    definition = {
        "name": name,
        "description": f"generated test challenge (seed {seed}); ground truth in truth.json",
        "source": {"kind": "local_folder", "path": "videos"},
        "baseline": {"path": "baseline.mp4", "video_id": "baseline"},
        "prompts": spans,
        "expressions": vocabulary,
        "max_videos": 50,
        "max_video_seconds": max_video_seconds,
    }
    challenge_yaml = out / "challenge.yaml"
    challenge_yaml.write_text(yaml.safe_dump(definition, sort_keys=False))
    return GeneratedChallenge(out, challenge_yaml, truth_json, truth)
