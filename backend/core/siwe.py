"""Sign-In with Ethereum (EIP-4361) messages: build, parse strictly, and check the signature.

Written here rather than taken from PyPI because both published implementations (`siwe` 4.4
and its successor `signinwithethereum` 5) pin eth-account<0.14 and web3<8, which conflicts
with the web3 8 this project is fixed to. The format is small and fully specified by the
EIP's ABNF; this parser accepts exactly that grammar (minus the optional scheme prefix) and
rejects anything else with a reason.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
# At least 8 (EIP-4361); ours are 32 and the column holds 64.
_NONCE_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:@%_~]+$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[!-~]+$")  # RFC 3986: ASCII
_OPTIONAL_FIELDS = ("Expiration Time", "Not Before", "Request ID")


class SiweError(ValueError):
    """The message does not follow EIP-4361, or its signature does not match it."""


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    statement: str | None = None
    version: str = "1"
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)

    def to_text(self) -> str:
        lines = [f"{self.domain}{HEADER_SUFFIX}", self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {format_time(self.issued_at)}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {format_time(self.expiration_time)}")
        if self.not_before is not None:
            lines.append(f"Not Before: {format_time(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {r}" for r in self.resources]
        return "\n".join(lines)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC; naive datetimes are taken to be UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# RFC 3339's date-time, in ASCII digits only: Python's fromisoformat and int() also take
# other scripts' digits and more shapes than the EIP's grammar allows.
_TIME_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Dates a sign-in message can honestly carry. Far narrower than datetime's years 1 to 9999,
# whose edges overflow as soon as a time zone is applied or a time-to-live is added.
MIN_YEAR, MAX_YEAR = 1970, 9000
# EIP-155 chain ids in use fit 64 bits; a longer string of digits is not one.
_CHAIN_ID_RE = re.compile(r"[1-9][0-9]{0,19}")


def _parse_time(name: str, value: str) -> datetime:
    """An RFC 3339 date-time with its offset, as an aware datetime in UTC."""
    shown = value if len(value) <= 40 else value[:40] + "…"
    found = _TIME_RE.fullmatch(value)
    if found is None:
        raise SiweError(f"'{name}' is not an RFC 3339 date-time with a time zone: {shown!r}")
    zone = found["zone"].upper()
    fraction = (found["fraction"] or "")[:6]  # datetime keeps microseconds
    text = f"{found['date']}T{found['time']}{'.' + fraction.ljust(6, '0') if fraction else ''}"
    try:
        parsed = datetime.fromisoformat(text + ("+00:00" if zone == "Z" else zone))
    except ValueError as exc:
        raise SiweError(f"'{name}' is not a valid date-time: {shown!r} ({exc})") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise SiweError(f"'{name}' must be a date between the years {MIN_YEAR} and {MAX_YEAR}")
    return parsed.astimezone(UTC)


def parse_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message, raising SiweError that names the first malformed part."""
    lines = text.split("\n")
    if len(lines) < 9:
        raise SiweError("message is too short to be an EIP-4361 message")
    header = lines[0]
    if not header.endswith(HEADER_SUFFIX):
        raise SiweError(
            "first line must be '<domain> wants you to sign in with your Ethereum account:'"
        )
    domain = header[: -len(HEADER_SUFFIX)]
    if not domain or not _DOMAIN_RE.fullmatch(domain):
        raise SiweError(f"invalid domain {domain!r}")
    address = lines[1]
    if not is_checksum_address(address):
        raise SiweError("address must be an EIP-55 checksummed Ethereum address")
    if lines[2] != "":
        raise SiweError("expected an empty line after the address")
    # Either "<statement>", "" then the URI line, or "" then the URI line directly.
    if lines[3] == "":
        statement, i = None, 4
    else:
        statement, i = lines[3], 4
        if lines[i] != "":
            raise SiweError("expected an empty line after the statement")
        i += 1
    if statement is not None and "\n" in statement:
        raise SiweError("statement must be a single line")

    def take(name: str) -> str:
        nonlocal i
        prefix = f"{name}: "
        if i >= len(lines) or not lines[i].startswith(prefix):
            raise SiweError(f"missing '{name}' field")
        value = lines[i][len(prefix) :]
        i += 1
        return value

    uri = take("URI")
    if not _URI_RE.fullmatch(uri):
        raise SiweError(f"invalid URI {uri!r}")
    version = take("Version")
    if version != "1":
        raise SiweError(f"unsupported version {version!r}; EIP-4361 defines version 1")
    chain_raw = take("Chain ID")
    if not _CHAIN_ID_RE.fullmatch(chain_raw):
        raise SiweError(f"invalid chain id {chain_raw[:40]!r}: at most 20 ASCII digits")
    nonce = take("Nonce")
    if not _NONCE_RE.fullmatch(nonce):
        raise SiweError("nonce must be 8 to 64 ASCII letters and digits")
    issued_at = _parse_time("Issued At", take("Issued At"))

    optional: dict[str, str] = {}
    for name in _OPTIONAL_FIELDS:
        if i < len(lines) and lines[i].startswith(f"{name}: "):
            optional[name] = take(name)
    resources: list[str] = []
    if i < len(lines) and lines[i] == "Resources:":
        i += 1
        while i < len(lines) and lines[i].startswith("- "):
            resources.append(lines[i][2:])
            i += 1
    if i != len(lines):
        raise SiweError(f"unexpected content at line {i + 1}: {lines[i]!r}")

    return SiweMessage(
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_raw),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=(
            _parse_time("Expiration Time", optional["Expiration Time"])
            if "Expiration Time" in optional
            else None
        ),
        not_before=(
            _parse_time("Not Before", optional["Not Before"]) if "Not Before" in optional else None
        ),
        request_id=optional.get("Request ID"),
        resources=tuple(resources),
    )


def recover_signer(text: str, signature: str) -> str:
    """Return the checksummed address that signed ``text`` with EIP-191 personal_sign."""
    try:
        return Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise SiweError(f"signature is malformed: {exc}") from exc
