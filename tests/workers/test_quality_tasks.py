"""Acceptance: contributors of different quality answer through the API, a real worker
aggregates, and the requester's quality view shows who was accepted, rejected or flagged."""

import random
import time

from sqlmodel import Session, col, func, select

from backend.core.db import get_engine
from backend.projects.models import Project
from backend.quality.models import AnswerStatus
from backend.tasks.models import Answer
from tests.factories import (
    consenting_contributor,
    create_project,
    new_account,
    sign_in,
    upload_text,
)
from tests.workers.conftest import poll

CLASSES = ["positive", "negative", "neutral"]
THINK_S = 0.11  # honest contributors take longer than the project's floor (100 ms) per task


def _aggregated(project_id: int) -> bool:
    with Session(get_engine()) as s:
        latest = s.exec(select(func.max(Answer.id)).where(Answer.project_id == project_id)).one()
        return latest is None or s.get(Project, project_id).aggregated_through >= latest


def _undecided(project_id: int, people) -> list:
    """What is left undecided, and every flag, to say why when the test fails."""
    from backend.projects.models import Item
    from backend.quality.models import FraudFlag

    who = {people[n][0].address: n for n in people}
    with Session(get_engine()) as s:
        flags = [(who[f.contributor], f.kind, f.detail) for f in s.exec(select(FraudFlag))]
        open_items = s.exec(
            select(Item).where(
                Item.project_id == project_id,
                col(Item.finalized).is_(False),
                col(Item.is_gold).is_(False),
            )
        ).all()
        answers = [
            (
                i.text,
                i.extra_answers,
                [
                    (who[a.contributor], a.status)
                    for a in s.exec(select(Answer).where(Answer.item_id == i.id))
                ],
            )
            for i in open_items
        ]
    return [flags, *answers]


def _final_items(client, project_id: int, headers) -> int:
    return client.get(f"/projects/{project_id}/quality", headers=headers).json()["items"]["final"]


def test_quality_control_end_to_end(client, chain, worker):
    rng = random.Random(7)
    truth = {f"review {i}": rng.choice(CLASSES) for i in range(24)}
    gold = {f"known {i}": rng.choice(CLASSES) for i in range(6)}

    requester = sign_in(client, new_account())
    project = create_project(
        client,
        requester,
        overlap=5,  # an honest majority even when two colluders land on one item
        gold_rate=0.3,
        min_ms_per_task=100,
        label_schema={"classes": CLASSES},
        min_gold_answers=3,
        min_confidence=0.8,
        max_extra_answers=3,
        min_skill=0.6,
        min_skill_answers=6,
        max_answers_per_minute=1000,  # bursts have their own test; here everyone is quick
        lease_seconds=10,  # an idle contributor stops holding decisions back after one lease
    )
    rows = [{"text": t} for t in truth] + [
        {"text": t, "gold_answer": {"label": g}} for t, g in gold.items()
    ]
    upload_text(client, requester, project["id"], rows)
    answer_of = {**truth, **gold}

    people = {
        name: consenting_contributor(client, chain)
        for name in ("good1", "good2", "good3", "good4", "good5", "random", "copier", "fast")
    }

    # The clicker labels without reading: a fixed draw per item, so that what it says does
    # not depend on the order the tasks happen to come in. With these seeds it is right on 1
    # of the 6 gold items and 7 of the 24 others: chance level (1 in 3), and below the gold
    # bar (60 %) whichever three gold items it meets first. The copier is a second account of
    # the same clicker: the same answers.
    def clicked(text: str) -> str:
        return random.Random(f"random clicker {text}").choice(CLASSES)

    assert sum(clicked(t) == g for t, g in gold.items()) == 1
    assert sum(clicked(t) == v for t, v in truth.items()) == 7

    def label_for(name: str, text: str) -> str:
        if name in ("random", "copier"):
            return clicked(text)
        return answer_of[text]  # good and fast contributors know the answer

    def one_round() -> int:
        done = 0
        order = ["good1", "good2", "good3", "good4", "good5", "random", "copier", "fast"]
        while True:
            progressed = False
            rng.shuffle(order)
            for name in order:
                headers = people[name][1]
                reply = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
                if reply.status_code in (403, 404):
                    continue
                task = reply.json()
                if name != "fast":
                    time.sleep(THINK_S)
                text = task["item"]["text"]
                answer = {"answer": {"label": label_for(name, text)}}
                assert (
                    client.post(
                        f"/tasks/{task['task_id']}/answer", json=answer, headers=headers
                    ).status_code
                    == 201
                )
                done += 1
                progressed = True
            if not progressed:
                return done

    with worker(beat=True, PROVENANT_AGGREGATE_INTERVAL_S="0.3"):
        # Review rounds reopen weak items, and items wait for newcomers' track records (or
        # their idleness): keep working until every item is decided.
        deadline = time.monotonic() + 120
        while _final_items(client, project["id"], requester) < len(truth):
            assert time.monotonic() < deadline, _undecided(project["id"], people)
            if one_round():
                poll(lambda: _aggregated(project["id"]), timeout=30, what="the aggregation run")
            else:
                time.sleep(0.5)

    report = client.get(f"/projects/{project['id']}/quality", headers=requester).json()
    results = client.get(f"/projects/{project['id']}/results", headers=requester).json()
    assert report["items"]["final"] == len(truth) == len(results)

    with Session(get_engine()) as s:
        answers = s.exec(select(Answer).where(Answer.project_id == project["id"])).all()
        texts = {r["item_id"]: r for r in results}
        from backend.projects.models import Item

        item_text = {
            i.id: i.text for i in s.exec(select(Item).where(Item.project_id == project["id"]))
        }
    who = {people[n][0].address: n for n in people}
    # Final labels are right on every item the simulated truth knows.
    for item_id, result in texts.items():
        said = [
            (who[a.contributor], a.payload["label"], a.status)
            for a in answers
            if a.item_id == item_id
        ]
        assert result["consensus"] == {"label": truth[item_text[item_id]]}, (
            item_text[item_id],
            result,
            said,
        )
    by_name: dict[str, list[Answer]] = {}
    for a in answers:
        by_name.setdefault(who[a.contributor], []).append(a)
    standing = [
        (who[c["contributor"]], c["skill"], c["blocked_reason"]) for c in report["contributors"]
    ]
    for name in ("good1", "good2", "good3", "good4", "good5"):
        refused = [
            (a.status, a.status_reason) for a in by_name[name] if a.status != AnswerStatus.accepted
        ]
        assert not refused, (name, refused, standing)
    # The too-fast contributor's quick answers are held; any slower one is decided like the
    # rest (rejected once it is stopped).
    fast = {a.status for a in by_name["fast"]}
    assert AnswerStatus.held in fast and fast <= {AnswerStatus.held, AnswerStatus.rejected}
    for a in by_name["random"] + by_name.get("copier", []):
        assert a.status != AnswerStatus.pending
        if a.status == AnswerStatus.accepted:
            assert a.payload["label"] == answer_of[item_text[a.item_id]]
    assert any(a.status != AnswerStatus.accepted for a in by_name["random"])

    kinds = {(who[f["contributor"]], f["kind"]) for f in report["flagged"]}
    assert ("fast", "too_fast") in kinds
    assert report["answers"]["held"] >= len(by_name["fast"])
    assert report["krippendorff_alpha"] is not None
    # The random clicker and its copier are stopped (low skill or gold accuracy, or, if they
    # shared enough items first, as duplicate accounts), and can see why.
    for name in ("random", "copier"):
        me = client.get(f"/projects/{project['id']}/quality/me", headers=people[name][1]).json()
        assert me["blocked"] and me["blocked_reason"], (name, me, standing, sorted(kinds))
        denied = client.post(f"/projects/{project['id']}/tasks/next", headers=people[name][1])
        assert denied.status_code == 403 and "no longer receive tasks" in denied.json()["detail"]


def test_a_poisoned_item_is_set_aside_and_the_project_goes_on(worker, tmp_path):
    """One stored answer the run cannot process (100,000 boxes, from before the schema caps)
    killed the worker on every restart. Now a real worker sets that item aside, says why,
    and decides the project's other items."""
    from datetime import timedelta

    from sqlalchemy import update

    from backend.projects import service as projects
    from backend.projects.models import Item, ProjectCreate
    from backend.quality import service as quality
    from backend.quality.models import ItemResult
    from backend.tasks import service as tasks
    from backend.tasks.models import AnswerSubmit, Task
    from tests.tasks.helpers import OWNER, make_contributor

    car = {"label": "car", "x": 10, "y": 10, "width": 40, "height": 40}
    with Session(get_engine()) as s:
        project = projects.create_project(
            session=s,
            owner=OWNER,
            data=ProjectCreate(
                task_type="image_bbox",
                title="boxes",
                instructions="mark the cars",
                label_schema={"classes": ["car", "bus"]},
                overlap=3,
                reward_per_answer=1,
                min_confidence=0.5,
                max_extra_answers=0,
                min_ms_per_task=0,
                max_answers_per_minute=10_000,
            ),
        )
        s.add_all(
            Item(
                project_id=project.id,
                kind="image",
                content_hash="0x" + f"{k:064x}",
                width=100,
                height=100,
                created_at=project.created_at,
            )
            for k in range(5)
        )
        s.commit()
        item_ids = sorted(i.id for i in s.exec(select(Item).where(Item.project_id == project.id)))
        for who in [make_contributor(s) for _ in range(3)]:
            for _ in item_ids:
                task = tasks.next_task(session=s, project_id=project.id, contributor=who)
                s.execute(
                    update(Task)
                    .where(col(Task.id) == task.id)
                    .values(leased_at=task.leased_at - timedelta(seconds=5))
                )
                s.commit()
                tasks.submit_answer(
                    session=s,
                    task_id=task.id,
                    contributor=who,
                    data=AnswerSubmit(answer={"boxes": [car]}),
                )
        poisoned_item = item_ids[2]
        poisoned = s.exec(select(Answer).where(Answer.item_id == poisoned_item)).first()
        s.execute(
            update(Answer)
            .where(col(Answer.id) == poisoned.id)
            .values(payload={"boxes": [car] * 100_000})
        )
        s.commit()
        project_id = project.id

    def decided():
        with Session(get_engine()) as s:
            results = s.exec(select(ItemResult.item_id).where(ItemResult.project_id == project_id))
            aside = s.get(Item, poisoned_item).set_aside_reason
            return aside and sorted(results.all())

    with worker(beat=True, PROVENANT_AGGREGATE_INTERVAL_S="0.3") as proc:
        finished = poll(decided, timeout=60, what="the project's other items to be decided")
        assert finished == [i for i in item_ids if i != poisoned_item]
        poll(lambda: _aggregated(project_id), timeout=30, what="the run to mark its answers")
        assert proc.poll() is None  # the worker lives on

    with Session(get_engine()) as s:
        aside = s.get(Item, poisoned_item)
        assert "100002 boxes" in aside.set_aside_reason and aside.finalized  # closed to leases
        statuses = {a.status for a in s.exec(select(Answer).where(Answer.item_id == poisoned_item))}
        assert statuses == {AnswerStatus.pending}  # kept: neither paid nor rejected
        others = s.exec(
            select(Answer).where(Answer.project_id == project_id, Answer.item_id != poisoned_item)
        ).all()
        assert {a.status for a in others} == {AnswerStatus.accepted}
        report = quality.report(session=s, project=s.get(Project, project_id))
        assert [(i.item_id, i.answers) for i in report.set_aside] == [(poisoned_item, 3)]
        assert report.items["final"] == 4 and report.items["set_aside"] == 1
