"""Quality control against the service and a real database, per task type."""

import random
from datetime import timedelta

import pytest
from sqlalchemy import event, update
from sqlmodel import Session, col, select

from backend.core.errors import Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects import service as projects
from backend.projects.models import Item, ProjectCreate
from backend.quality import service
from backend.quality.models import AnswerStatus, FraudFlag, ItemResult
from backend.tasks import service as tasks
from backend.tasks.models import Answer, AnswerSubmit, Task
from tests.tasks.helpers import add_text_rows, make_contributor

OWNER = "0x000000000000000000000000000000000000dEaD"


def _project(session, task_type="text_classification", schema=None, **quality):
    project = projects.create_project(
        session=session,
        owner=OWNER,
        data=ProjectCreate(
            task_type=task_type,
            title="t",
            instructions="i",
            label_schema=schema or {"classes": ["a", "b", "c"]},
            overlap=3,
            reward_per_answer=1,
            min_ms_per_task=0,
            max_answers_per_minute=10_000,
            **quality,
        ),
    )
    return project


def _work(session, project, who, answer_for, limit=1000):
    """The contributor answers tasks with answer_for(item) until none is left."""
    done = 0
    while done < limit:
        try:
            task = tasks.next_task(session=session, project_id=project.id, contributor=who)
        except (NotFound, Forbidden):
            return done
        # Pretend the contributor took five seconds, as a person would.
        session.execute(
            update(Task)
            .where(col(Task.id) == task.id)
            .values(leased_at=task.leased_at - timedelta(seconds=5))
        )
        session.commit()
        item = session.get(Item, task.item_id)
        tasks.submit_answer(
            session=session,
            task_id=task.id,
            contributor=who,
            data=AnswerSubmit(answer=answer_for(item)),
        )
        done += 1
    return done


def _statuses(session, project_id, who):
    return {
        a.status
        for a in session.exec(
            select(Answer).where(Answer.project_id == project_id, Answer.contributor == who)
        )
    }


def test_classification_accepts_agreement_and_rejects_the_rest(session):
    project = _project(session, min_confidence=0.5)
    add_text_rows(session, project, [{"text": f"t{i}"} for i in range(4)])
    good = [make_contributor(session) for _ in range(2)]
    odd = make_contributor(session)
    for who in good:
        _work(session, project, who, lambda item: {"label": "a"})
    _work(session, project, odd, lambda item: {"label": "b"})
    assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 4
    assert _statuses(session, project.id, good[0]) == {AnswerStatus.accepted}
    assert _statuses(session, project.id, odd) == {AnswerStatus.rejected}
    results = service.item_results(session=session, project_id=project.id)
    assert {r.consensus["label"] for r in results} == {"a"}
    assert results[0].method == "dawid_skene" and results[0].params["accept_at"] == 1.0
    # A second run changes nothing: decisions are frozen.
    assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 0


def test_the_computation_reads_nothing_and_runs_outside_a_transaction(session, monkeypatch):
    """An open transaction (or one holding a transaction id) keeps PostgreSQL from reclaiming
    row versions made meanwhile: a run reads everything first, ends that transaction, and
    computes with no query and no write until the commit at the end."""
    project = _project(session, min_confidence=0.5)
    add_text_rows(session, project, [{"text": f"t{i}"} for i in range(2)])
    for who in [make_contributor(session) for _ in range(3)]:
        _work(session, project, who, lambda item: {"label": "a"})
    detect, settle = service._detect_fraud, service._settled_contributors
    seen, statements = [], []

    def record(conn, cursor, statement, *args):
        statements.append(statement.split(None, 1)[0].upper())

    def look_then_detect(project, answers):
        seen.append((session.in_transaction(), {a.status for a in answers}))
        event.listen(session.get_bind(), "before_cursor_execute", record)
        return detect(project, answers)

    def look_then_settle(*args):
        seen.append(("statements so far", len(statements)))
        return settle(*args)

    monkeypatch.setattr(service, "_detect_fraud", look_then_detect)
    monkeypatch.setattr(service, "_settled_contributors", look_then_settle)
    try:
        assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 2
    finally:
        if event.contains(session.get_bind(), "before_cursor_execute", record):
            event.remove(session.get_bind(), "before_cursor_execute", record)
    # Loaded values kept, no transaction open, and nothing sent from the first step to the last.
    assert seen == [(False, {AnswerStatus.pending}), ("statements so far", 0)]
    assert statements and set(statements) <= {"INSERT", "UPDATE"}  # the commit's flush only
    assert _statuses(session, project.id, who) == {AnswerStatus.accepted}


def test_decisions_are_written_in_bulk_and_only_the_changed_columns(session, monkeypatch):
    """A run writes its decisions as a few statements whatever the number of answers (one per
    row kept a writing transaction open for seconds), and only the columns it decided: the
    API moves an item's slot counts meanwhile."""
    project = _project(session, min_confidence=0.5)
    add_text_rows(session, project, [{"text": f"t{i}"} for i in range(12)])
    for who in [make_contributor(session) for _ in range(3)]:
        _work(session, project, who, lambda item: {"label": "a"})
    items = [i.id for i in session.exec(select(Item).where(Item.project_id == project.id))]
    decide, statements = service._decide_project, []

    def decide_then_move_slots(*args):
        changed = decide(*args)
        # The API's writes while the run computed: a slot count moves under the run's feet.
        with Session(session.get_bind()) as api:
            api.execute(update(Item).where(col(Item.id) == items[0]).values(slots_taken=7))
            api.commit()
        event.listen(session.get_bind(), "before_cursor_execute", record)
        return changed

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:3]).upper())

    monkeypatch.setattr(service, "_decide_project", decide_then_move_slots)
    try:
        assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 12
    finally:
        if event.contains(session.get_bind(), "before_cursor_execute", record):
            event.remove(session.get_bind(), "before_cursor_execute", record)
    # 36 answers and 12 items decided, 12 results: one statement each (and the project's mark).
    assert statements.count("UPDATE ANSWER SET") == 1
    assert statements.count("UPDATE ITEM SET") == 1
    assert statements.count("INSERT INTO ITEM_RESULT") == 1
    session.expire_all()
    assert session.get(Item, items[0]).slots_taken == 7  # the API's write stands
    assert all(session.get(Item, i).finalized for i in items)
    assert (
        len(session.exec(select(ItemResult).where(ItemResult.project_id == project.id)).all()) == 12
    )
    assert {
        a.status for a in session.exec(select(Answer).where(Answer.project_id == project.id))
    } == {AnswerStatus.accepted}


def _answer_item(session, project, who, item, answer):
    """The contributor answers this item (assignment's choice would vary from run to run)."""
    now = utcnow()
    task = Task(
        project_id=project.id,
        item_id=item.id,
        contributor=who,
        leased_at=now - timedelta(seconds=5),
        expires_at=now + timedelta(minutes=5),
    )
    session.add(task)
    session.execute(
        update(Item).where(col(Item.id) == item.id).values(slots_taken=Item.slots_taken + 1)
    )
    session.commit()
    tasks.submit_answer(
        session=session, task_id=task.id, contributor=who, data=AnswerSubmit(answer=answer)
    )


def test_the_first_complete_item_is_decided_for_its_majority(session):
    # Seen in a quality run after a project's first four answers: dee (always wrong) answered
    # item 0 against ann and bob, then item 1 alone. The classic Dawid-Skene model decided
    # item 0 for dee; the service's agreement prior keeps it with the two who agree.
    project = _project(
        session, schema={"classes": ["a", "b"]}, min_confidence=0.0, max_extra_answers=0
    )
    add_text_rows(session, project, [{"text": "t0"}, {"text": "t1"}])
    first, second = session.exec(select(Item).order_by(col(Item.id))).all()
    dee, ann, bob = (make_contributor(session) for _ in range(3))
    for who, item, label in ((dee, first, "b"), (ann, first, "a"), (bob, first, "a")):
        _answer_item(session, project, who, item, {"label": label})
    _answer_item(session, project, dee, second, {"label": "b"})
    assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 1
    (result,) = service.item_results(session=session, project_id=project.id)
    assert result.item_id == first.id and result.consensus == {"label": "a"}
    assert result.params["agreement_prior"] == service.AGREEMENT_PRIOR > 0
    assert _statuses(session, project.id, ann) == {AnswerStatus.accepted}
    assert _statuses(session, project.id, dee) == {AnswerStatus.rejected, AnswerStatus.pending}


def test_low_confidence_goes_to_review_up_to_the_cap(session):
    project = _project(session, min_confidence=0.99, max_extra_answers=1)
    add_text_rows(session, project, [{"text": "only"}])
    labels = iter(["a", "b", "c", "a"])
    for _ in range(3):
        _work(session, project, make_contributor(session), lambda item: {"label": next(labels)})
    assert service.aggregate_project(session=session, project_id=project.id) == {
        "finalized": 0,
        "review": 1,
        "flags": 0,
    }
    item = session.exec(select(Item).where(Item.project_id == project.id)).one()
    assert item.extra_answers == 1 and not item.finalized
    assert service.report(session=session, project=project).items["in_review"] == 1
    _work(session, project, make_contributor(session), lambda item: {"label": next(labels)})
    service.aggregate_project(session=session, project_id=project.id)
    result = session.get(ItemResult, item.id)
    assert result.n_answers == 4  # decided at the cap, flagged if still below the bar
    assert result.low_confidence == (result.confidence < 0.99)


def test_gold_accuracy_below_the_bar_stops_a_contributor_with_a_reason(session):
    project = _project(session, gold_rate=1.0, min_gold_answers=2, min_gold_accuracy=0.8)
    add_text_rows(
        session,
        project,
        [{"text": f"g{i}", "gold_answer": {"label": "a"}} for i in range(3)] + [{"text": "x"}],
    )
    bad = make_contributor(session)
    _work(session, project, bad, lambda item: {"label": "b"}, limit=2)
    service.aggregate_project(session=session, project_id=project.id)
    mine = service.my_quality(session=session, project_id=project.id, contributor=bad)
    assert mine.blocked and "gold accuracy 0% on 2 gold tasks" in mine.blocked_reason
    try:
        tasks.next_task(session=session, project_id=project.id, contributor=bad)
        raise AssertionError("a stopped contributor got a task")
    except Forbidden as exc:
        assert "gold accuracy" in exc.detail
    assert _statuses(session, project.id, bad) == {AnswerStatus.rejected}


def test_copied_answers_are_held_as_duplicate_accounts(session):
    # Gold items measure each account on its own: without them, a copier and its source look
    # like two perfect workers agreeing (documented in docs/quality.md).
    project = _project(
        session, min_confidence=0.0, gold_rate=0.5, min_gold_answers=3, min_gold_accuracy=0.0
    )
    add_text_rows(
        session,
        project,
        [{"text": f"t{i}"} for i in range(12)]
        + [{"text": f"g{i}", "gold_answer": {"label": "a"}} for i in range(6)],
    )
    import random

    rng = random.Random(3)
    source, copier = make_contributor(session), make_contributor(session)
    said: dict[int, str] = {}

    def pick(item):
        said[item.id] = rng.choice(["a", "b", "c"])
        return {"label": said[item.id]}

    _work(session, project, source, pick)
    _work(session, project, copier, lambda item: {"label": said[item.id]})
    honest = make_contributor(session)
    _work(session, project, honest, lambda item: {"label": rng.choice(["a", "b", "c"])})
    service.aggregate_project(session=session, project_id=project.id)
    flags = session.exec(select(FraudFlag).where(FraudFlag.project_id == project.id)).all()
    assert {(f.contributor, f.kind) for f in flags} == {
        (source, "duplicate_accounts"),
        (copier, "duplicate_accounts"),
    }
    assert _statuses(session, project.id, copier) == {AnswerStatus.held}
    report = service.report(session=session, project=project)
    assert report.answers["held"] == 36 and len(report.flagged) == 2


def test_too_fast_answers_are_held(session):
    project = _project(session)
    project.min_ms_per_task = 10_000
    session.add(project)
    session.commit()
    add_text_rows(session, project, [{"text": "x"}])
    who = make_contributor(session)
    _work(session, project, who, lambda item: {"label": "a"})  # five seconds: under the floor
    for _ in range(2):
        _work(session, project, make_contributor(session), lambda item: {"label": "a"})
    service.aggregate_project(session=session, project_id=project.id)
    assert _statuses(session, project.id, who) == {AnswerStatus.held}


def test_bounding_boxes_and_transcriptions_are_aggregated(session):
    boxes = _project(session, "image_bbox", {"classes": ["car", "bus"]}, min_confidence=0.6)
    item = Item(
        project_id=boxes.id,
        kind="image",
        content_hash="0x" + "11" * 32,
        width=100,
        height=100,
        created_at=boxes.created_at,
    )
    session.add(item)
    session.commit()
    car = {"label": "car", "x": 10, "y": 10, "width": 40, "height": 40}
    near = {**car, "x": 12}
    far = {**car, "x": 55}
    for box in (car, near, far):
        _work(session, boxes, make_contributor(session), lambda it, b=box: {"boxes": [b]})
    service.aggregate_project(session=session, project_id=boxes.id)
    result = session.get(ItemResult, item.id)
    assert result.method == "boxes" and len(result.consensus["boxes"]) == 1
    statuses = [
        a.status
        for a in session.exec(select(Answer).where(Answer.item_id == item.id).order_by(Answer.id))
    ]
    assert statuses == [AnswerStatus.accepted, AnswerStatus.accepted, AnswerStatus.rejected]

    text = _project(session, "transcription", {"format": "text"}, min_confidence=0.5)
    add_text_rows(session, text, [{"text": "scan 1"}])
    for said in ("The quick brown fox", "The quick brown fox", "Lorem ipsum dolor"):
        _work(session, text, make_contributor(session), lambda it, s=said: {"text": s})
    service.aggregate_project(session=session, project_id=text.id)
    (result,) = service.item_results(session=session, project_id=text.id)
    assert result.consensus == {"text": "The quick brown fox"} and result.method == "text_medoid"


def test_projects_to_aggregate_lists_new_answers_and_undecided_items(session):
    project = _project(session)
    add_text_rows(session, project, [{"text": "x"}])
    assert project.id not in service.projects_to_aggregate(session=session)
    _work(session, project, make_contributor(session), lambda item: {"label": "a"})
    assert project.id in service.projects_to_aggregate(session=session)
    service.aggregate_project(session=session, project_id=project.id)
    assert project.id not in service.projects_to_aggregate(session=session)


def test_one_flag_row_per_contributor_and_kind(session):
    from backend.quality.fraud import Flag

    project = _project(session)
    flags = [
        Flag("0xA", "duplicate_accounts", "agrees with 0xB", (1, 2)),
        Flag("0xA", "duplicate_accounts", "agrees with 0xC", (2, 3)),
    ]
    service._save_flags(session, project, flags, service._flag_rows(session, project.id))
    session.commit()
    service._save_flags(session, project, flags, service._flag_rows(session, project.id))  # updates
    session.commit()
    (row,) = session.exec(select(FraudFlag).where(FraudFlag.project_id == project.id)).all()
    assert row.answers_held == 3 and "0xB" in row.detail and "0xC" in row.detail


def test_items_waiting_on_a_newcomer_are_revisited(session):
    project = _project(session, min_gold_answers=1, min_confidence=0.0)
    add_text_rows(session, project, [{"text": "x"}, {"text": "g", "gold_answer": {"label": "a"}}])
    # Three newcomers answer the regular item; none has a gold record yet.
    for _ in range(3):
        who = make_contributor(session)
        _work(session, project, who, lambda item: {"label": "a"}, limit=1)
    service.aggregate_project(session=session, project_id=project.id)
    assert not service.item_results(session=session, project_id=project.id)
    # Nothing new arrives, but the undecided complete item keeps the project on the list.
    assert project.id in service.projects_to_aggregate(session=session)


def _image_items(session, project, n):
    items = [
        Item(
            project_id=project.id,
            kind="image",
            content_hash="0x" + f"{k:064x}",
            width=1000,
            height=1000,
            external_id=f"img-{k}",
            created_at=project.created_at,
        )
        for k in range(n)
    ]
    session.add_all(items)
    session.commit()
    return [i.id for i in items]


def _poison(session, answer_id, payload):
    """Store a payload as a project created before today's bounds could have accepted it."""
    session.execute(update(Answer).where(col(Answer.id) == answer_id).values(payload=payload))
    session.commit()


def test_an_item_the_run_cannot_process_is_set_aside_and_the_rest_goes_on(session):
    project = _project(
        session, "image_bbox", {"classes": ["car", "bus"]}, min_confidence=0.5, max_extra_answers=0
    )
    ids = _image_items(session, project, 4)
    car = {"label": "car", "x": 10, "y": 10, "width": 40, "height": 40}
    people = [make_contributor(session) for _ in range(3)]
    for who in people:
        _work(session, project, who, lambda item: {"boxes": [car]})
    poisoned = session.exec(
        select(Answer).where(Answer.item_id == ids[1]).order_by(col(Answer.id))
    ).first()
    # 100,000 boxes: the pairwise matrix of these killed the worker on every restart.
    _poison(session, poisoned.id, {"boxes": [car] * 100_000})

    changed = service.aggregate_project(session=session, project_id=project.id)
    assert changed["finalized"] == 3
    session.expire_all()
    aside = session.get(Item, ids[1])
    assert "has 100002 boxes" in aside.set_aside_reason  # 100,000 and the two honest ones
    assert "at most 10000 per item" in aside.set_aside_reason
    # Closed to assignment (out of the open-item index) but never given a result.
    assert aside.finalized and session.get(ItemResult, ids[1]) is None
    # Its answers are kept as they were: not paid, not rejected, not held.
    kept = session.exec(select(Answer).where(Answer.item_id == ids[1])).all()
    assert len(kept) == 3 and {a.status for a in kept} == {AnswerStatus.pending}
    assert len(session.get(Answer, poisoned.id).payload["boxes"]) == 100_000
    for other in (ids[0], ids[2], ids[3]):
        assert session.get(ItemResult, other) is not None
    # The requester sees which item and why; the project is not picked up again for it.
    report = service.report(session=session, project=project)
    assert report.items["set_aside"] == 1 and report.items["waiting"] == 0
    (shown,) = report.set_aside
    assert (shown.item_id, shown.external_id, shown.answers) == (ids[1], "img-1", 3)
    assert shown.reason == aside.set_aside_reason
    assert project.id not in service.projects_to_aggregate(session=session)
    assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 0


def test_any_failure_one_item_reproduces_sets_that_item_aside(session, monkeypatch):
    project = _project(session, min_confidence=0.5, max_extra_answers=0)
    add_text_rows(session, project, [{"text": f"t{i}"} for i in range(6)])
    for who in [make_contributor(session) for _ in range(3)]:
        _work(session, project, who, lambda item: {"label": "a"})
    items = session.exec(
        select(Item).where(Item.project_id == project.id).order_by(col(Item.id))
    ).all()
    bad = session.exec(select(Answer).where(Answer.item_id == items[4].id)).first()
    _poison(session, bad.id, {"label": "not a class"})  # Dawid-Skene refuses it
    changed = service.aggregate_project(session=session, project_id=project.id)
    assert changed["finalized"] == 5
    session.expire_all()
    reason = session.get(Item, items[4].id).set_aside_reason
    assert reason.startswith("the quality run cannot process this item's answers (ValueError")
    assert [i.id for i in items if session.get(Item, i.id).set_aside_reason] == [items[4].id]

    # A failure every item reproduces (the run's own) is not hidden by setting items aside.
    other = _project(session, min_confidence=0.5)
    add_text_rows(session, other, [{"text": "u"}, {"text": "v"}])
    _work(session, other, make_contributor(session), lambda item: {"label": "a"})

    def broken(*args):
        raise RuntimeError("a fault of the run itself")

    monkeypatch.setattr(service, "_aggregate", broken)
    with pytest.raises(RuntimeError, match="a fault of the run itself"):
        service.aggregate_project(session=session, project_id=other.id)
    session.expire_all()
    assert all(
        i.set_aside_reason is None
        for i in session.exec(select(Item).where(Item.project_id == other.id))
    )


def test_polling_my_standing_after_each_answer_does_not_identify_gold_items(session):
    """The inference attack: answer one task, let a run pass, read /quality/me, diff. It
    used to name every gold item (gold_answered rose after exactly those answers) and
    whether the answer was right (gold_correct). The view now moves only when a block of
    GOLD_STANDING_STEP answers is complete, by the block's count."""
    step = service.GOLD_STANDING_STEP
    project = _project(session, gold_rate=0.5, min_gold_answers=50, min_confidence=0.0)
    add_text_rows(
        session,
        project,
        [{"text": f"t{i}"} for i in range(30)]
        + [{"text": f"g{i}", "gold_answer": {"label": "a"}} for i in range(30)],
    )
    others = [make_contributor(session) for _ in range(2)]
    me = make_contributor(session)
    rng = random.Random(5)

    def view():
        shown = service.my_quality(session=session, project_id=project.id, contributor=me)
        return shown.gold_answered, shown.gold_correct, shown.skill

    answered, views = [], [view()]
    for _ in range(2 * step + 3):
        assert _work(session, project, me, lambda item: {"label": rng.choice("ab")}, limit=1)
        for who in others:  # the crowd moves on too, so the runs decide things meanwhile
            _work(session, project, who, lambda item: {"label": "a"}, limit=1)
        service.aggregate_project(session=session, project_id=project.id)
        mine = session.exec(
            select(Answer).where(Answer.project_id == project.id, Answer.contributor == me)
        ).all()
        answered.append(session.get(Item, max(mine, key=lambda a: a.id).item_id))
        views.append(view())

    gold = {item.id for item in answered if item.is_gold}
    assert 3 <= len(gold) < len(answered)  # the test's draw has both kinds in every block
    moved = [k for k in range(1, len(views)) if views[k] != views[k - 1]]
    # The attacker's guess: the items after whose answer gold_answered rose.
    guessed = {answered[k - 1].id for k in moved}
    assert moved == [k for k in (step, 2 * step) if views[k][0] > 0]
    assert guessed != gold and len(gold - guessed) >= len(gold) - 2
    for k in (step, 2 * step):
        block = answered[k - step : k]
        assert views[k][0] - views[k - step][0] == sum(item.is_gold for item in block)
    assert all(skill is None for _, _, skill in views)
    # The requester still sees the exact record.
    report = service.report(session=session, project=project)
    (row,) = [c for c in report.contributors if c.contributor == me]
    assert row.gold_answered == len(gold) and row.skill is not None


def test_answer_statuses_do_not_identify_gold_items_either(session):
    """The same attack through earnings: a gold answer used to be accepted or rejected by the
    first run after it, while other answers wait for their item's overlap, so the statuses in
    /earnings/me named the gold items. Gold decisions now wait for the contributor's block of
    GOLD_STANDING_STEP answers, or for them to be idle for GOLD_IDLE_RELEASE."""
    step = service.GOLD_STANDING_STEP
    project = _project(session, gold_rate=0.7, min_gold_answers=50, min_confidence=0.0)
    add_text_rows(
        session,
        project,
        [{"text": f"t{i}"} for i in range(30)]
        + [{"text": f"g{i}", "gold_answer": {"label": "a"}} for i in range(30)],
    )
    me = make_contributor(session)
    rng = random.Random(7)

    def my_answers():
        return session.exec(
            select(Answer).where(Answer.project_id == project.id, Answer.contributor == me)
        ).all()

    def gold_decided():
        return {
            a.id
            for a in my_answers()
            if session.get(Item, a.item_id).is_gold and a.status != AnswerStatus.pending
        }

    def gold_answers():
        return {a.id for a in my_answers() if session.get(Item, a.item_id).is_gold}

    decided_after = []
    # Answer into the second block until a gold answer waits there (the gold draw is random:
    # at the rate of 0.7, nine answers give none 2 times in 100,000).
    while len(decided_after) <= step or len(gold_answers()) == len(decided_after[step - 1]):
        assert len(decided_after) < 2 * step - 1
        assert _work(session, project, me, lambda item: {"label": rng.choice("ab")}, limit=1)
        service.aggregate_project(session=session, project_id=project.id)
        session.expire_all()
        decided_after.append(gold_decided())
    gold = gold_answers()
    # Nothing of the first block is decided before it is whole; then all its gold at once.
    assert all(not d for d in decided_after[: step - 1])
    first_block = {a.id for a in sorted(my_answers(), key=lambda a: a.id)[:step]}
    assert gold & first_block and decided_after[step - 1] == gold & first_block
    assert decided_after[-1] == gold & first_block  # the partial second block waits

    # A contributor who stopped a day ago is decided in full, so nobody waits forever.
    session.execute(
        update(Answer)
        .where(col(Answer.contributor) == me)
        .values(submitted_at=utcnow() - service.GOLD_IDLE_RELEASE - timedelta(minutes=1))
    )
    session.commit()
    assert service.projects_with_idle_gold(session=session) == [project.id]
    service.aggregate_project(session=session, project_id=project.id)
    session.expire_all()
    assert gold_decided() == gold
    assert service.projects_with_idle_gold(session=session) == []


def test_an_answer_no_run_can_encode_is_set_aside_and_the_report_still_answers(session):
    # RFC 8785 refuses integers beyond 2**53 - 1; the API now refuses them too, but an answer
    # stored before could hold one.
    project = _project(
        session,
        "transcription",
        {"format": "json", "json_schema": {"type": "object"}},
        min_confidence=0.5,
        max_extra_answers=0,
    )
    add_text_rows(session, project, [{"text": "form 1"}, {"text": "form 2"}])
    for who in [make_contributor(session) for _ in range(3)]:
        _work(session, project, who, lambda item: {"data": {"n": 1}})
    first, second = session.exec(
        select(Item).where(Item.project_id == project.id).order_by(col(Item.id))
    ).all()
    bad = session.exec(select(Answer).where(Answer.item_id == second.id)).first()
    _poison(session, bad.id, {"data": {"n": 2**60}})
    assert service.report(session=session, project=project).answers["pending"] == 6
    assert service.aggregate_project(session=session, project_id=project.id)["finalized"] == 1
    session.expire_all()
    assert session.get(ItemResult, first.id).consensus == {"data": {"n": 1}}
    assert "CanonicalJsonError" in session.get(Item, second.id).set_aside_reason
    assert [i.item_id for i in service.report(session=session, project=project).set_aside] == [
        second.id
    ]
