"""The straight line most prompts agree on: video time = offset + baseline time / rate.

A performer's video plays one sound at one rate (1.0, a few percent off when a phone's
clock drifts or an app time-stretches it, 0.8-1.35 when it was "sped up" or slowed
down), so the places where its prompts are found lie on one line against their places
in the baseline. Each prompt votes with a few candidate places (``Votes``); the line
is the one through two votes of different prompts that the most prompts' best votes
support (RANSAC over all pairs, which are few: prompts x candidates), refined by a
weighted least-squares fit of its supporters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Votes:
    """Candidate places of prompts: prompt index, baseline time, video time (s) and score of each candidate."""

    prompt: np.ndarray
    base_s: np.ndarray
    video_s: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Line:
    """video_s = offset_s + base_s / rate, and the best supporting vote of each prompt on it."""

    offset_s: float
    rate: float
    support: float  # summed score of the supporting votes, one per prompt
    members: dict[int, int]  # prompt index -> index of its supporting vote

    def video_s(self, base_s: float) -> float:
        return self.offset_s + base_s / self.rate


def _supporters(votes: Votes, slope: np.ndarray, offset: np.ndarray, tolerance_s: float) -> np.ndarray:
    """(lines, votes) scores of the votes within ``tolerance_s`` of each line, one (the best) per prompt."""
    residual = np.abs(votes.video_s[None, :] - (offset[:, None] + slope[:, None] * votes.base_s[None, :]))
    scores = np.where(residual <= tolerance_s, votes.score[None, :], 0.0)
    best = np.zeros_like(scores)
    for p in np.unique(votes.prompt):  # each prompt counts once: its best vote on the line
        cols = np.flatnonzero(votes.prompt == p)
        pick = cols[np.argmax(scores[:, cols], axis=1)]
        rows = np.arange(len(scores))
        best[rows, pick] = scores[rows, pick]
    return best


def _fit(votes: Votes, members: np.ndarray) -> tuple[float, float]:
    """Slope and offset of the least-squares line through ``members``, weighted by their scores."""
    slope, offset = np.polyfit(votes.base_s[members], votes.video_s[members], 1, w=np.sqrt(votes.score[members]))
    return float(slope), float(offset)


def best_line(
    votes: Votes, rate_range: tuple[float, float], *, tolerance_s: float, min_prompts: int, min_span_s: float = 1.0
) -> Line | None:
    """The line with the largest support among those through two votes with a rate in ``rate_range``.

    ``min_prompts`` prompts at least must support it (None otherwise); a pair of votes
    less than ``min_span_s`` apart in the baseline does not define a line (its rate is too uncertain).
    """
    n = len(votes.score)
    a, b = np.triu_indices(n, 1)
    keep = (votes.prompt[a] != votes.prompt[b]) & (np.abs(votes.base_s[b] - votes.base_s[a]) >= min_span_s)
    a, b = a[keep], b[keep]
    if not len(a):
        return None
    slope = (votes.video_s[b] - votes.video_s[a]) / (votes.base_s[b] - votes.base_s[a])
    ok = (slope >= 1 / rate_range[1]) & (slope <= 1 / rate_range[0])
    a, b, slope = a[ok], b[ok], slope[ok]
    if not len(a):
        return None
    offset = votes.video_s[a] - slope * votes.base_s[a]
    support = _supporters(votes, slope, offset, tolerance_s)
    best = int(np.argmax(support.sum(axis=1)))
    members = np.flatnonzero(support[best] > 0)
    if len(members) < min_prompts:
        return None
    for _ in range(2):  # refit on the supporters, then collect the supporters of the refined line
        slope_fit, offset_fit = _fit(votes, members)
        refined = _supporters(votes, np.array([slope_fit]), np.array([offset_fit]), tolerance_s)[0]
        if np.count_nonzero(refined) < min_prompts:
            break
        members = np.flatnonzero(refined > 0)
    slope_fit, offset_fit = _fit(votes, members)
    return Line(
        offset_s=float(offset_fit),
        rate=float(1.0 / slope_fit),
        support=float(votes.score[members].sum()),
        members={int(votes.prompt[m]): int(m) for m in members},
    )
