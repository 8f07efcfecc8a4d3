"""Quality control: aggregate completed items, estimate skill, accept or reject answers,
send weak items to review, stop contributors below the bar, and hold flagged work.

One run covers a whole project (Dawid-Skene estimates every worker from all their answers)
and is idempotent: decisions already made (a finalised item, its answers' statuses) are
frozen, so a later run only decides what became decidable. Runs happen in the worker
(`quality.aggregate_pending`), never in the request path.
"""

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta
from itertools import combinations
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ScalarSelect, bindparam, exists, insert, inspect, update
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, func, select

from backend.core.errors import Forbidden
from backend.core.time import as_utc, utcnow
from backend.projects.models import SQL_FALSE, Item, Project
from backend.provenance.leaf import canonical_json
from backend.quality import fraud, scoring
from backend.quality.aggregation import (
    ItemTooLarge,
    aggregate_boxes,
    dawid_skene,
    gold_accuracy,
    json_medoid,
    krippendorff_alpha_nominal,
    text_medoid,
)
from backend.quality.models import (
    AnswerStatus,
    ContributorQuality,
    ContributorQualityPublic,
    FlagPublic,
    FraudFlag,
    ItemResult,
    QualityReport,
    SetAsideItem,
)
from backend.tasks.models import Answer

CLASSIFICATION = ("image_classification", "text_classification")
# Dawid-Skene here runs on a growing snapshot, from a project's first few answers on. There
# the classic model can decide an item for a lone dissent (two of three agreed, and nothing
# else told it who is reliable), rejecting and unpaying the two who were right. One agreeing
# pseudo-answer per class and contributor rules that out and fades as answers accumulate; on
# complete data it costs at most 2.1 points of accuracy, on web (bench/README.md, Aggregation).
AGREEMENT_PRIOR = 1.0
CONSTANT_MIN_ANSWERS = 8
# Per run and project, split across the contributors tested: an honest contributor is
# stopped for constant answers at most 1 % of the time.
CONSTANT_MAX_P_VALUE = 1e-2
DUPLICATE_MIN_SHARED = 8
# Per run and project, split across the pairs tested (Bonferroni): honest pairs are flagged
# at most 1% of the time, while a copier sharing a dozen items with a random clicker is not missed.
DUPLICATE_MAX_P_VALUE = 1e-2
# Flags that stop a contributor outright; too_fast answers are held one by one.
BLOCKING_FLAGS = ("constant", "duplicate_accounts", "burst")
ITEM_COLUMNS_READ = (
    "is_gold",
    "gold_answer",
    "answer_count",
    "extra_answers",
    "finalized",
    "set_aside_reason",
)
# A contributor's own view of their gold record moves once per this many answers of theirs
# (gold or not), by the block's count: polling after each answer tells no single gold item.
GOLD_STANDING_STEP = 10
# A gold answer's decision (accepted or rejected, and so paid or not) waits for the same
# block, or for its contributor to have been idle this long: statuses show in earnings, and
# a status that moved one run after an answer would name that answer's item as gold.
GOLD_IDLE_RELEASE = timedelta(hours=24)
# What a set-aside item's reason may quote of the error (the column holds 500 characters).
SET_ASIDE_DETAIL = 300

log = logging.getLogger("provenant.quality")
T = TypeVar("T")


def _answer_key(task_type: str, payload: dict[str, Any]) -> str:
    return payload["label"] if task_type in CLASSIFICATION else canonical_json(payload).decode()


def _gold_labels(items: dict[int, Item]) -> dict[int, str]:
    """item id -> known label, for a classification project's gold items."""
    return {k: i.gold_answer["label"] for k, i in items.items() if i.is_gold and i.gold_answer}


def _facts(task_type: str, answers: list[Answer]) -> list[fraud.AnswerFacts]:
    return [
        fraud.AnswerFacts(
            answer_id=a.id,  # type: ignore[arg-type]
            contributor=a.contributor,
            item_id=a.item_id,
            answer_key=_answer_key(task_type, a.payload),
            submitted_ms=int(a.submitted_at.timestamp() * 1000),
            time_on_task_ms=a.time_on_task_ms,
        )
        for a in answers
    ]


def _aggregate(project: Project, items: dict[int, Item], answers: list[Answer]) -> Any:
    """The project's consensus over ``answers`` with the method its task type uses."""
    task_type, schema = project.task_type, project.label_schema
    work = [a for a in answers if not items[a.item_id].is_gold]
    if task_type in CLASSIFICATION:
        gold = _gold_labels(items)
        rows = [(a.item_id, a.contributor, a.payload["label"]) for a in answers]
        if not rows:
            return None
        return dawid_skene(rows, schema["classes"], agreement_prior=AGREEMENT_PRIOR, gold=gold)
    if task_type == "image_bbox":
        rows = [(a.item_id, a.contributor, a.payload["boxes"]) for a in work]
        return aggregate_boxes(rows, classes=schema["classes"]) if rows else None
    if schema.get("format") == "json":
        rows = [(a.item_id, a.contributor, a.payload["data"]) for a in work]
        return json_medoid(rows) if rows else None
    rows = [(a.item_id, a.contributor, a.payload["text"]) for a in work]
    return text_medoid(rows) if rows else None


def _consensus(project: Project, result: Any, item_id: int) -> tuple[dict[str, Any], float] | None:
    """The item's consensus, answer-shaped, and its confidence; None if it has no answers."""
    task_type, schema = project.task_type, project.label_schema
    found = next((it for it in result.items if it.item == item_id), None) if result else None
    if found is None:
        return None
    if task_type in CLASSIFICATION:
        return {"label": found.label}, found.confidence
    if task_type == "image_bbox":
        boxes = [
            {k: b.to_dict()[k] for k in ("label", "x", "y", "width", "height")} for b in found.boxes
        ]
        confidence = min((b.confidence for b in found.boxes), default=1.0)
        return {"boxes": boxes}, confidence
    key = "data" if schema.get("format") == "json" else "text"
    return {key: found.value}, found.confidence


def _expected_agreement(
    project: Project, items: dict[int, Item], answers: list[Answer], result: Any
) -> dict[tuple[str, str], float]:
    """P(two independent workers give the same label), from each one's accuracy.

    Accuracy comes from gold items, because gold cannot be gamed by copying (only workers
    with enough gold answers are tested); in a project without gold, from the Dawid-Skene
    skill. (The Dawid-Skene
    confusion matrices themselves would not do: a copier and its source share one estimated
    confusion, which "explains" their agreement away.) With K classes and errors spread over
    the wrong ones: p = a*b + (1 - a)(1 - b)/(K - 1).
    """
    k = len(project.label_schema["classes"])
    gold = _gold_labels(items)
    if not gold:
        accuracy = {str(w.worker): float(w.skill) for w in result.workers}
    else:
        # A skill estimated early from agreement can be far too low for a good worker, and
        # then two good workers look like copies; with gold items, test only measured ones.
        needed = min(project.min_gold_answers, len(gold))
        rows = [(a.item_id, a.contributor, a.payload["label"]) for a in answers]
        accuracy = {
            str(g.worker): g.accuracy for g in gold_accuracy(rows, gold) if g.n_gold >= needed
        }
    return {
        (a, b): accuracy[a] * accuracy[b] + (1 - accuracy[a]) * (1 - accuracy[b]) / (k - 1)
        for a, b in combinations(sorted(accuracy), 2)
    }


def _detect_fraud(project: Project, answers: list[Answer]) -> list[fraud.Flag]:
    facts = _facts(project.task_type, answers)
    floor = project.min_ms_per_task
    if floor is None:
        floor = fraud.DEFAULT_FLOORS_MS[project.task_type]
    flags = fraud.too_fast(facts, floor)
    if project.task_type in CLASSIFICATION:
        flags += fraud.constant_answers(
            facts, min_answers=CONSTANT_MIN_ANSWERS, max_p_value=CONSTANT_MAX_P_VALUE
        )
    flags += fraud.bursts(facts, per_minute=project.max_answers_per_minute)
    return flags


def _held_ids(flags: list[fraud.Flag]) -> set[int]:
    return {i for f in flags for i in f.answer_ids}


def _flag_rows(session: Session, project_id: int) -> dict[tuple[str, str], FraudFlag]:
    rows = session.exec(select(FraudFlag).where(FraudFlag.project_id == project_id))
    return {(f.contributor, f.kind): f for f in rows}


def _quality_rows(session: Session, project_id: int) -> dict[str, ContributorQuality]:
    rows = session.exec(
        select(ContributorQuality).where(ContributorQuality.project_id == project_id)
    )
    return {q.contributor: q for q in rows}


def _save_flags(
    session: Session,
    project: Project,
    flags: list[fraud.Flag],
    existing: dict[tuple[str, str], FraudFlag],
) -> None:
    """Add or update one row per (contributor, kind); `existing` is _flag_rows' answer."""
    now = utcnow()
    # One row per (contributor, kind): a contributor paired with several accounts gets one
    # duplicate_accounts flag whose detail names every pairing.
    merged: dict[tuple[str, str], tuple[list[str], set[int]]] = {}
    for flag in flags:
        details, ids = merged.setdefault((flag.contributor, flag.kind), ([], set()))
        details.append(flag.detail)
        ids.update(flag.answer_ids)
    for (contributor, kind), (details, ids) in sorted(merged.items()):
        detail = "; ".join(details)[:500]
        row = existing.get((contributor, kind))
        if row is None:
            row = FraudFlag(
                project_id=project.id,  # type: ignore[arg-type]
                contributor=contributor,
                kind=kind,
                detail=detail,
                answers_held=len(ids),
                created_at=now,
                updated_at=now,
            )
        else:
            row.detail, row.answers_held, row.updated_at = detail, len(ids), now
        session.add(row)


def _contributor_standing(
    session: Session,
    project: Project,
    items: dict[int, Item],
    answers: list[Answer],
    result: Any,
    flags: list[fraud.Flag],
    existing: dict[str, ContributorQuality],
) -> dict[str, ContributorQuality]:
    """Update each contributor's standing; `existing` is _quality_rows' answer (updated)."""
    task_type, schema = project.task_type, project.label_schema
    counts = Counter(a.contributor for a in answers)
    gold_tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if task_type in CLASSIFICATION:
        rows = [(a.item_id, a.contributor, a.payload["label"]) for a in answers]
        for g in gold_accuracy(rows, _gold_labels(items)):
            gold_tally[str(g.worker)] = [g.n_gold, g.n_correct]
    else:
        for a in answers:
            item = items[a.item_id]
            if item.is_gold and item.gold_answer is not None:
                value = scoring.score(task_type, schema, a.payload, item.gold_answer)
                gold_tally[a.contributor][0] += 1
                gold_tally[a.contributor][1] += int(scoring.accepted(task_type, value))
    skills: dict[str, float] = {}
    if result is not None:
        for w in result.workers:
            # Box workers carry a mean-IoU score; every other method a skill.
            skills[str(w.worker)] = float(w.score if hasattr(w, "score") else w.skill)
    flag_reasons: dict[str, list[str]] = defaultdict(list)
    for f in flags:
        if f.kind in BLOCKING_FLAGS or len(f.answer_ids) * 2 >= counts[f.contributor]:
            flag_reasons[f.contributor].append(f"flagged {f.kind}: {f.detail}")

    now = utcnow()
    gold_needed = min(project.min_gold_answers, sum(1 for i in items.values() if i.is_gold))
    for who in sorted(counts):
        n_gold, n_correct = gold_tally.get(who, [0, 0])
        accuracy = n_correct / n_gold if n_gold else None
        skill = skills.get(who)
        reasons = list(flag_reasons.get(who, []))
        enough_gold = accuracy is not None and n_gold >= project.min_gold_answers
        if enough_gold and accuracy < project.min_gold_accuracy:  # type: ignore[operator]
            reasons.append(
                f"gold accuracy {accuracy:.0%} on {n_gold} gold tasks is below the "
                f"project's bar of {project.min_gold_accuracy:.0%}"
            )
        # In a project with gold items, the skill bar also waits for the gold record.
        enough_work = (
            project.min_skill > 0
            and counts[who] >= project.min_skill_answers
            and n_gold >= gold_needed
        )
        if enough_work and skill is not None:
            # Agreement-based skill is fooled early on, when bad contributors shape the
            # consensus; gold is not. Blend them, gold weighing as min_gold_answers answers.
            weight = project.min_gold_answers
            estimate = (n_correct + skill * weight) / (n_gold + weight)
            if estimate < project.min_skill:
                reasons.append(
                    f"estimated skill {estimate:.3f} (gold and agreement combined) is below "
                    f"the project's bar of {project.min_skill:.3f}"
                )
        row = existing.get(who) or ContributorQuality(
            project_id=project.id,  # type: ignore[arg-type]
            contributor=who,
            updated_at=now,
        )
        row.answers, row.gold_answered, row.gold_correct = counts[who], n_gold, n_correct
        row.gold_accuracy, row.skill = accuracy, skill
        # Once stopped, a contributor stays stopped: their later answers cannot lift the bar
        # they already fell under, and the requester can see why.
        if reasons and not row.blocked:
            row.blocked, row.blocked_reason = True, "; ".join(reasons)[:500]
        row.updated_at = now
        session.add(row)
        existing[who] = row
    return existing


def _settled_contributors(
    project: Project,
    items: dict[int, Item],
    answers: list[Answer],
    standing: dict[str, ContributorQuality],
) -> set[str]:
    """Contributors whose answers may decide an item now.

    A newcomer's answers wait until they have answered enough gold items (and, with a skill
    bar, enough items) for their quality to be known: otherwise two colluding newcomers
    outvote one proven contributor before anyone can tell. A contributor idle for longer
    than a lease no longer holds items back: they are decided with what there is.
    """
    n_gold = sum(1 for i in items.values() if i.is_gold)
    needed = min(project.min_gold_answers, n_gold)
    last_seen: dict[str, Any] = {}
    for a in answers:
        last_seen[a.contributor] = max(last_seen.get(a.contributor, a.submitted_at), a.submitted_at)
    idle_since = utcnow() - timedelta(seconds=project.lease_seconds)
    return {
        who
        for who, q in standing.items()
        if q.blocked
        or last_seen[who] < idle_since
        or (
            q.gold_answered >= needed
            and (project.min_skill == 0 or q.answers >= project.min_skill_answers)
        )
    }


def _by_item(answers: list[Answer]) -> dict[int, list[Answer]]:
    """Answers grouped by their item, each group in the order given."""
    by_item: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        by_item[a.item_id].append(a)
    return by_item


def _whole_blocks(answers: Sequence[T]) -> Sequence[T]:
    """A contributor's answers (in id order, those of set-aside items left out) up to their
    last whole block of GOLD_STANDING_STEP: the one rule for what their standing shows
    (my_quality) and which gold answers are decided (_gold_released)."""
    return answers[: len(answers) // GOLD_STANDING_STEP * GOLD_STANDING_STEP]


def _gold_released(answers: list[Answer], blocked: set[str]) -> set[int | None]:
    """Ids of the answers whose gold decision may be made now: those in a whole block of
    GOLD_STANDING_STEP answers (of any kind, in id order) of their contributor, and every
    answer of a contributor stopped, or idle for GOLD_IDLE_RELEASE. Deciding a gold answer
    the run after it came would show in the contributor's earnings which item was gold and
    whether they got it right (the block is the one /quality/me moves by)."""
    by_contributor: dict[str, list[Answer]] = defaultdict(list)
    for a in answers:  # in id order (aggregate_project reads them so)
        by_contributor[a.contributor].append(a)
    idle_since = utcnow() - GOLD_IDLE_RELEASE
    released: set[int | None] = set()
    for who, theirs in by_contributor.items():
        if who in blocked or as_utc(max(a.submitted_at for a in theirs)) < idle_since:
            released.update(a.id for a in theirs)
        else:
            released.update(a.id for a in _whole_blocks(theirs))
    return released


def aggregate_project(*, session: Session, project_id: int) -> dict[str, int]:
    """Decide everything that became decidable in a project; return what changed."""
    while True:
        changed = _run(session, project_id)
        if changed is not None:
            return changed
        # Items were set aside: run again, from a fresh read, without them. Each pass sets
        # aside at least one more item, so this ends.


def _run(session: Session, project_id: int) -> dict[str, int] | None:
    """One quality run; None if it set items aside instead of deciding anything."""
    started = time.perf_counter()
    project = session.get(Project, project_id)
    if project is None:
        return {}
    # Only the columns quality control reads: an item's text or media can be large, and
    # every item of the project is loaded on every run. Reading any other column raises
    # (rather than quietly costing a query per item): add it to ITEM_COLUMNS_READ.
    item_columns = load_only(*(getattr(Item, name) for name in ITEM_COLUMNS_READ), raiseload=True)
    items: dict[int, Item] = {
        i.id: i
        for i in session.exec(
            select(Item).where(Item.project_id == project_id).options(item_columns)
        )
        if i.id is not None
    }
    answers = list(
        session.exec(select(Answer).where(Answer.project_id == project_id).order_by(col(Answer.id)))
    )
    if not answers:
        return {"finalized": 0, "review": 0}
    seen_through = max(a.id or 0 for a in answers)
    # A set-aside item's answers stay stored, neither paid nor rejected, and out of everything
    # this run computes (aggregation, fraud checks, standings).
    answers = [a for a in answers if items[a.item_id].set_aside_reason is None]
    quality_rows, flag_rows = _quality_rows(session, project_id), _flag_rows(session, project_id)
    # Everything is read by now: end the reads' transaction before computing, which takes
    # seconds on a big project (more on a worker that yields the CPU; 8-16 s seen under
    # load), and compute without autoflush, so that the one writing transaction is the one
    # at the end (the bulk writes of _write_decisions_in_bulk, then the commit's flush).
    # While a transaction is open (or, in READ COMMITTED, holds a transaction id),
    # PostgreSQL reclaims no row version made since it began, by vacuum or by index scans,
    # and the open-items index, which every lease reads, fills with dead entries. The loaded
    # objects keep their values, as they would within the transaction (READ COMMITTED takes
    # no locks on reads), and only changed columns are written.
    _end_reads(session)
    read = time.perf_counter()
    with session.no_autoflush:
        try:
            changed = _decide_project(session, project, items, answers, quality_rows, flag_rows)
        except Exception as exc:
            # One item the run cannot process (a poison answer: too many boxes, a payload the
            # aggregation refuses) must not stop the project, or the worker, run after run.
            reasons = _unprocessable_items(project, items, answers, exc)
            if not reasons:
                raise  # not one item's doing: a fault to see, not to hide
            _set_aside(session, project_id, reasons)
            return None
    decided = time.perf_counter()
    project.aggregated_through = seen_through
    session.add(project)
    _write_decisions_in_bulk(session)
    session.commit()
    log.info(
        "project %s: read %d items and %d answers in %.2f s, decided in %.2f s, "
        "wrote in %.2f s: %s",
        project_id,
        len(items),
        len(answers),
        read - started,
        decided - read,
        time.perf_counter() - decided,
        changed,
    )
    return changed


def _probe(project: Project, items: dict[int, Item], answers: list[Answer]) -> None:
    """Run on ``answers`` what a quality run computes from each answer (answer keys, the
    aggregation, each item's consensus, scores against it and against gold); raise as the run
    would."""
    task_type, schema = project.task_type, project.label_schema
    for a in answers:
        _answer_key(task_type, a.payload)
    result = _aggregate(project, items, answers)
    by_item = _by_item(answers)
    for item_id, item_answers in by_item.items():
        item = items[item_id]
        consensus = None if item.is_gold else _consensus(project, result, item_id)
        reference = item.gold_answer if item.is_gold else consensus and consensus[0]
        for a in item_answers:
            if reference is not None:
                scoring.score(task_type, schema, a.payload, reference)


def _reason(exc: Exception) -> str:
    detail = str(exc)
    if len(detail) > SET_ASIDE_DETAIL:
        detail = detail[: SET_ASIDE_DETAIL - 3] + "..."
    return f"the quality run cannot process this item's answers ({type(exc).__name__}: {detail})"


def _unprocessable_items(
    project: Project, items: dict[int, Item], answers: list[Answer], failure: Exception
) -> dict[int, str]:
    """The items whose own answers make the run fail, with the reason for each.

    Items the aggregation names (ItemTooLarge) are taken at its word. The others are found by
    halving: a set of items whose answers the run processes alone is clean; a failing set is
    split until single items remain. If every item fails alone, or the failure needs two
    items together, it is the run's fault, not an item's, and none is named for it."""
    by_item = _by_item(answers)
    named: dict[int, str] = {}  # by the aggregation
    found: dict[int, str] = {}  # by halving
    if isinstance(failure, ItemTooLarge) and isinstance(failure.item, int):
        named[failure.item] = _reason(failure)

    def search(ids: list[int]) -> None:
        while ids:
            try:
                _probe(project, items, [a for i in ids for a in by_item[i]])
                return
            except Exception as exc:
                item = exc.item if isinstance(exc, ItemTooLarge) else None
                if isinstance(item, int) and item in ids:
                    named[item] = _reason(exc)
                    ids = [i for i in ids if i != item]
                elif len(ids) == 1:
                    found[ids[0]] = _reason(exc)
                    return
                else:
                    search(ids[: len(ids) // 2])
                    search(ids[len(ids) // 2 :])
                    return

    suspects = sorted(i for i in by_item if i not in named)
    search(suspects)
    if found and len(found) == len([i for i in suspects if i not in named]):
        found = {}  # every item fails alone: nothing tells an item's fault from the run's
    return {**named, **found}


def _set_aside(session: Session, project_id: int, reasons: dict[int, str]) -> None:
    """Record why each item is set aside, and nothing else of the failed run.

    The item is also closed to assignment (``finalized``, so it leaves the open-item index):
    new answers to it would only wait, unpaid, beside the ones already set aside. Everything
    that reads ``finalized`` as "decided" checks ``set_aside_reason`` too."""
    session.expunge_all()  # the failed run's changes to loaded rows are dropped, never written
    table = Item.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("id_"), table.c.set_aside_reason.is_(None))
        .values(set_aside_reason=bindparam("reason"), finalized=True),
        [{"id_": item_id, "reason": reason} for item_id, reason in sorted(reasons.items())],
    )
    session.commit()
    for item_id, reason in sorted(reasons.items()):
        log.warning("project %s: item %s set aside: %s", project_id, item_id, reason)


def _decide_project(
    session: Session,
    project: Project,
    items: dict[int, Item],
    answers: list[Answer],
    quality_rows: dict[str, ContributorQuality],
    flag_rows: dict[tuple[str, str], FraudFlag],
) -> dict[str, int]:
    """Flag, score and decide from what aggregate_project read; changes are added to the
    session, never queried for."""
    task_type, schema = project.task_type, project.label_schema
    project_id: int = project.id  # type: ignore[assignment]  # a stored project's
    flags = _detect_fraud(project, answers)
    held = _held_ids(flags)
    result = _aggregate(project, items, [a for a in answers if a.id not in held])
    if task_type in CLASSIFICATION and result is not None:
        clean = [a for a in answers if a.id not in held]
        expected = _expected_agreement(project, items, clean, result)
        pairs = max(len(expected), 1)
        reference = {int(it.item): it.label for it in result.items}
        reference.update(_gold_labels(items))
        duplicates = fraud.duplicate_accounts(
            _facts(task_type, clean),
            expected,
            min_shared=DUPLICATE_MIN_SHARED,
            max_p_value=DUPLICATE_MAX_P_VALUE / pairs,
            reference=reference,
        )
        if duplicates:
            flags += duplicates
            held = _held_ids(flags)
            result = _aggregate(project, items, [a for a in answers if a.id not in held])
    _save_flags(session, project, flags, flag_rows)
    for a in answers:
        # Flagged work is held at once, whether or not its item is decided yet (payment
        # comes later and only ever for accepted answers).
        if a.id in held and a.status in (AnswerStatus.pending, AnswerStatus.accepted):
            a.status, a.status_reason = AnswerStatus.held, "flagged as likely fraud"
            session.add(a)
    standing = _contributor_standing(session, project, items, answers, result, flags, quality_rows)
    blocked = {who for who, q in standing.items() if q.blocked}
    if blocked:  # the consensus is built only from contributors above the bar
        result = _aggregate(
            project,
            items,
            [a for a in answers if a.id not in held and a.contributor not in blocked],
        )
    settled = _settled_contributors(project, items, answers, standing)
    gold_released = _gold_released(answers, blocked)

    by_item = _by_item(answers)
    now = utcnow()
    finalized = review = 0
    for item_id, item_answers in sorted(by_item.items()):
        item = items[item_id]
        pending = [a for a in item_answers if a.status == AnswerStatus.pending]
        if item.is_gold:
            for a in pending:  # judged against the known answer, a block at a time
                if a.id not in gold_released:
                    continue
                _decide(a, task_type, schema, item.gold_answer, held, blocked, "gold answer")
                session.add(a)
            continue
        if item.finalized or item.answer_count < project.overlap + item.extra_answers:
            continue
        usable = [a for a in item_answers if a.id not in held and a.contributor not in blocked]
        if any(a.contributor not in settled for a in usable):
            continue  # wait until every answerer has a track record on gold items
        consensus = _consensus(project, result, item_id)
        weak = consensus is None or consensus[1] < project.min_confidence
        if (
            weak or len(usable) < project.overlap
        ) and item.extra_answers < project.max_extra_answers:
            item.extra_answers += 1  # back into the pool for one more answer
            session.add(item)
            review += 1
            continue
        if consensus is None:
            continue  # every answer held and the cap reached: nothing to decide from
        value, confidence = consensus
        session.add(
            ItemResult(
                item_id=item_id,
                project_id=project_id,
                consensus=value,
                confidence=confidence,
                method=result.method,
                params={**result.params, "accept_at": scoring.ACCEPT_AT[task_type]},
                n_answers=len(usable),
                low_confidence=weak,
                finalized_at=now,
            )
        )
        item.finalized = True
        session.add(item)
        for a in pending:
            _decide(a, task_type, schema, value, held, blocked, "consensus")
            session.add(a)
        finalized += 1
    return {"finalized": finalized, "review": review, "flags": len(flags)}


def _write_decisions_in_bulk(session: Session) -> None:
    """Write the run's decisions on answers and items, and its new item results, as a few
    Core statements with every row built beforehand, and leave the rest (flags, standings,
    the project's mark) to the commit's flush. Only the columns the run changed are written:
    the API moves an item's slot counts at the same time.

    The ORM's flush opens the transaction and then does its per-object bookkeeping inside it.
    On a worker that yields the CPU to the API, that kept a run's writing transaction open
    for 21 s at 4,148 items finalized (bench/ingest, 40,000 answers at 500/s): PostgreSQL
    reclaims no row version newer than an open transaction, and the loop's statements slowed
    until the service fell behind its load."""
    updates: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    dirty = [o for o in session.dirty if isinstance(o, Answer | Item)]
    for obj in dirty:
        state = inspect(obj)
        columns = state.mapper.column_attrs
        # The column attributes set this run (a value set to itself is written again).
        changed = tuple(sorted(key for key in state.committed_state if key in columns))
        if changed:
            table = obj.__table__  # type: ignore[union-attr]
            updates[table, changed].append(
                {"id_": obj.id} | {key: getattr(obj, key) for key in changed}
            )
    results = [o for o in session.new if isinstance(o, ItemResult)]
    result_table = ItemResult.__table__  # type: ignore[attr-defined]
    result_rows = [{c.key: getattr(r, c.key) for c in result_table.columns} for r in results]
    for written in [*dirty, *results]:
        session.expunge(written)  # the commit's flush must not write them again
    # The transaction begins here, with nothing left to compute.
    connection = session.connection()
    for (table, changed_columns), rows in updates.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("id_"))
            .values({c: bindparam(c) for c in changed_columns})
        )
        # In id order, as the ORM's flush wrote them: every run takes its row locks in the
        # same order.
        connection.execute(statement, sorted(rows, key=lambda row: row["id_"]))
    if result_rows:
        connection.execute(insert(result_table), result_rows)


def _end_reads(session: Session) -> None:
    """Commit the session's read-only transaction without expiring what it loaded."""
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _decide(
    answer: Answer,
    task_type: str,
    schema: dict[str, Any],
    reference: Any,
    held: set[int],
    blocked: set[str],
    against: str,
) -> None:
    if answer.id in held:
        answer.status, answer.status_reason = AnswerStatus.held, "flagged as likely fraud"
        return
    value = scoring.score(task_type, schema, answer.payload, reference)
    answer.score = round(value, 6)
    if answer.contributor in blocked:
        answer.status = AnswerStatus.rejected
        answer.status_reason = "contributor is below the project's quality bar"
    elif scoring.accepted(task_type, value):
        answer.status, answer.status_reason = AnswerStatus.accepted, f"agrees with the {against}"
    else:
        answer.status, answer.status_reason = AnswerStatus.rejected, f"disagrees with the {against}"


def projects_to_aggregate(*, session: Session) -> list[int]:
    """Projects with answers newer than their last run, or with complete items still
    undecided (they wait on a newcomer's track record or idleness, which time changes)."""
    # EXISTS over answers past the last run (a range of the primary key), rather than the
    # latest answer of each project (which reads every answer on every beat).
    fresh = session.exec(
        select(Project.id).where(
            exists().where(
                col(Answer.project_id) == col(Project.id),
                col(Answer.id) > col(Project.aggregated_through),
            )
        )
    ).all()
    waiting = session.exec(
        select(Item.project_id)
        .join(Project, col(Project.id) == col(Item.project_id))
        .where(
            col(Item.is_gold).is_(SQL_FALSE),
            col(Item.finalized).is_(SQL_FALSE),  # set-aside items are finalized too
            col(Item.answer_count) >= col(Project.overlap) + col(Item.extra_answers),
        )
        .distinct()
    ).all()
    return sorted({p for p in [*fresh, *waiting] if p is not None})


def projects_with_idle_gold(*, session: Session) -> list[int]:
    """Projects holding a gold answer still undecided GOLD_IDLE_RELEASE after it came: a run
    decides it if its contributor has been idle that long (see _gold_released). A project
    nobody answers in is otherwise never run again. An hourly sweep: it reads every pending
    answer (status is not indexed, 0006), too much for every beat."""
    cutoff = utcnow() - GOLD_IDLE_RELEASE
    rows = session.exec(
        select(Answer.project_id)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(
            col(Item.is_gold).is_(True),
            col(Item.set_aside_reason).is_(None),
            col(Answer.status) == AnswerStatus.pending,
            col(Answer.submitted_at) < cutoff,
        )
        .distinct()
    ).all()
    return sorted(rows)


def blocked_reason(
    project_id: int | BindParameter[int], contributor: str | BindParameter[str]
) -> ScalarSelect[str | None]:
    """SQL expression: why the contributor is stopped in this project, else NULL."""
    table = ContributorQuality.__table__  # type: ignore[attr-defined]
    return (
        select(func.coalesce(table.c.blocked_reason, "stopped by quality control"))
        .where(
            table.c.project_id == project_id,
            table.c.contributor == contributor,
            table.c.blocked.is_(True),
        )
        .scalar_subquery()
    )


def raise_if_blocked(project_id: int, reason: str | None) -> None:
    if reason is not None:
        raise Forbidden(f"you no longer receive tasks in project {project_id}: {reason}")


# --- views ----------------------------------------------------------------------------------


def _flags_by_contributor(session: Session, project_id: int) -> dict[str, list[FlagPublic]]:
    out: dict[str, list[FlagPublic]] = defaultdict(list)
    for f in session.exec(
        select(FraudFlag).where(FraudFlag.project_id == project_id).order_by(col(FraudFlag.id))
    ):
        out[f.contributor].append(
            FlagPublic(
                contributor=f.contributor, kind=f.kind, detail=f.detail, answers_held=f.answers_held
            )
        )
    return out


def _public(row: ContributorQuality, flags: list[FlagPublic]) -> ContributorQualityPublic:
    return ContributorQualityPublic(
        contributor=row.contributor,
        answers=row.answers,
        gold_answered=row.gold_answered,
        gold_correct=row.gold_correct,
        gold_accuracy=row.gold_accuracy,
        skill=row.skill,
        blocked=row.blocked,
        blocked_reason=row.blocked_reason,
        flags=flags,
    )


def my_quality(*, session: Session, project_id: int, contributor: str) -> ContributorQualityPublic:
    """A contributor's own standing in a project, with the reason if they were stopped.

    The gold record is the one of the contributor's answers up to their last whole block of
    GOLD_STANDING_STEP answers (of any kind) that a quality run has seen: it moves once per
    block, by the block's count, so no single answer can be told to have been gold, or right.
    The agreement skill, which moves with every run, is the requester's figure only
    (docs/aggregation.md, "What a contributor sees")."""
    row = session.exec(
        select(ContributorQuality).where(
            ContributorQuality.project_id == project_id,
            ContributorQuality.contributor == contributor,
        )
    ).first()
    flags = _flags_by_contributor(session, project_id).get(contributor, [])
    if row is None:
        row = ContributorQuality(
            project_id=project_id, contributor=contributor, updated_at=utcnow()
        )
    project = session.get(Project, project_id)
    seen_through = project.aggregated_through if project is not None else 0
    mine = session.exec(
        select(Answer.status, Item.is_gold)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(
            Answer.project_id == project_id,
            Answer.contributor == contributor,
            col(Answer.id) <= seen_through,
            col(Item.set_aside_reason).is_(None),  # as the runs count them
        )
        .order_by(col(Answer.id))
    ).all()
    block = _whole_blocks(mine)
    judged = [status for status, is_gold in block if is_gold and status != AnswerStatus.pending]
    correct = sum(1 for status in judged if status == AnswerStatus.accepted)
    return ContributorQualityPublic(
        contributor=row.contributor,
        answers=row.answers,
        gold_answered=len(judged),
        gold_correct=correct,
        gold_accuracy=correct / len(judged) if judged else None,
        skill=None,
        blocked=row.blocked,
        blocked_reason=row.blocked_reason,
        flags=flags,
    )


def _agreement_rows(
    task_type: str, answers: list[Answer], aside: set[int | None]
) -> Iterator[tuple[int, str, str]]:
    for a in answers:
        if a.status == AnswerStatus.held or a.item_id in aside:
            continue
        try:
            key = _answer_key(task_type, a.payload)
        except ValueError:
            continue  # an answer no run can encode: the next run sets its item aside
        yield a.item_id, a.contributor, key


def report(*, session: Session, project: Project) -> QualityReport:
    """The requester's view: agreement, gold accuracy, review queue, flagged contributors."""
    pid = project.id
    assert pid is not None
    answers = list(session.exec(select(Answer).where(Answer.project_id == pid)))
    items = list(
        session.exec(select(Item).where(Item.project_id == pid, col(Item.is_gold).is_(SQL_FALSE)))
    )
    by_status = Counter(a.status for a in answers)
    aside = {
        i.id: i
        for i in session.exec(
            select(Item).where(Item.project_id == pid, col(Item.set_aside_reason).is_not(None))
        )
        if i.id is not None
    }
    alpha = (
        krippendorff_alpha_nominal(_agreement_rows(project.task_type, answers, set(aside)))
        if answers
        else None
    )
    rows = list(
        session.exec(
            select(ContributorQuality)
            .where(ContributorQuality.project_id == pid)
            .order_by(col(ContributorQuality.contributor))
        )
    )
    histogram = {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": 0 for b in range(10)}
    for r in rows:
        if r.gold_accuracy is not None:
            b = min(int(r.gold_accuracy * 10), 9)
            histogram[f"{b / 10:.1f}-{(b + 1) / 10:.1f}"] += 1
    flags = _flags_by_contributor(session, pid)
    open_items = [i for i in items if not i.finalized and i.id not in aside]
    answered = Counter(a.item_id for a in answers)
    method = session.exec(select(ItemResult.method).where(ItemResult.project_id == pid)).first()
    return QualityReport(
        project_id=pid,
        method=method,
        krippendorff_alpha=alpha,
        answers={s.value: by_status.get(s.value, 0) for s in AnswerStatus},
        items={
            "total": len(items),
            "final": sum(1 for i in items if i.finalized and i.id not in aside),
            "in_review": sum(1 for i in open_items if i.extra_answers > 0),
            "waiting": sum(1 for i in open_items if i.extra_answers == 0),
            "set_aside": len(aside),
        },
        gold_accuracy_histogram=histogram,
        contributors=[_public(r, flags.get(r.contributor, [])) for r in rows],
        flagged=[f for fs in flags.values() for f in fs],
        set_aside=[
            SetAsideItem(
                item_id=item_id,
                external_id=item.external_id,
                answers=answered[item_id],
                reason=item.set_aside_reason or "",
            )
            for item_id, item in sorted(aside.items())
        ],
    )


def item_results(*, session: Session, project_id: int) -> list[ItemResult]:
    return list(
        session.exec(
            select(ItemResult)
            .where(ItemResult.project_id == project_id)
            .order_by(col(ItemResult.item_id))
        )
    )
