"""Imports every table module so SQLModel.metadata knows the whole schema (for Alembic)."""

from backend.audit.models import VersionVerification
from backend.auth.models import AuthSession, SiweNonce
from backend.chain.models import ChainCursor
from backend.consent.models import Consent
from backend.datasets.models import (
    DatasetAnswer,
    DatasetContributor,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    Licence,
    MarketplaceEvent,
    RoyaltyClaim,
)
from backend.projects.models import Item, Project
from backend.provenance.models import Batch
from backend.quality.models import ContributorQuality, FraudFlag, ItemResult
from backend.rewards.models import (
    EscrowClaim,
    EscrowEvent,
    EscrowProject,
    RewardEntry,
    RewardEpoch,
)
from backend.tasks.models import Answer, Task

__all__ = [
    "VersionVerification",
    "Answer",
    "AuthSession",
    "Batch",
    "ChainCursor",
    "Consent",
    "DatasetAnswer",
    "DatasetContributor",
    "DatasetExport",
    "DatasetItem",
    "DatasetVersion",
    "ContributorQuality",
    "EscrowClaim",
    "EscrowEvent",
    "EscrowProject",
    "FraudFlag",
    "Item",
    "Licence",
    "MarketplaceEvent",
    "ItemResult",
    "Project",
    "RewardEntry",
    "RewardEpoch",
    "RoyaltyClaim",
    "SiweNonce",
    "Task",
]
