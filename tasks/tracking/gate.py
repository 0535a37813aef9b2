"""The champion gate: does a new model version replace the registry's champion?"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Champion:
    """The version holding the champion alias, and its gate metric (None: not recorded)."""

    version: str
    value: float | None


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """Whether the candidate is promoted, and why (``reason`` names the values compared)."""

    promote: bool
    metric: str
    candidate_value: float | None
    champion: Champion | None
    reason: str


def decide(
    metric: str,
    candidate_version: str | None,
    candidate_value: float | None,
    champion: Champion | None,
    higher_is_better: bool,
) -> GateDecision:
    """The gate, in order: the candidate's value unknown → never promote (a model is not
    promoted on a metric nobody measured); no champion yet → promote; the candidate already
    is the champion (a retried registration; ``candidate_version`` None: not registered
    yet) → keep it; the champion's value unknown → promote; otherwise promote when the
    candidate's ``metric`` is strictly better (``higher_is_better`` says which way). Pure:
    it reads nothing."""

    def decision(promote: bool, reason: str) -> GateDecision:
        return GateDecision(promote, metric, candidate_value, champion, reason)

    if candidate_value is None:
        return decision(False, f"{metric} of the candidate is unknown")
    if champion is None:
        return decision(True, "no champion yet")
    if candidate_version is not None and champion.version == candidate_version:
        return decision(True, f"version {candidate_version} already is the champion")
    if champion.value is None:
        return decision(True, f"{metric} of champion version {champion.version} is unknown")
    better = (
        candidate_value > champion.value if higher_is_better else candidate_value < champion.value
    )
    sign = (">" if higher_is_better else "<") if better else ("<=" if higher_is_better else ">=")
    return decision(
        better,
        f"{metric} {candidate_value:.6g} {sign} {champion.value:.6g} of champion version "
        f"{champion.version}",
    )
