"""The shapes of a contributor's contributions page and its export."""

from datetime import datetime

from sqlmodel import SQLModel

from backend.consent.models import ConsentPublic


class AnchoringPublic(SQLModel):
    batch_id: int
    root: str
    status: str  # built, anchored, conflict
    tx_hash: str | None


class VersionUse(SQLModel):
    """A published dataset version holding the answer."""

    version_id: int
    number: int
    accepted: bool  # counted in the contributor's royalty weight


class ContributionView(SQLModel):
    answer_id: int
    project_id: int
    item_id: int
    item_content_hash: str
    submitted_at: datetime
    status: str  # pending, held, accepted, rejected
    status_reason: str | None
    reward: str  # what the answer earned, in the reward token's base units
    leaf_hash: str
    anchoring: AnchoringPublic | None  # None until its batch is built
    versions: list[VersionUse]


class VersionRoyalty(SQLModel):
    version_id: int
    number: int
    status: str
    answers: int  # the contributor's answers in the version
    weight: str
    total_weight: str
    licences_sold: int
    pool: str  # every sale's royalty share so far
    earned: str  # pool x weight / total weight
    claimed: str


class ProjectTotals(SQLModel):
    project_id: int
    title: str
    answers: int
    accepted: int
    rejected: int
    undecided: int  # pending or held
    reward_token: str | None
    reward_earned: str  # accepted answers' rewards, due or paid
    reward_claimed: str
    royalties_earned: str
    royalties_claimed: str
    versions: list[VersionRoyalty]


class ContributionsPage(SQLModel):
    total: int  # answers matching the filter
    limit: int
    offset: int
    contributions: list[ContributionView]
    projects: list[ProjectTotals]


class ContributionProof(SQLModel):
    """One answer with everything its contributor needs to check it themselves: the answer
    and its salt give ``answer_hash``; the leaf's fields give ``leaf_hash``; ``proof`` leads
    it to ``anchoring.root``, which ProvenanceRegistry holds for ``anchoring.batch_id``."""

    answer_id: int
    item_content_hash: str
    answer: dict
    salt: str | None
    answer_hash: str
    consent_hash: str
    submitted_at: int
    leaf_hash: str
    leaf_index: int | None
    proof: list[str] | None
    anchoring: AnchoringPublic | None
    status: str
    versions: list[VersionUse]


class ContributionsExport(SQLModel):
    contributor: str
    project_id: int
    project_title: str
    chain_id: int | None
    provenance_registry: str | None
    leaf_encoding: list[str]
    contributions: list[ContributionProof]
    totals: ProjectTotals


class VersionUnderConsent(SQLModel):
    version_id: int
    project_id: int
    number: int
    status: str  # published, withdrawn
    scope: str  # the use it was published for
    answers: int  # the contributor's answers in it given under this consent


class ConsentUse(SQLModel):
    """One of the contributor's consents (as GET /consent gives it) and the published
    dataset versions holding answers given under it."""

    consent: ConsentPublic
    active: bool  # the one in force now
    versions: list[VersionUnderConsent]
