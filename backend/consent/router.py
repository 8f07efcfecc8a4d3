from fastapi import APIRouter, status

from backend.chain.client import ChainClient
from backend.consent import service
from backend.consent import terms as terms_mod
from backend.consent.models import (
    Consent,
    ConsentPublic,
    ConsentRequest,
    ConsentStatusPublic,
    ConsentSubmit,
    RelayAction,
    RevocationSubmit,
    TermsPublic,
    TypedDataPublic,
)
from backend.core.params import Hash32
from backend.deps import ChainDep, CurrentUser, SessionDep, SettingsDep
from workers.consent_tasks import enqueue_relay

router = APIRouter(prefix="/consent", tags=["consent"])


def _public(row: Consent, chain: ChainClient) -> ConsentPublic:
    return service.to_public(
        row, chain_id=chain.chain_id, registry=chain.deployments.address_of(service.REGISTRY)
    )


@router.get("/terms", response_model=list[TermsPublic])
def list_terms() -> list[TermsPublic]:
    """Every published terms version, newest last."""
    return [
        TermsPublic(
            version=t.version,
            title=t.title,
            text=t.text,
            terms_hash=t.terms_hash,
            royalty_bps=t.royalty_bps,
            scopes=[
                {"name": s.name, "description": s.description}
                for s in terms_mod.SCOPES
                if t.allowed_scopes & s.bit
            ],
        )
        for t in terms_mod.TERMS
    ]


@router.post("/typed-data", response_model=TypedDataPublic)
def consent_typed_data(
    body: ConsentRequest,
    session: SessionDep,
    chain: ChainDep,
    settings: SettingsDep,
    address: CurrentUser,
) -> TypedDataPublic:
    """EIP-712 ConsentV2 typed data, with the end date if any, for the caller to sign."""
    return service.prepare_consent(
        session=session,
        chain=chain,
        settings=settings,
        contributor=address,
        scope_names=body.scopes,
        terms_version=body.terms_version,
        valid_until=body.valid_until,
    )


@router.post("", response_model=ConsentPublic, status_code=status.HTTP_202_ACCEPTED)
def submit_consent(
    body: ConsentSubmit, session: SessionDep, chain: ChainDep, address: CurrentUser
) -> ConsentPublic:
    """Submit a signed consent; the operator relays it to ConsentRegistry."""
    # Only the request that stored the consent enqueues its relay: a resubmission (or the
    # loser of a concurrent one) gets the same row back and adds no second relay.
    row = service.submit_consent(
        session=session,
        chain=chain,
        contributor=address,
        data=body,
        on_stored=lambda stored: enqueue_relay(stored.id, RelayAction.record),
    )
    return _public(row, chain)


@router.get("", response_model=ConsentStatusPublic)
def consent_status(
    session: SessionDep, chain: ChainDep, address: CurrentUser
) -> ConsentStatusPublic:
    """The caller's consents and the one in force, with their transactions."""
    return service.consent_status(session=session, chain=chain, contributor=address)


@router.get("/{consent_hash}", response_model=ConsentPublic)
def get_consent(
    consent_hash: Hash32, session: SessionDep, chain: ChainDep, address: CurrentUser
) -> ConsentPublic:
    """One of the caller's consents."""
    row = service.get_owned_consent(session=session, contributor=address, consent_hash=consent_hash)
    return _public(row, chain)


@router.post("/{consent_hash}/revoke/typed-data", response_model=TypedDataPublic)
def revocation_typed_data(
    consent_hash: Hash32,
    session: SessionDep,
    chain: ChainDep,
    settings: SettingsDep,
    address: CurrentUser,
) -> TypedDataPublic:
    """EIP-712 Revocation typed data for the caller to sign."""
    return service.prepare_revocation(
        session=session,
        chain=chain,
        settings=settings,
        contributor=address,
        consent_hash=consent_hash,
    )


@router.post("/{consent_hash}/revoke", response_model=ConsentPublic, status_code=202)
def revoke(
    consent_hash: Hash32,
    body: RevocationSubmit,
    session: SessionDep,
    chain: ChainDep,
    address: CurrentUser,
) -> ConsentPublic:
    """Submit a signed revocation; the operator relays it to ConsentRegistry."""
    row = service.submit_revocation(
        session=session,
        chain=chain,
        contributor=address,
        consent_hash=consent_hash,
        data=body,
        on_stored=lambda stored: enqueue_relay(stored.id, RelayAction.revoke),
    )
    return _public(row, chain)
