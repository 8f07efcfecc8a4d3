"""Projects and their items: creation, image and text uploads, the owner's view."""

import hashlib
from collections.abc import Sequence
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.core.bodies import SenderCheck
from backend.core.config import Settings
from backend.core.errors import BadRequest, Forbidden, NotFound
from backend.core.time import utcnow
from backend.media.images import process_image
from backend.projects.bulk import parse_text_upload
from backend.projects.models import Item, ItemPublic, Project, ProjectCreate, UploadResult
from backend.projects.schemas import (
    InvalidAnswer,
    TaskType,
    normalise_label_schema,
    validate_answer,
)
from backend.storage.base import BlobStorage


def create_project(*, session: Session, owner: str, data: ProjectCreate) -> Project:
    """Create a labeling project owned by the caller."""
    project = Project(
        owner=owner,
        task_type=data.task_type.value,
        title=data.title,
        instructions=data.instructions,
        label_schema=normalise_label_schema(data.task_type, data.label_schema),
        overlap=data.overlap,
        reward_per_answer=str(data.reward_per_answer),
        reward_token=to_checksum_address(data.reward_token) if data.reward_token else None,
        gold_bonus=str(data.gold_bonus),
        gold_rate=data.gold_rate,
        lease_seconds=data.lease_seconds,
        min_confidence=data.min_confidence,
        max_extra_answers=data.max_extra_answers,
        min_gold_accuracy=data.min_gold_accuracy,
        min_gold_answers=data.min_gold_answers,
        min_skill=data.min_skill,
        min_skill_answers=data.min_skill_answers,
        min_ms_per_task=data.min_ms_per_task,
        max_answers_per_minute=data.max_answers_per_minute,
        created_at=utcnow(),
    )
    session.add(project)
    session.commit()
    session.refresh(project)
    return project


def list_projects(*, session: Session, owner: str | None, limit: int, offset: int) -> list[Project]:
    query = select(Project)
    if owner is not None:
        if not is_address(owner):
            raise BadRequest(f"'owner' is not an Ethereum address: {owner!r}")
        query = query.where(Project.owner == to_checksum_address(owner))
    query = query.order_by(col(Project.id).desc()).offset(offset).limit(limit)
    return list(session.exec(query).all())


def get_project(*, session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id}")
    return project


def get_owned_project(*, session: Session, project_id: int, owner: str) -> Project:
    project = get_project(session=session, project_id=project_id)
    check_owner(project.owner, project_id=project_id, caller=owner)
    return project


def check_owner(owner: str | None, *, project_id: int, caller: str) -> None:
    """NotFound if there is no project ``project_id`` (``owner`` None), Forbidden if it is not
    the caller's."""
    if owner is None:
        raise NotFound(f"no project with id {project_id}")
    if owner != caller:
        raise Forbidden(f"project {project_id} belongs to another account")


def _judge_owner(row: Sequence[Any] | None, caller: str, path: dict[str, Any]) -> None:
    check_owner(None if row is None else row[0], project_id=path["project_id"], caller=caller)


# Only a project's owner may send its uploads: checked by the body guard on the path before
# the body is read (backend/core/bodies.py), so a stranger's 200 MB is refused unread.
OWNER_ONLY = SenderCheck(
    query=select(col(Project.owner)).where(col(Project.id) == bindparam("project_id")),
    judge=_judge_owner,
)


def _check_gold(project: Project, gold: Any, where: str, image_size=None) -> dict[str, Any]:
    try:
        return validate_answer(
            TaskType(project.task_type), project.label_schema, gold, image_size=image_size
        )
    except InvalidAnswer as exc:
        raise BadRequest(f"{where}: gold {exc.detail}") from exc


def _insert_items(session: Session, items: list[Item]) -> UploadResult:
    """Insert new items in one transaction, skipping content already in the project."""
    project_id = items[0].project_id
    hashes = [i.content_hash for i in items]
    existing = set(
        session.exec(
            select(Item.content_hash).where(
                Item.project_id == project_id, col(Item.content_hash).in_(hashes)
            )
        )
    )
    fresh: dict[str, Item] = {}
    for item in items:
        if item.content_hash not in existing and item.content_hash not in fresh:
            fresh[item.content_hash] = item
    session.add_all(fresh.values())
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent upload of the same content won the race
        session.rollback()
        raise BadRequest(
            "some of these items were uploaded concurrently; retry the upload"
        ) from exc
    for item in fresh.values():
        session.refresh(item)
    return UploadResult(
        created=len(fresh),
        duplicates=len(items) - len(fresh),
        items=[to_item_public(i) for i in fresh.values()],
    )


def add_image_items(
    *,
    session: Session,
    settings: Settings,
    storage: BlobStorage,
    project: Project,
    files: list[tuple[str, bytes]],
    gold_answers: dict[str, Any],
) -> UploadResult:
    """Validate, normalise and store images; all are checked before any is recorded."""
    if TaskType(project.task_type).item_kind != "image":
        raise BadRequest(
            f"project {project.id} is a {project.task_type} project: upload text items"
        )
    if not files:
        raise BadRequest("no files in the upload")
    unknown = sorted(set(gold_answers) - {name for name, _ in files})
    if unknown:
        raise BadRequest(
            f"gold_answers names {unknown[0]!r}, which is not among the uploaded files"
        )
    processed = []
    for name, data in files:
        try:
            image = process_image(
                data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            )
        except BadRequest as exc:
            raise type(exc)(f"{name}: {exc.detail}") from exc
        gold = gold_answers.get(name)
        if gold is not None:
            gold = _check_gold(project, gold, name, image_size=(image.width, image.height))
        processed.append((name, image, gold))
    now = utcnow()
    items = []
    for name, image, gold in processed:
        # Blobs are content-addressed, so storing before the rows commit can only leave an
        # unreferenced copy behind, never a row without its file.
        storage.put(image.content)
        storage.put(image.thumbnail)
        items.append(
            Item(
                project_id=project.id,  # type: ignore[arg-type]
                kind="image",
                content_hash="0x" + image.content_hash,
                media_digest=image.content_hash,
                thumbnail_digest=image.thumbnail_hash,
                mime_type=image.mime_type,
                width=image.width,
                height=image.height,
                external_id=name[:200],
                is_gold=gold is not None,
                gold_answer=gold,
                created_at=now,
            )
        )
    return _insert_items(session, items)


def add_text_items(
    *,
    session: Session,
    settings: Settings,
    project: Project,
    data: bytes,
    filename: str | None,
    content_type: str | None,
) -> UploadResult:
    """Parse a JSONL/CSV upload; one bad row refuses the whole file."""
    if TaskType(project.task_type).item_kind != "text":
        raise BadRequest(f"project {project.id} is a {project.task_type} project: upload images")
    if len(data) > settings.max_text_upload_bytes:
        raise BadRequest(
            f"upload is {len(data)} bytes; at most {settings.max_text_upload_bytes} are accepted"
        )
    rows = parse_text_upload(data, filename, content_type)
    now = utcnow()
    items = []
    for row in rows:
        gold = None
        if row.gold_answer is not None:
            gold = _check_gold(project, row.gold_answer, f"line {row.line}")
        items.append(
            Item(
                project_id=project.id,  # type: ignore[arg-type]
                kind="text",
                content_hash="0x" + hashlib.sha256(row.text.encode("utf-8")).hexdigest(),
                text=row.text,
                external_id=row.external_id,
                is_gold=gold is not None,
                gold_answer=gold,
                created_at=now,
            )
        )
    return _insert_items(session, items)


def list_items(*, session: Session, project: Project, offset: int, limit: int) -> list[Item]:
    return list(
        session.exec(
            select(Item)
            .where(Item.project_id == project.id)
            .order_by(col(Item.id))
            .offset(offset)
            .limit(limit)
        )
    )


def to_item_public(item: Item) -> ItemPublic:
    return ItemPublic.model_validate(item, from_attributes=True)
