"""The blob storage interface: immutable bytes addressed by their SHA-256 digest.

Backends (local disk now, object storage later) implement ``BlobStorage``; callers keep only
the digest. Digests are validated here so no backend ever builds a path or key from an
unchecked string.
"""

import hashlib
import re
from typing import BinaryIO, Protocol

from backend.core.errors import BadRequest

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


class BlobStorage(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` once and return its SHA-256 hex digest; storing it again is a no-op."""
        ...

    def put_file(self, source: BinaryIO) -> str:
        """Store a readable file's content once, streamed (constant memory whatever its size);
        return its SHA-256 hex digest. The file is read from its current position to its end."""
        ...

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes; raise NotFound if absent."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for streaming reads; the caller closes it. Raise NotFound if absent."""
        ...


def digest_of(data: bytes) -> str:
    """The SHA-256 hex digest that names ``data`` in every backend."""
    return hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise BadRequest."""
    if not isinstance(digest, str) or _DIGEST_RE.fullmatch(digest) is None:
        # Keep the echo short: the value comes from the client.
        raise BadRequest(
            f"invalid blob digest {str(digest)[:80]!r}: expected 64 lowercase hex characters"
        )
    return digest
