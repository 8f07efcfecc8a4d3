import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from backend.core.errors import BadRequest
from backend.deps import CurrentUser, SessionDep, SettingsDep, StorageDep
from backend.projects import service
from backend.projects.models import ItemPublic, ProjectCreate, ProjectPublic, UploadResult

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectPublic, status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, owner: CurrentUser) -> Any:
    """Create a labeling project; the caller becomes its requester."""
    return service.create_project(session=session, owner=owner, data=body)


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project_id: int, session: SessionDep) -> Any:
    """A project's public description."""
    return service.get_project(session=session, project_id=project_id)


@router.post("/{project_id}/items/images", response_model=UploadResult, status_code=201)
async def upload_images(
    project_id: int,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    owner: CurrentUser,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP images")],
    gold_answers: Annotated[
        str | None, Form(description="JSON object: file name -> gold answer")
    ] = None,
) -> UploadResult:
    """Upload images; each is validated, stripped of metadata, re-encoded and thumbnailed."""
    project = service.get_owned_project(session=session, project_id=project_id, owner=owner)
    golds: dict[str, Any] = {}
    if gold_answers:
        try:
            golds = json.loads(gold_answers)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"gold_answers is not valid JSON: {exc.msg}") from exc
        if not isinstance(golds, dict):
            raise BadRequest("gold_answers must be a JSON object mapping file names to answers")
    blobs = []
    for upload in files:
        # Read one byte past the limit: enough to refuse an oversize file without holding it.
        data = await upload.read(settings.max_image_bytes + 1)
        blobs.append((upload.filename or "upload", data))
    return service.add_image_items(
        session=session,
        settings=settings,
        storage=storage,
        project=project,
        files=blobs,
        gold_answers=golds,
    )


@router.post("/{project_id}/items/text", response_model=UploadResult, status_code=201)
async def upload_text(
    project_id: int,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentUser,
    file: Annotated[UploadFile, File(description="JSONL or CSV with a 'text' field per row")],
) -> UploadResult:
    """Upload text items in bulk; a bad row is reported by line and nothing is stored."""
    project = service.get_owned_project(session=session, project_id=project_id, owner=owner)
    data = await file.read(settings.max_text_upload_bytes + 1)
    return service.add_text_items(
        session=session,
        settings=settings,
        project=project,
        data=data,
        filename=file.filename,
        content_type=file.content_type,
    )


@router.get("/{project_id}/items", response_model=list[ItemPublic])
def list_items(
    project_id: int,
    session: SessionDep,
    owner: CurrentUser,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ItemPublic]:
    """The project's items, gold answers included (owner only)."""
    project = service.get_owned_project(session=session, project_id=project_id, owner=owner)
    items = service.list_items(session=session, project=project, offset=offset, limit=limit)
    return [service.to_item_public(i) for i in items]
