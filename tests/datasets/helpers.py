"""Builders for the dataset tests: a project whose items are decided, answered by given
contributors through the real task service, with its leaves anchored on the test chain."""

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.consent.models import Consent
from backend.core.config import get_settings
from backend.deps import get_storage
from backend.projects import service as projects
from backend.projects.models import Item, Project, ProjectCreate
from backend.provenance import service as provenance
from backend.quality.models import AnswerStatus
from backend.tasks import service as tasks
from backend.tasks.models import Answer, AnswerSubmit
from tests.factories import png_bytes, recorded_consent_row

CLASSES = ["cat", "dog"]


def consent_for(session: Session, contributor: str, *, scopes: int = 3) -> str:
    """A recorded consent for ``scopes`` (1 research, 2 commercial AI training, 3 both)."""
    consent_hash = recorded_consent_row(session, contributor)
    row = session.exec(select(Consent).where(Consent.consent_hash == consent_hash)).one()
    row.scopes = scopes
    session.add(row)
    session.commit()
    return consent_hash


def decided_project(
    session: Session,
    chain: ChainClient,
    owner: str,
    contributors: list[str],
    n_items: int,
    label_of: Callable[[int, str], str],
    *,
    status_of: Callable[[int, str], AnswerStatus] = lambda i, c: AnswerStatus.accepted,
    images: bool = False,
) -> Project:
    """Every contributor answers every one of ``n_items`` items (overlap = their number) with
    ``label_of(item number, contributor)``; the answers get ``status_of(...)``, the items are
    finalised and every leaf is anchored. Contributors without a consent get one for both uses."""
    project = projects.create_project(
        session=session,
        owner=owner,
        data=ProjectCreate(
            task_type="image_classification" if images else "text_classification",
            title="Pets",
            instructions="Cat or dog?",
            label_schema={"classes": CLASSES},
            overlap=len(contributors),
            reward_per_answer=10**15,
        ),
    )
    if images:
        projects.add_image_items(
            session=session,
            settings=get_settings(),
            storage=get_storage(),
            project=project,
            files=[(f"pet-{n}.png", png_bytes(color=(n, 90, 200))) for n in range(n_items)],
            gold_answers={},
        )
        number = {
            i.id: int(i.external_id.split("-")[1].split(".")[0])  # type: ignore[union-attr]
            for i in session.exec(select(Item).where(Item.project_id == project.id))
        }
    else:
        rows = [{"text": f"pet {n}", "id": f"pet-{n}"} for n in range(n_items)]
        projects.add_text_items(
            session=session,
            settings=get_settings(),
            project=project,
            data="\n".join(json.dumps(r) for r in rows).encode(),
            filename="items.jsonl",
            content_type=None,
        )
        number = {
            i.id: int(i.text.split()[1])  # type: ignore[union-attr]
            for i in session.exec(select(Item).where(Item.project_id == project.id))
        }
    statuses: dict[AnswerStatus, list[int]] = {}
    for contributor in contributors:
        if session.exec(select(Consent).where(Consent.contributor == contributor)).first() is None:
            consent_for(session, contributor)
        for _ in range(n_items):
            lease = tasks.next_task(
                session=session,
                project_id=project.id,  # type: ignore[arg-type]
                contributor=contributor,
            )
            n = number[lease.item_id]
            stored, _ = tasks.submit_answer(
                session=session,
                task_id=lease.id,  # type: ignore[arg-type]
                contributor=contributor,
                data=AnswerSubmit(answer={"label": label_of(n, contributor)}),
            )
            statuses.setdefault(status_of(n, contributor), []).append(stored.id)  # type: ignore[arg-type]
    for status, ids in statuses.items():
        session.execute(update(Answer).where(col(Answer.id).in_(ids)).values(status=status))
    session.execute(update(Item).where(col(Item.project_id) == project.id).values(finalized=True))
    top = session.exec(select(func.max(Answer.id)).where(Answer.project_id == project.id)).one()
    session.execute(
        update(Project).where(col(Project.id) == project.id).values(aggregated_through=top)
    )
    session.commit()
    anchor_everything(session, chain)
    session.refresh(project)
    return project


def anchor_everything(session: Session, chain: ChainClient) -> None:
    while True:
        batch = provenance.build_batch(
            session=session, storage=get_storage(), settings=get_settings(), force=True
        )
        if batch is None:
            return
        provenance.anchor_batch(session=session, chain=chain, batch_id=batch.id)  # type: ignore[arg-type]


def answers_of(session: Session, project_id: int) -> list[Answer]:
    return list(session.exec(select(Answer).where(Answer.project_id == project_id)))


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
