"""Consent terms: versioned texts, the uses a contributor can allow, and the royalty share.

The terms are data: a new version is a new entry here, never an edit of a published one,
because its keccak hash is what contributors sign and what the chain records.
"""

from dataclasses import dataclass
from functools import cached_property

from eth_utils import keccak

from backend.core.errors import BadRequest, NotFound


@dataclass(frozen=True)
class Scope:
    bit: int
    name: str
    description: str


SCOPES: tuple[Scope, ...] = (
    Scope(1 << 0, "research", "Non-commercial research, including academic model training"),
    Scope(1 << 1, "commercial_ai_training", "Training and evaluating commercial AI models"),
)
SCOPES_BY_NAME = {s.name: s for s in SCOPES}


@dataclass(frozen=True)
class TermsVersion:
    version: int
    title: str
    text: str
    royalty_bps: int  # share of each dataset licence paid to contributors, in basis points
    allowed_scopes: int  # bitmask of SCOPES a contributor may choose from

    @cached_property
    def terms_hash(self) -> str:
        return "0x" + keccak(text=self.text).hex()


_TERMS_V1_TEXT = """Provenant contributor terms, version 1.

1. You choose the uses of your contributions you allow: non-commercial research, commercial AI
   training, or both. Your answers are only included in datasets licensed for the uses you allow.
2. Each contribution you make is hashed and recorded on a public blockchain, with your account
   address, so that anyone can verify where a dataset's labels came from.
3. You are paid the project's reward for each answer that passes validation, and you receive
   the royalty share stated in these terms of every licence sold for a dataset version that
   contains your work, in proportion to your contribution.
4. You can revoke this consent at any time. Revocation is recorded on chain and excludes your
   contributions from every dataset version published after it; versions already licensed
   remain as they were.
"""

TERMS: tuple[TermsVersion, ...] = (
    TermsVersion(
        version=1,
        title="Provenant contributor terms v1",
        text=_TERMS_V1_TEXT,
        royalty_bps=2000,
        allowed_scopes=SCOPES_BY_NAME["research"].bit
        | SCOPES_BY_NAME["commercial_ai_training"].bit,
    ),
)
TERMS_BY_VERSION = {t.version: t for t in TERMS}


def current_terms() -> TermsVersion:
    return TERMS[-1]


def get_terms(version: int) -> TermsVersion:
    try:
        return TERMS_BY_VERSION[version]
    except KeyError:
        raise NotFound(f"there is no terms version {version}") from None


def scopes_from_names(names: list[str], terms: TermsVersion) -> int:
    """Turn scope names into the on-chain bitmask, naming any that are unknown or not offered."""
    if not names:
        raise BadRequest("choose at least one scope: " + ", ".join(SCOPES_BY_NAME))
    mask = 0
    for name in names:
        scope = SCOPES_BY_NAME.get(name)
        if scope is None:
            raise BadRequest(f"unknown scope {name!r}; known scopes: {', '.join(SCOPES_BY_NAME)}")
        if not terms.allowed_scopes & scope.bit:
            raise BadRequest(f"scope {name!r} is not offered by terms version {terms.version}")
        mask |= scope.bit
    return mask


def scope_names(mask: int) -> list[str]:
    return [s.name for s in SCOPES if mask & s.bit]
