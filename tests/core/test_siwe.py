from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from backend.core.siwe import SiweError, SiweMessage, parse_message, recover_signer

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def make(**overrides) -> SiweMessage:
    fields = dict(
        domain="example.org",
        address=ADDRESS,
        statement="Sign in to Provenant.",
        uri="https://example.org/login",
        chain_id=31337,
        nonce="abcdef0123456789",
        issued_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )
    fields.update(overrides)
    return SiweMessage(**fields)


def test_round_trip_with_every_optional_field():
    msg = make(
        expiration_time=datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
        not_before=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
        request_id="req-1",
        resources=("ipfs://bafy", "https://example.org/terms"),
    )
    assert parse_message(msg.to_text()) == msg


def test_round_trip_without_statement():
    msg = make(statement=None)
    text = msg.to_text()
    assert f"{ADDRESS}\n\n\nURI:" in text  # the ABNF's empty-statement form
    assert parse_message(text) == msg


def test_text_matches_eip_4361_layout():
    assert make().to_text() == (
        "example.org wants you to sign in with your Ethereum account:\n"
        f"{ADDRESS}\n\nSign in to Provenant.\n\n"
        "URI: https://example.org/login\nVersion: 1\nChain ID: 31337\n"
        "Nonce: abcdef0123456789\nIssued At: 2026-11-23T12:00:00Z"
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t.replace(" wants you to sign in", " wants to sign in"), "first line"),
        (lambda t: t.replace(ADDRESS, ADDRESS.lower()), "EIP-55"),
        (lambda t: t.replace("Version: 1", "Version: 2"), "unsupported version"),
        (lambda t: t.replace("Chain ID: 31337", "Chain ID: x1"), "invalid chain id"),
        (lambda t: t.replace("Nonce: abcdef0123456789", "Nonce: short"), "nonce"),
        (
            lambda t: t.replace("Issued At: 2026-11-23T12:00:00Z", "Issued At: yesterday"),
            "RFC 3339",
        ),
        (lambda t: t.replace("\nVersion: 1", ""), "missing 'Version'"),
        (lambda t: t + "\nEvil: extra", "unexpected content"),
        (lambda t: t.replace("URI: https://example.org/login", "URI: not a uri"), "invalid URI"),
        (lambda t: "hello", "too short"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(mutate, reason):
    with pytest.raises(SiweError, match=reason):
        parse_message(mutate(make().to_text()))


def test_recover_signer_returns_the_signing_account():
    account = Account.create()
    text = make(address=account.address).to_text()
    signature = account.sign_message(encode_defunct(text=text)).signature.hex()
    assert recover_signer(text, signature) == account.address
    assert recover_signer(text + " ", signature) != account.address


def test_recover_signer_rejects_garbage():
    with pytest.raises(SiweError, match="malformed"):
        recover_signer("x", "0x1234")


def test_naive_times_are_formatted_as_utc():
    from backend.core.siwe import format_time

    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert format_time(naive) == "2026-01-02T03:04:05Z"
    assert format_time(naive.replace(tzinfo=UTC) + timedelta(hours=1)) == "2026-01-02T04:04:05Z"


def _with_line(name: str, value: str) -> str:
    lines = make().to_text().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: "))
    lines[index] = f"{name}: {value}"
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        # Non-ASCII digits: str.isdigit(), int() and fromisoformat() accept them.
        ("Chain ID", "\u0663\u0661\u0663\u0663\u0667", "invalid chain id"),
        ("Chain ID", "\uff11", "invalid chain id"),
        # 5,000 digits: int() raised ValueError past its digit limit (a 500).
        ("Chain ID", "1" * 5000, "invalid chain id"),
        ("Chain ID", "0", "invalid chain id"),
        ("Chain ID", "+1", "invalid chain id"),
        ("Issued At", "\u0662\u0660\u0662\u0666-11-23T12:00:00Z", "not an RFC 3339 date-time"),
        ("Issued At", "2026-11-23T12:00:00", "with a time zone"),
        ("Issued At", "2026-11-23", "not an RFC 3339"),
        ("Issued At", "2026-02-30T12:00:00Z", "not a valid date-time"),
        # The calendar's edges: a time zone or a TTL added overflowed datetime (a 500).
        ("Issued At", "0000-01-01T00:00:00Z", "not a valid date-time"),
        ("Issued At", "0001-01-01T00:00:00+14:00", "between the years 1970 and 9000"),
        ("Issued At", "9999-12-31T23:59:59-14:00", "between the years 1970 and 9000"),
        ("Issued At", "9999-12-31T23:59:59Z", "between the years 1970 and 9000"),
        ("Nonce", "abc\u0661defgh", "nonce must be 8 to 64 ASCII"),
        ("Nonce", "a" * 65, "nonce must be 8 to 64 ASCII"),
        ("URI", "https://ex\u00e4mple.org", "invalid URI"),
    ],
)
def test_fields_outside_the_grammar_or_the_calendar_are_named(name, value, reason):
    with pytest.raises(SiweError, match=reason):
        parse_message(_with_line(name, value))


def test_times_are_read_in_utc_with_fractions_and_offsets():
    parsed = parse_message(_with_line("Issued At", "2026-11-23T13:30:00.123456789+01:30"))
    assert parsed.issued_at == datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_message(_with_line("Issued At", "2026-11-23t12:00:00z")).issued_at == (
        datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("Chain ID", "1" * 5000), ("Chain ID", "\u0663\u0661"), ("Issued At", "9999-12-31T23:59:59Z")],
)
def test_the_sign_in_endpoint_names_them_too(client, name, value):
    reply = client.post(
        "/auth/verify", json={"message": _with_line(name, value), "signature": "0x"}
    )
    assert 400 <= reply.status_code < 500, reply.text
    assert name.split()[0].lower() in reply.json()["detail"].lower()
