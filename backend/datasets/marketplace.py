"""DatasetMarketplace from the service's side: registering versions, licence and royalty
transactions, and the database's mirror of the contract's events.

Money and licences live on chain. The requester registers a built version from their own
wallet (``registration_plan`` prepares the transaction) or signs its terms (EIP-712) for the
operator to relay; a buyer's wallet sends approve + buy; anyone may claim a contributor's
royalty, and the tokens always go to the contributor, so the operator relays claims freely.
``sync`` applies the contract's events to the mirror (versions' status, licences, claims)
from a cursor; ``rebuild`` folds every event since deployment and compares.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from sqlalchemy import delete
from sqlmodel import Session, col, select
from web3.contract import Contract
from web3.types import EventData

from backend.chain import eip712, follow
from backend.chain.client import ChainClient
from backend.chain.follow import block_hash, json_value
from backend.chain.models import ChainCursor
from backend.consent.typed_data import normalise_signature
from backend.core.errors import BadRequest, ChainRevert, Conflict, InvalidSignature, NotFound
from backend.core.time import utcnow
from backend.datasets import service
from backend.datasets.models import (
    DatasetContributor,
    DatasetVersion,
    Licence,
    LicencePlan,
    MarketplaceEvent,
    RegistrationPlan,
    RelayedRoyaltyClaim,
    RoyaltyClaim,
    RoyaltyProof,
    UnsignedTx,
    VersionStatus,
)
from backend.projects.models import Project
from backend.rewards.service import ensure_registered

MARKETPLACE = "DatasetMarketplace"
TOKEN_ABI = "TestRewardToken"  # any ERC-20 is called through an OpenZeppelin ERC20's ABI
EVENTS = ("VersionRegistered", "VersionWithdrawn", "Licensed", "RoyaltyClaimed")
CURSOR = "marketplace"
REGISTRATION_TTL_S = 3600
DOMAIN_NAME, DOMAIN_VERSION = "Provenant DatasetMarketplace", "1"
VERSION_TERMS_FIELDS = [
    {"name": "projectId", "type": "uint256"},
    {"name": "version", "type": "uint32"},
    {"name": "manifestHash", "type": "bytes32"},
    {"name": "itemRoot", "type": "bytes32"},
    {"name": "weightRoot", "type": "bytes32"},
    {"name": "totalWeight", "type": "uint256"},
    {"name": "price", "type": "uint256"},
    {"name": "token", "type": "address"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "feeBps", "type": "uint16"},
    {"name": "requesterBps", "type": "uint16"},
    {"name": "poolBps", "type": "uint16"},
    {"name": "deadline", "type": "uint256"},
]


def contract(chain: ChainClient) -> Contract:
    return chain.contract(MARKETPLACE)


def _terms(version: DatasetVersion, deadline: int) -> dict[str, Any]:
    assert version.manifest_hash and version.item_root and version.weight_root
    return {
        "projectId": version.project_id,
        "version": version.number,
        "manifestHash": version.manifest_hash,
        "itemRoot": version.item_root,
        "weightRoot": version.weight_root,
        "totalWeight": int(version.total_weight or 0),
        "price": int(version.price),
        "token": version.token,
        "termsHash": version.license_terms_hash,
        "feeBps": version.fee_bps,
        "requesterBps": version.requester_bps,
        "poolBps": version.pool_bps,
        "deadline": deadline,
    }


def _terms_tuple(terms: dict[str, Any]) -> tuple[Any, ...]:
    def value(name: str, kind: str) -> Any:
        v = terms[name]
        return bytes.fromhex(v[2:]) if kind == "bytes32" else v

    return tuple(value(f["name"], f["type"]) for f in VERSION_TERMS_FIELDS)


def _typed_data(chain: ChainClient, terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": eip712.DOMAIN_FIELDS, "VersionTerms": VERSION_TERMS_FIELDS},
        "primaryType": "VersionTerms",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain.chain_id,
            "verifyingContract": contract(chain).address,
        },
        "message": terms,
    }


def _digest(typed: dict[str, Any]) -> str:
    signable = encode_typed_data(full_message=typed)
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def _ready(session: Session, chain: ChainClient, version: DatasetVersion) -> Project:
    if version.status in (VersionStatus.published, VersionStatus.withdrawn):
        raise Conflict(f"version {version.number} is already registered on chain")
    if version.status != VersionStatus.built:
        raise Conflict(
            f"version {version.number} is {version.status}; only a built version is registered"
        )
    project = session.get(Project, version.project_id)
    assert project is not None
    # The marketplace takes the project's requester from the escrow: register it there first.
    ensure_registered(session=session, chain=chain, project=project)
    return project


def registration_plan(
    *, session: Session, chain: ChainClient, version: DatasetVersion
) -> RegistrationPlan:
    _ready(session, chain, version)
    terms = _terms(version, int(time.time()) + REGISTRATION_TTL_S)
    market = contract(chain)
    typed = _typed_data(chain, terms)
    return RegistrationPlan(
        chain_version_id=str(service.chain_id_of(version)),
        transaction=UnsignedTx(
            description=f"register version {version.number} of project {version.project_id}",
            chain_id=chain.chain_id,
            to=market.address,
            data=market.encode_abi("registerVersion", args=[_terms_tuple(terms)]),
        ),
        typed_data=typed,
        digest=_digest(typed),
    )


def relay_registration(
    *, session: Session, chain: ChainClient, version: DatasetVersion, signature: str, deadline: int
) -> None:
    project = _ready(session, chain, version)
    if deadline <= int(time.time()):
        raise BadRequest(f"signature deadline {deadline} has passed; ask for a new plan")
    try:
        signature = normalise_signature(signature)
    except ValueError as exc:
        raise InvalidSignature(str(exc)) from exc
    terms = _terms(version, deadline)
    typed = _typed_data(chain, terms)
    try:
        signer = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise InvalidSignature(f"signature is malformed: {exc}") from exc
    if signer != project.owner:
        raise InvalidSignature(
            f"the signature recovers to {signer}, not the requester {project.owner}: sign the "
            "typed data of GET /versions/{id}/registration"
        )
    try:
        chain.transact(
            contract(chain).functions.registerVersionFor(
                _terms_tuple(terms), bytes.fromhex(signature[2:])
            )
        )
    except ChainRevert as exc:
        raise Conflict(f"the marketplace refused the registration: {exc.detail}") from exc
    sync(session=session, chain=chain)


def licence_plan(
    *, session: Session, chain: ChainClient, version: DatasetVersion, buyer: str
) -> LicencePlan:
    if version.status != VersionStatus.published:
        raise Conflict(f"version {version.number} is {version.status}: it is not for sale")
    if service.has_licence(session, version, buyer):
        raise Conflict(f"{buyer} already holds a licence for version {version.id}")
    market = contract(chain)
    token = chain.contract(TOKEN_ABI, address=to_checksum_address(version.token))
    version_id = service.chain_id_of(version)
    price = int(version.price)
    return LicencePlan(
        chain_version_id=str(version_id),
        price=version.price,
        token=version.token,
        transactions=[
            UnsignedTx(
                description=f"allow the marketplace to take {price} tokens",
                chain_id=chain.chain_id,
                to=token.address,
                data=token.encode_abi("approve", args=[market.address, price]),
            ),
            UnsignedTx(
                description=f"buy a licence for version {version.number} of project "
                f"{version.project_id}",
                chain_id=chain.chain_id,
                to=market.address,
                data=market.encode_abi("buy", args=[version_id, version.token, price]),
            ),
        ],
    )


def royalty_proof(
    *, session: Session, version: DatasetVersion, account: str, chain: ChainClient | None = None
) -> RoyaltyProof:
    """The account's weight, its proof, what it can claim now, and (given the chain) the
    claimRoyalty transaction for its own wallet."""
    share = service.contributor_share(session, version, account)
    if share is None or int(share.weight) == 0:
        raise NotFound(f"{account} has no weight in dataset version {version.id}")
    tree = service.weight_tree_of(session, version)
    index = next(i for i, v in enumerate(tree.values) if v[0] == account)
    pool = service.pool_of(session, version)
    claimed = service.claimed_of(session, version, account)
    owed = pool * int(share.weight) // int(version.total_weight or 1)
    proof = tree.proof(index)
    transaction = None
    if chain is not None:
        fn, args = _claim_call(version, account, int(share.weight), proof, claimed)
        market = contract(chain)
        transaction = UnsignedTx(
            description=f"claim your royalties from version {version.number} of project "
            f"{version.project_id}",
            chain_id=chain.chain_id,
            to=market.address,
            data=market.encode_abi(fn, args=args),
        )
    return RoyaltyProof(
        version_id=version.id,  # type: ignore[arg-type]
        chain_version_id=str(service.chain_id_of(version)),
        account=account,
        weight=share.weight,
        total_weight=version.total_weight or "0",
        proof=proof,
        pool=str(pool),
        claimed=str(claimed),
        claimable=str(max(0, owed - claimed)),
        transaction=transaction,
    )


def _claim_call(
    version: DatasetVersion, account: str, weight: int, proof: list[str], claimed: int
) -> tuple[str, list[Any]]:
    """The marketplace call that claims: with the weight's proof the first time, and without
    it once the contract holds the proven weight (from the first paid claim on), which costs
    the same whatever the number of contributors."""
    version_id = service.chain_id_of(version)
    if claimed > 0:
        return "claimRoyaltyAgain", [version_id, account]
    return "claimRoyalty", [version_id, account, weight, [bytes.fromhex(h[2:]) for h in proof]]


def relay_claim(
    *, session: Session, chain: ChainClient, version: DatasetVersion, account: str
) -> RelayedRoyaltyClaim:
    sync(session=session, chain=chain)
    proof = royalty_proof(session=session, version=version, account=account)
    if int(proof.claimable) == 0:
        raise Conflict(f"{account} has nothing to claim in version {version.id} yet")
    fn, args = _claim_call(version, account, int(proof.weight), proof.proof, int(proof.claimed))
    try:
        result = chain.transact(getattr(contract(chain).functions, fn)(*args))
    except ChainRevert as exc:
        raise Conflict(f"the marketplace refused the claim: {exc.detail}") from exc
    sync(session=session, chain=chain)
    return RelayedRoyaltyClaim(tx_hash=result.tx_hash, amount=proof.claimable)


CLAIM_BATCH = 100


def relay_all(
    *, session: Session, chain: ChainClient, version: DatasetVersion, batch: int = CLAIM_BATCH
) -> list[RelayedRoyaltyClaim]:
    """Pay every contributor of the version what they can claim now, ``batch`` of them per
    ``claimMany`` transaction (the operator pays the gas; the tokens go to each contributor).
    An entry someone claimed in between is skipped by the contract, not failed."""
    sync(session=session, chain=chain)
    owed = []
    for c in session.exec(
        select(DatasetContributor)
        .where(DatasetContributor.version_id == version.id)
        .order_by(col(DatasetContributor.address))
    ):
        if int(c.weight) == 0:
            continue
        proof = royalty_proof(session=session, version=version, account=c.address)
        if int(proof.claimable) > 0:
            owed.append(proof)
    sent = []
    market = contract(chain)
    for start in range(0, len(owed), batch):
        chunk = owed[start : start + batch]
        requests = [
            (
                int(p.chain_version_id),
                p.account,
                int(p.weight),
                # A proven weight needs no proof (see _claim_call).
                [] if int(p.claimed) > 0 else [bytes.fromhex(h[2:]) for h in p.proof],
            )
            for p in chunk
        ]
        try:
            result = chain.transact(market.functions.claimMany(requests))
        except ChainRevert as exc:
            raise Conflict(f"the marketplace refused the batch: {exc.detail}") from exc
        sent.append(
            RelayedRoyaltyClaim(
                tx_hash=result.tx_hash, amount=str(sum(int(p.claimable) for p in chunk))
            )
        )
    sync(session=session, chain=chain)
    return sent


# --- the mirror -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    block_number: int
    log_index: int
    tx_hash: str
    name: str
    args: dict[str, Any]


@dataclass
class Mirror:
    """The marketplace's state as its events make it."""

    registered: dict[str, Event] = field(default_factory=dict)  # version id -> registration
    withdrawn: set[str] = field(default_factory=set)
    licences: dict[tuple[str, str], Event] = field(default_factory=dict)
    claimed: dict[tuple[str, str], int] = field(default_factory=dict)


def _event(e: EventData) -> Event:
    args = dict(e["args"])
    if "terms" in args:  # VersionRegistered's VersionTerms struct, by field name
        terms = args["terms"]
        if not isinstance(terms, Mapping):
            terms = dict(zip((f["name"] for f in VERSION_TERMS_FIELDS), terms, strict=True))
        args["terms"] = {k: json_value(v) for k, v in dict(terms).items()}
    return Event(
        block_number=int(e["blockNumber"]),
        log_index=int(e["logIndex"]),
        tx_hash="0x" + bytes(e["transactionHash"]).hex(),
        name=str(e["event"]),
        args={k: json_value(v) for k, v in args.items()},
    )


def chain_events(chain: ChainClient, *, from_block: int, to_block: int) -> list[Event]:
    """DatasetMarketplace's events in the block range, in chain order."""
    found = follow.events(chain, contract(chain), EVENTS, from_block=from_block, to_block=to_block)
    return [_event(e) for e in found]


def fold(events: list[Event], mirror: Mirror | None = None) -> Mirror:
    mirror = mirror or Mirror()
    for e in events:
        vid = e.args["versionId"]
        if e.name == "VersionRegistered":
            mirror.registered[vid] = e
        elif e.name == "VersionWithdrawn":
            mirror.withdrawn.add(vid)
        elif e.name == "Licensed":
            mirror.licences[(vid, e.args["buyer"])] = e
        elif e.name == "RoyaltyClaimed":
            mirror.claimed[(vid, e.args["account"])] = int(e.args["cumulative"])
    return mirror


def _apply(session: Session, mirror: Mirror) -> None:
    for vid, e in mirror.registered.items():
        row = service.version_on_chain(session, vid)
        if row is None or row.manifest_hash != e.args["terms"]["manifestHash"]:
            continue  # registered by another deployment of ours, or by nobody we know
        row.status = VersionStatus.withdrawn if vid in mirror.withdrawn else VersionStatus.published
        row.tx_hash, row.block_number = e.tx_hash, e.block_number
        row.registered_at = row.registered_at or utcnow()
        row.stage = row.status
        session.add(row)
    for (vid, buyer), e in mirror.licences.items():
        exists = session.exec(
            select(Licence).where(Licence.chain_version_id == vid, Licence.buyer == buyer)
        ).first()
        if exists is None:
            session.add(
                Licence(
                    chain_version_id=vid,
                    buyer=buyer,
                    token=e.args["token"],
                    price=e.args["price"],
                    pool=e.args["pool"],
                    tx_hash=e.tx_hash,
                    block_number=e.block_number,
                )
            )
    for (vid, account), total in mirror.claimed.items():
        session.merge(RoyaltyClaim(chain_version_id=vid, account=account, claimed=str(total)))


def _store(session: Session, events: list[Event]) -> None:
    session.add_all(
        MarketplaceEvent(
            block_number=e.block_number,
            log_index=e.log_index,
            tx_hash=e.tx_hash,
            name=e.name,
            version_id=e.args["versionId"],
            args=e.args,
        )
        for e in events
    )


def _deployment_block(chain: ChainClient) -> int:
    return int(chain.deployments.contracts[MARKETPLACE].get("blockNumber", 0))


def _clear(session: Session) -> None:
    for table in (MarketplaceEvent, Licence, RoyaltyClaim):
        session.execute(delete(table))
    for row in session.exec(
        select(DatasetVersion).where(
            col(DatasetVersion.status).in_((VersionStatus.published, VersionStatus.withdrawn))
        )
    ):
        row.status, row.tx_hash, row.block_number = VersionStatus.built, None, None
        session.add(row)


def sync(*, session: Session, chain: ChainClient) -> int:
    """Apply the marketplace's events since the last sync; return how many were applied (safe
    to run from several processes at once: backend/chain/follow.py)."""
    market = contract(chain)
    started = follow.start(
        session,
        chain,
        name=CURSOR,
        contract=market.address,
        deployment_block=_deployment_block(chain),
        restart=lambda: _clear(session),
    )
    if started is None:
        return 0
    cursor, latest = started
    events = chain_events(chain, from_block=cursor.next_block, to_block=latest)
    _apply(session, fold(events, _loaded(session, events)))
    _store(session, events)
    return len(events) if follow.finish(session, chain, cursor, latest) else 0


def _loaded(session: Session, events: list[Event]) -> Mirror:
    """The mirror's withdrawals for the versions the new events touch (claims are totals)."""
    mirror = Mirror()
    touched = {e.args["versionId"] for e in events}
    for e in session.exec(
        select(MarketplaceEvent).where(
            col(MarketplaceEvent.version_id).in_(touched),
            MarketplaceEvent.name == "VersionWithdrawn",
        )
    ):
        mirror.withdrawn.add(e.version_id)
    return mirror


def _current(session: Session) -> dict[str, Any]:
    return {
        "published": sorted(
            (str(service.chain_id_of(v)), v.status, v.tx_hash)
            for v in session.exec(
                select(DatasetVersion).where(
                    col(DatasetVersion.status).in_(
                        (VersionStatus.published, VersionStatus.withdrawn)
                    )
                )
            )
        ),
        "licences": sorted(
            (lic.chain_version_id, lic.buyer, lic.price, lic.pool)
            for lic in session.exec(select(Licence))
        ),
        "claims": sorted(
            (c.chain_version_id, c.account, c.claimed) for c in session.exec(select(RoyaltyClaim))
        ),
    }


def rebuild(*, session: Session, chain: ChainClient, replace: bool = False) -> list[str]:
    """Fold every marketplace event since deployment into a fresh mirror; return how the
    database differs from it. With ``replace`` the database takes the rebuilt state."""
    latest = chain.block_number()
    events = chain_events(chain, from_block=_deployment_block(chain), to_block=latest)
    before = _current(session)
    _clear(session)
    session.flush()
    _apply(session, fold(events))
    session.flush()
    after = _current(session)
    problems = []
    for key in before:
        missing = sorted(set(after[key]) - set(before[key]))
        extra = sorted(set(before[key]) - set(after[key]))
        problems += [f"{key}: the chain has {row}, the database does not" for row in missing]
        problems += [f"{key}: the database has {row}, the chain does not" for row in extra]
    if not replace:
        session.rollback()
        return problems
    _store(session, events)
    session.merge(
        ChainCursor(
            name=CURSOR,
            next_block=latest + 1,
            chain_id=chain.chain_id,
            contract=contract(chain).address,
            block_hash=block_hash(chain, latest),
        )
    )
    session.commit()
    return problems
