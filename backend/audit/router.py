"""The verification of a published version, as the worker last ran it."""

from fastapi import APIRouter

from backend.audit.models import ProvenanceSummary, VerificationPublic
from backend.audit.service import provenance_summary, verification_public
from backend.core.params import RowId
from backend.deps import MaybeUser, SessionDep

router = APIRouter(tags=["audit"])


@router.get("/versions/{version_id}/verification", response_model=VerificationPublic)
def get_verification(
    version_id: RowId, session: SessionDep, viewer: MaybeUser
) -> VerificationPublic:
    """The report of `provenant verify` run by the worker on this version's manifest against
    the chain: ``verified``, ``failed`` (each check's status; the failing facts for those
    who may read the manifest) or ``pending``."""
    return verification_public(session=session, version_id=version_id, viewer=viewer)


@router.get("/versions/{version_id}/provenance", response_model=ProvenanceSummary)
def get_provenance(version_id: RowId, session: SessionDep, viewer: MaybeUser) -> ProvenanceSummary:
    """Where a version's labels come from, without its data: contributors by pseudonym with
    their answers, weight and consented scopes; how many contributors' consents cover each
    scope; what was left out and why; the batches and transactions anchoring its answers;
    the method; and the verification report."""
    return provenance_summary(session=session, version_id=version_id, viewer=viewer)
