"""How sure a search is of each choice: winning probability, margin, entropy, stability.

Per choice (a switch of a ChoiceOp or a value parameter) and recorded step, from the
distribution the strategy's mixture reports, normalised to sum to one (FairDARTS's independent
sigmoids included):

- `probability`: of the most probable option (1/K is uniform over K options);
- `margin`: that probability minus the runner-up's;
- `entropy`: the entropy divided by log K (1: uniform, 0: one option has everything);
- `stable_since`: the first recorded step from which the most probable option never changed.

A choice is **undecided** when its margin is below `MIN_MARGIN` (0.1) or its winner has held for
less than `MIN_STABLE_FRACTION` (a quarter) of the search's steps: the selection is then close
to an argmax of noise. On the result, the numbers describe the selected option (after the
strategy's own rule and any connectivity repair): its probability, its margin over the best
other option (negative when another option is more probable) and since when it has been the
most probable (None: it is not).

Decision phases. A strategy that ends with a phase sharpening its mixture until it commits (the
default DrNAS, `DARTS(temperature="sharpen")`; `Strategy.decision_start`) makes every final margin
large, whatever the evidence was. For those, each choice also gets `evidence`: the same numbers
at the last recorded step before the phase (the selected option's probability and margin then,
and the step), and a choice counts as decided only if it is decided there too (margin >= 0.1 for
the option that is finally selected, leading for a quarter of the steps before the phase): an
option the phase picked among near-equals is reported as undecided, however sure it ends.
"""

from __future__ import annotations

import math
from typing import Any, Collection, Mapping, Optional, Sequence

ON_UNDECIDED = ("warn", "raise", "ignore")
MIN_MARGIN = 0.1
MIN_STABLE_FRACTION = 0.25
STATISTICS = ("winner", "probability", "margin", "entropy", "stable_since")


class UndecidedWarning(RuntimeWarning):
    """Some choices of a search are undecided (see `undecided_message`)."""


class UndecidedError(RuntimeError):
    """`fit_supernet(on_undecided="raise")` found undecided choices; `result` is the SearchResult."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def normalised(probabilities: Sequence[float]) -> list[float]:
    """The scores divided by their sum (uniform when they sum to zero)."""
    total = float(sum(probabilities))
    if total <= 0 or not math.isfinite(total):
        return [1.0 / len(probabilities)] * len(probabilities)
    return [float(p) / total for p in probabilities]


def entropy(probabilities: Sequence[float]) -> float:
    """Entropy over log K: 1 for the uniform distribution, 0 for a one-hot one (and K = 1)."""
    if len(probabilities) < 2:
        return 0.0
    return -sum(p * math.log(p) for p in probabilities if p > 0) / math.log(len(probabilities))


def step_statistics(probabilities: Sequence[float]) -> dict[str, Any]:
    """{winner (position of the most probable option), probability, margin, entropy} of one distribution."""
    p = normalised(probabilities)
    order = sorted(range(len(p)), key=lambda i: -p[i])
    runner_up = p[order[1]] if len(p) > 1 else 0.0
    return {"winner": order[0], "probability": p[order[0]], "margin": p[order[0]] - runner_up, "entropy": entropy(p)}


class ConfidenceTrack:
    """The statistics of every choice at every recorded step, as plain columnar lists."""

    def __init__(self, switch_ids: Sequence[str]) -> None:
        self.series: dict[str, dict[str, list]] = {sid: {k: [] for k in STATISTICS} for sid in switch_ids}

    def record(self, step: int, probabilities: Mapping[str, Sequence[float]]) -> None:
        for sid, p in probabilities.items():
            series, now = self.series[sid], step_statistics(p)
            for key, value in now.items():
                series[key].append(value)
            unchanged = series["winner"][-2:-1] == [now["winner"]]
            series["stable_since"].append(series["stable_since"][-1] if unchanged else step)

    def as_dict(self) -> dict[str, dict[str, list]]:
        return {sid: {k: list(v) for k, v in series.items()} for sid, series in self.series.items()}

    def load(self, saved: Mapping[str, Mapping[str, Sequence]]) -> None:
        self.series = {sid: {k: list(v) for k, v in series.items()} for sid, series in saved.items()}


def result_confidence(
    architecture: Mapping[str, Any],
    probabilities: Mapping[str, Sequence[float]],
    option_values: Mapping[str, Sequence],
    option_names: Mapping[str, Sequence[str]],
    history: Mapping[str, Any],
    inactive: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """Switch id -> {option, probability, margin, entropy, stable_since, decided} of the selection,
    and `active: False` for the ids in `inactive`: choices the selected architecture does not run
    (`supernet.active_parameters.inactive_choices`), never reported as undecided."""
    steps = history.get("steps") or [0]
    tracked = history.get("confidence", {})
    evidence_at = evidence_index(history)
    confidence = {}
    for sid, scores in probabilities.items():
        values = list(option_values.get(sid, range(len(scores))))
        chosen = architecture.get(sid)
        position = values.index(chosen) if chosen in values else max(range(len(scores)), key=lambda i: scores[i])
        p = normalised(scores)
        best_other = max((p[i] for i in range(len(p)) if i != position), default=0.0)
        winners = tracked.get(sid, {}).get("winner", [])
        stable_since: Optional[int] = None
        if winners and winners[-1] == position:
            stable_since = tracked[sid]["stable_since"][-1]
        names = option_names.get(sid)
        entry = {
            "option": names[position] if names is not None and position < len(names) else str(chosen),
            "probability": p[position],
            "margin": p[position] - best_other,
            "entropy": entropy(p),
            "stable_since": stable_since,
        }
        entry["decided"] = is_decided(entry, steps[0], steps[-1])
        if evidence_at is not None and sid in history.get("probabilities", {}):
            entry["evidence"] = evidence_entry(history, sid, position, evidence_at)
            entry["decided"] = entry["decided"] and is_decided(entry["evidence"], steps[0], steps[evidence_at])
        if sid in inactive:
            entry["active"] = False  # absent: active (so results saved before this read the same)
        confidence[sid] = entry
    return confidence


def evidence_index(history: Mapping[str, Any]) -> Optional[int]:
    """The index of the last recorded step before the decision phase (None: no such phase, or
    nothing was recorded before it)."""
    start, epochs = history.get("decision_epoch"), history.get("epochs") or []
    if start is None:
        return None
    before = [i for i, epoch in enumerate(epochs) if epoch < start]
    return before[-1] if before and before[-1] < len(epochs) - 1 else None


def evidence_entry(history: Mapping[str, Any], sid: str, position: int, index: int) -> dict[str, Any]:
    """{probability, margin, stable_since, step} of option `position` of `sid` at recorded step `index`."""
    p = normalised(history["probabilities"][sid][index])
    best_other = max((p[i] for i in range(len(p)) if i != position), default=0.0)
    series = history.get("confidence", {}).get(sid, {})
    leads = series.get("winner", [None] * (index + 1))[index] == position
    return {
        "probability": p[position],
        "margin": p[position] - best_other,
        "stable_since": series["stable_since"][index] if leads else None,
        "step": history["steps"][index],
    }


def is_decided(entry: Mapping[str, Any], first_step: int, last_step: int) -> bool:
    """Margin of at least MIN_MARGIN, and the winner held for at least MIN_STABLE_FRACTION of the steps."""
    if entry["margin"] < MIN_MARGIN or entry["stable_since"] is None:
        return False
    return last_step - entry["stable_since"] >= MIN_STABLE_FRACTION * (last_step - first_step)


def is_active(entry: Mapping[str, Any]) -> bool:
    """Whether a choice's entry is one the selected architecture runs (results saved before
    inactive choices were marked count as active)."""
    return bool(entry.get("active", True))


def undecided_message(confidence: Mapping[str, Mapping[str, Any]], strategy: str, steps: int) -> Optional[str]:
    """The warning for the undecided active choices (None when every active choice is decided);
    inactive choices do not affect the network, so they are left out."""
    undecided = [sid for sid, entry in confidence.items() if not entry["decided"] and is_active(entry)]
    if not undecided:
        return None
    active = sum(is_active(entry) for entry in confidence.values())
    inactive = len(confidence) - active
    counted = f"{active}" + (f" active (and {inactive} inactive)" if inactive else "")
    shown = "; ".join(
        f"{sid}: {confidence[sid]['option']} at p={confidence[sid]['probability']:.3f}, margin {confidence[sid]['margin']:.3f}, "
        + (
            f"winner since step {confidence[sid]['stable_since']}"
            if confidence[sid]["stable_since"] is not None
            else "not the most probable option"
        )
        for sid in undecided
    )
    phase = next((e["evidence"]["step"] for e in confidence.values() if "evidence" in e), None)
    phased = (
        f" -- judged on the evidence at step {phase}, before the decision phase, which commits to one option "
        "however close the options were"
        if phase is not None
        else ""
    )
    return (
        f"{len(undecided)} of {counted} choices are undecided after {steps} steps of {strategy} (margin below "
        f"{MIN_MARGIN} or a winner that changed in the last {MIN_STABLE_FRACTION:.0%} of the steps{phased}): {shown}. "
        "The selection there is close to an argmax of noise; "
        + (
            "more epochs (more evidence before the phase) would help, or the options are equally good there"
            if phase is not None
            else "more epochs, a larger architecture learning rate (optim={'arch_lr': ...}), or a sampling strategy "
            "(drnas, gdas, snas) would help"
        )
        + "; see result.summary()"
    )


def summary_table(
    confidence: Mapping[str, Mapping[str, Any]], label: Any = str, inactive: Optional[Collection[str]] = None
) -> str:
    """A plain-text table: one row per choice (label(switch id)), its selection and confidence
    (and, after a decision phase, the evidence before it); an inactive choice reads "inactive"
    (the selected architecture does not run it) instead of UNDECIDED; `inactive` (None: the
    entries' own marks) names those choices."""
    phased = any("evidence" in e for e in confidence.values())
    header = ("choice", "selected", "p", "margin", "entropy", "stable since")
    header += ("p before decision", "margin before", "") if phased else ("",)
    rows = [header]
    for sid, e in confidence.items():
        row = (
            label(sid),
            str(e["option"]),
            f"{e['probability']:.3f}",
            f"{e['margin']:+.3f}",
            f"{e['entropy']:.3f}",
            "-" if e["stable_since"] is None else str(e["stable_since"]),
        )
        if phased:
            before = e.get("evidence")
            row += (f"{before['probability']:.3f}", f"{before['margin']:+.3f}") if before else ("-", "-")
        off = not is_active(e) if inactive is None else sid in inactive
        rows.append(row + ("inactive" if off else "" if e["decided"] else "UNDECIDED",))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
