"""Synthetic sets whose label lives only in the order of events: two classes (is A before B?)
as a generic CSV or as a YOOCHOOSE clicks/buys pair, or K classes (which of K events that
every sequence holds once comes first?) as a generic CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

SYNTH_FILLERS = ("C", "D", "E", "F", "G", "H")
SYNTH_ITEMS = {"A": "214536502", "B": "214536500", "C": "214577561", "D": "214662742",
               "E": "214825110", "F": "214757390", "G": "214757407", "H": "214551617"}
SYNTH_CATEGORIES = {"A": "0", "B": "0", "C": "S", "D": "1", "E": "2", "F": "3", "G": "3", "H": "12"}


@dataclass
class SynthSequence:
    label: int | str
    events: list[str]
    values: np.ndarray  # numeric field, independent of the label
    gaps: np.ndarray  # seconds since the previous event


def synth_sequences(n: int, seed: int = 0, positive_rate: float = 0.3,
                    min_events: int = 6, max_events: int = 30) -> list[SynthSequence]:
    """Every sequence holds exactly one A and one B among fillers C..H; label 1 iff A comes first.

    Both classes have the same counts of every event and the same lengths, so a bag of
    events carries no signal: only the order does.
    """
    if n < 1 or not 0 < positive_rate < 1 or not 2 <= min_events <= max_events:
        raise ConfigError("synth needs --sequences >= 1, 0 < --positive_rate < 1 and 2 <= --min_events <= --max_events")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        label = int(rng.random() < positive_rate)
        length = int(rng.integers(min_events, max_events + 1))
        events = [str(e) for e in rng.choice(SYNTH_FILLERS, size=length)]
        first, second = sorted(rng.choice(length, size=2, replace=False))
        events[first], events[second] = ("A", "B") if label else ("B", "A")
        values = np.round(rng.normal(size=length), 3)
        gaps = np.round(rng.exponential(20.0, size=length), 3)
        out.append(SynthSequence(label, events, values, gaps))
    return out


def signal_events(k: int) -> list[str]:
    """A, B, C... (S01, S02... past 26): the events whose order is the label."""
    if k <= 26:
        return [chr(ord("A") + i) for i in range(k)]
    return [f"S{i + 1:0{len(str(k))}d}" for i in range(k)]


K_FILLERS = ("u", "v", "w", "x", "y", "z")


def synth_k_sequences(n: int, k: int, seed: int = 0, min_events: int | None = None,
                      max_events: int | None = None) -> list[SynthSequence]:
    """Every sequence holds each of k signal events once, in random order, among fillers;
    its label is the signal event that comes first (classes equally likely).

    Every class has the same counts of every event and the same lengths, so a bag of events
    is at chance (1/k): only the order tells.
    """
    min_events = max(6, k) if min_events is None else min_events
    max_events = max(30, 3 * k) if max_events is None else max_events
    if n < 1 or k < 2 or not k <= min_events <= max_events:
        raise ConfigError(f"synth --classes {k} needs --sequences >= 1 and {k} <= --min_events <= --max_events: "
                          "each sequence holds each of the classes' events once")
    rng, signals = np.random.default_rng(seed), signal_events(k)
    out = []
    for _ in range(n):
        length = int(rng.integers(min_events, max_events + 1))
        events = [str(e) for e in rng.choice(K_FILLERS, size=length)]
        slots = np.sort(rng.choice(length, size=k, replace=False))
        order = rng.permutation(k)
        for slot, which in zip(slots, order):
            events[slot] = signals[which]
        values = np.round(rng.normal(size=length), 3)
        gaps = np.round(rng.exponential(20.0, size=length), 3)
        out.append(SynthSequence(signals[order[0]], events, values, gaps))
    return out


def write_synth_csv(path: str | Path, seqs: list[SynthSequence], seed: int = 0) -> int:
    """session_id,timestamp,event,value,label; rows sorted by time, so sessions interleave."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for sid, s in enumerate(seqs, start=1):
        t = 1_700_000_000 + float(rng.uniform(0, 86_400)) + np.cumsum(s.gaps)
        rows += [(round(float(ti), 3), sid, e, float(v), s.label) for ti, e, v in zip(t, s.events, s.values)]
    rows.sort()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["session_id", "timestamp", "event", "value", "label"])
        w.writerows((sid, f"{t:.3f}", e, v, y) for t, sid, e, v, y in rows)
    return len(rows)


def write_synth_yoochoose(clicks: str | Path, buys: str | Path, seqs: list[SynthSequence], seed: int = 0) -> int:
    """clicks: session,timestamp,item,category; buys: session,timestamp,item,price,quantity (no headers)."""
    rng = np.random.default_rng(seed + 1)
    start = np.datetime64("2014-04-01T00:00:00.000", "ms")
    n_clicks = 0
    with open(clicks, "w", newline="") as fc, open(buys, "w", newline="") as fb:
        wc, wb = csv.writer(fc), csv.writer(fb)
        for sid, s in enumerate(seqs, start=1):
            t = start + np.timedelta64(int(rng.uniform(0, 180 * 86_400_000)), "ms")
            for e, gap in zip(s.events, s.gaps):
                t = t + np.timedelta64(int(gap * 1000), "ms")
                wc.writerow([sid, f"{t}Z", SYNTH_ITEMS[e], SYNTH_CATEGORIES[e]])
                n_clicks += 1
            if s.label:
                for _ in range(int(rng.integers(1, 3))):
                    t = t + np.timedelta64(int(rng.exponential(60_000)), "ms")
                    item = SYNTH_ITEMS[str(rng.choice(s.events))]
                    wb.writerow([sid, f"{t}Z", item, int(rng.integers(1, 200)) * 10, int(rng.integers(1, 4))])
    return n_clicks
