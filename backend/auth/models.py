from datetime import datetime

from sqlmodel import Field, SQLModel


class SiweNonce(SQLModel, table=True):
    __tablename__ = "siwe_nonce"

    nonce: str = Field(primary_key=True, max_length=64)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_session"

    # Only the SHA-256 of the bearer token is stored: a database leak yields no sessions.
    token_hash: str = Field(primary_key=True, max_length=64)
    address: str = Field(index=True, max_length=42)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class NoncePublic(SQLModel):
    nonce: str
    domain: str
    uri: str
    chain_id: int
    issued_at: str
    expiration_time: str
    message: str | None = None


class SignInRequest(SQLModel):
    message: str
    signature: str


class SessionPublic(SQLModel):
    token: str
    token_type: str = "bearer"
    address: str
    expires_at: datetime
