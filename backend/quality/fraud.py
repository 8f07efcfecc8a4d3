"""Fraud signals over a project's answers. Pure functions: answers in, flags out.

Each signal names the contributor, its kind, and the evidence, so a requester can judge it:
- too_fast: answers quicker than the task type's floor (no human reads and labels that fast);
- constant: many answers that are all the same label while the project's answers vary;
- duplicate_accounts: two accounts agreeing far beyond what their own skills make likely
  (a binomial tail under independence), as when one account copies another or one person
  runs both;
- burst: more answers within one minute than the per-account rate limit allows.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

# Seconds below which an answer is not humanly possible, per task type.
DEFAULT_FLOORS_MS = {
    "image_classification": 800,
    "text_classification": 1000,
    "image_bbox": 2000,
    "transcription": 2000,
}


@dataclass(frozen=True)
class AnswerFacts:
    """What the detectors need to know about one answer."""

    answer_id: int
    contributor: str
    item_id: int
    answer_key: str  # canonical form of the answer (e.g. the label), compared for equality
    submitted_ms: int  # unix time in milliseconds
    time_on_task_ms: int


@dataclass(frozen=True)
class Flag:
    contributor: str
    kind: str
    detail: str
    answer_ids: tuple[int, ...]  # the answers held because of this flag


def too_fast(answers: Iterable[AnswerFacts], floor_ms: int) -> list[Flag]:
    per: dict[str, list[AnswerFacts]] = defaultdict(list)
    for a in answers:
        if a.time_on_task_ms < floor_ms:
            per[a.contributor].append(a)
    return [
        Flag(
            contributor=who,
            kind="too_fast",
            detail=f"{len(rows)} answer(s) in under {floor_ms} ms "
            f"(fastest {min(r.time_on_task_ms for r in rows)} ms)",
            answer_ids=tuple(sorted(r.answer_id for r in rows)),
        )
        for who, rows in sorted(per.items())
    ]


def constant_answers(
    answers: Sequence[AnswerFacts], *, min_answers: int, max_p_value: float
) -> list[Flag]:
    """Contributors who gave one answer every time (at least ``min_answers`` times), more
    often than an honest contributor would: one answering like the rest of the crowd gives
    answer k n times running with probability share_k ** n, share_k being k's share of the
    others' answers. Flagged below ``max_p_value``, split across the contributors tested
    (Bonferroni). A fixed count alone stopped honest people: on a balanced two-label project,
    8 equal answers come once in 128, and more often where one label dominates."""
    per: dict[str, list[AnswerFacts]] = defaultdict(list)
    for a in answers:
        per[a.contributor].append(a)
    tested = [(who, rows) for who, rows in sorted(per.items()) if len(rows) >= min_answers]
    counts = Counter(a.answer_key for a in answers)
    flags = []
    for who, rows in tested:
        keys = {r.answer_key for r in rows}
        if len(keys) != 1:
            continue
        key, others = next(iter(keys)), len(answers) - len(rows)
        if others == 0:
            continue  # nobody else to compare with
        share = (counts[key] - len(rows)) / others
        if share ** len(rows) < max_p_value / len(tested):
            flags.append(
                Flag(
                    contributor=who,
                    kind="constant",
                    detail=f"all {len(rows)} answers are {key}, while {share:.0%} of "
                    "everyone else's are",
                    answer_ids=tuple(sorted(r.answer_id for r in rows)),
                )
            )
    return flags


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p), summed in log space for stability."""
    if successes <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * log_p
        + (trials - k) * log_q
        for k in range(successes, trials + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def duplicate_accounts(
    answers: Sequence[AnswerFacts],
    expected_agreement: Mapping[tuple[str, str], float],
    *,
    min_shared: int,
    max_p_value: float,
    reference: Mapping[int, str] | None = None,
    min_shared_errors: int = 2,
) -> list[Flag]:
    """Pairs of contributors who agree beyond chance on the items they both answered.

    ``expected_agreement[(a, b)]`` (a < b) is the probability that two independent workers with
    their estimated skills give the same answer to an item (e.g. from Dawid-Skene confusion
    matrices); pairs missing from it are skipped. Both accounts of a flagged pair are flagged.
    With ``reference`` (item -> the consensus or gold answer key), a pair must also share at
    least ``min_shared_errors`` identical wrong answers: two good workers agree because both
    are right, while copies repeat each other's mistakes.
    """
    by_item: dict[int, dict[str, AnswerFacts]] = defaultdict(dict)
    for a in answers:
        by_item[a.item_id][a.contributor] = a
    shared: dict[tuple[str, str], list[tuple[AnswerFacts, AnswerFacts]]] = defaultdict(list)
    for item_answers in by_item.values():
        for x, y in combinations(sorted(item_answers), 2):
            shared[(x, y)].append((item_answers[x], item_answers[y]))
    flags = []
    for (x, y), pairs in sorted(shared.items()):
        if len(pairs) < min_shared or (x, y) not in expected_agreement:
            continue
        agree = sum(1 for a, b in pairs if a.answer_key == b.answer_key)
        if reference is not None:
            shared_errors = sum(
                1
                for a, b in pairs
                if a.answer_key == b.answer_key
                and a.item_id in reference
                and a.answer_key != reference[a.item_id]
            )
            if shared_errors < min_shared_errors:
                continue
        p = expected_agreement[(x, y)]
        p_value = binomial_tail(agree, len(pairs), p)
        if p_value <= max_p_value:
            detail = (
                f"agrees with {{other}} on {agree} of {len(pairs)} shared items; "
                f"independent workers of their skill would agree on {p:.0%} "
                f"(p-value {p_value:.1e})"
            )
            for who, other in ((x, y), (y, x)):
                flags.append(
                    Flag(
                        contributor=who,
                        kind="duplicate_accounts",
                        detail=detail.format(other=other),
                        answer_ids=tuple(
                            sorted(r.answer_id for r in answers if r.contributor == who)
                        ),
                    )
                )
    return flags


def bursts(answers: Iterable[AnswerFacts], *, per_minute: int) -> list[Flag]:
    """Contributors with more than ``per_minute`` answers inside any 60-second window."""
    per: dict[str, list[AnswerFacts]] = defaultdict(list)
    for a in answers:
        per[a.contributor].append(a)
    flags = []
    for who, rows in sorted(per.items()):
        rows.sort(key=lambda r: (r.submitted_ms, r.answer_id))
        start, worst = 0, 0
        for end, row in enumerate(rows):
            while row.submitted_ms - rows[start].submitted_ms >= 60_000:
                start += 1
            worst = max(worst, end - start + 1)
        if worst > per_minute:
            flags.append(
                Flag(
                    contributor=who,
                    kind="burst",
                    detail=f"{worst} answers within one minute; the limit is {per_minute}",
                    answer_ids=tuple(sorted(r.answer_id for r in rows)),
                )
            )
    return flags
