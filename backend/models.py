"""Imports every table module so SQLModel.metadata knows the whole schema (for Alembic)."""

from backend.auth.models import AuthSession, SiweNonce
from backend.consent.models import Consent

__all__ = ["AuthSession", "Consent", "SiweNonce"]
