import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from backend.core.bodies import check_json, max_body_bytes
from backend.core.errors import BadRequest
from backend.core.params import Limit, Offset, RowId
from backend.deps import CurrentUser, SessionDep, SettingsDep, StorageDep
from backend.projects import service
from backend.projects.bulk import check_file_name
from backend.projects.models import ItemPublic, ProjectCreate, ProjectPublic, UploadResult

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectPublic, status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, owner: CurrentUser) -> Any:
    """Create a labeling project; the caller becomes its requester."""
    return service.create_project(session=session, owner=owner, data=body)


@router.get("", response_model=list[ProjectPublic])
def list_projects(
    session: SessionDep,
    owner: Annotated[
        str | None, Query(max_length=42, description="Only this requester's projects")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Projects, newest first: every project, or one requester's (``owner``)."""
    return service.list_projects(session=session, owner=owner, limit=limit, offset=offset)


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project_id: RowId, session: SessionDep) -> Any:
    """A project's public description."""
    return service.get_project(session=session, project_id=project_id)


# A multipart body carries boundaries, part headers and (images) the gold_answers field
# besides its files.
MULTIPART_SLACK = 1024 * 1024
# An image upload's body holds at most this many files at the largest size allowed.
IMAGES_PER_UPLOAD = 20


@router.post("/{project_id}/items/images", response_model=UploadResult, status_code=201)
@max_body_bytes(
    lambda s: IMAGES_PER_UPLOAD * s.max_image_bytes + MULTIPART_SLACK, senders=service.OWNER_ONLY
)
async def upload_images(
    project_id: RowId,
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
        # A form field: the body guard did not see it as JSON.
        check_json(gold_answers, name="gold_answers")
        golds = json.loads(gold_answers)
        if not isinstance(golds, dict):
            raise BadRequest("gold_answers must be a JSON object mapping file names to answers")
    blobs = []
    for upload in files:
        check_file_name(upload.filename)
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
@max_body_bytes(lambda s: s.max_text_upload_bytes + MULTIPART_SLACK, senders=service.OWNER_ONLY)
async def upload_text(
    project_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentUser,
    file: Annotated[UploadFile, File(description="JSONL or CSV with a 'text' field per row")],
) -> UploadResult:
    """Upload text items in bulk; a bad row is reported by line and nothing is stored."""
    project = service.get_owned_project(session=session, project_id=project_id, owner=owner)
    check_file_name(file.filename)
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
    project_id: RowId,
    session: SessionDep,
    owner: CurrentUser,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[ItemPublic]:
    """The project's items, gold answers included (owner only)."""
    project = service.get_owned_project(session=session, project_id=project_id, owner=owner)
    items = service.list_items(session=session, project=project, offset=offset, limit=limit)
    return [service.to_item_public(i) for i in items]
