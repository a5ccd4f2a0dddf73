"""C2SP signed-note with Ed25519 keys, and C2SP tlog-checkpoint texts.

A note is a text ending in a newline, one empty line, then signature lines
``— <key name> <base64(key ID || signature)>``. The text may contain empty lines itself: the *last* empty line
separates it from the signatures. The Ed25519 key ID is the first 4 bytes of
SHA-256(key name || 0x0A || 0x01 || public key) and the signature is over the text's UTF-8 bytes, final
newline included. Verification ignores signatures from keys it does not know, rejects a known key's bad
signature, and rejects a note that no known key has signed.

Interoperates with golang.org/x/mod/sumdb/note (its documented key and note are a test here).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "Signer",
    "VerifiedNote",
    "Verifier",
    "generate_private_key_pem",
    "key_id",
    "load_private_key",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100
"""A note with more signature lines is refused before any is checked (the Go reference's limit)."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_ED25519_SIG_SIZE = 64
_ED25519_KEY_SIZE = 32
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_UINT64_MAX = 2**64 - 1


class NoteError(ValueError):
    """A malformed key, note or checkpoint, or a note without a valid signature from a known key."""


def _b64decode_strict(text: str, what: str) -> bytes:
    """Standard base64 with padding, and nothing else: the encoding must round-trip exactly."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _has_control_characters(text: str) -> bool:
    return any(ch < " " and ch != "\n" for ch in text)


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8") from exc


def _check_key_name(name: str) -> None:
    if not name:
        raise NoteError("key name is empty")
    _check_utf8(name, "key name")
    if "+" in name or any(ch.isspace() for ch in name) or _has_control_characters(name):
        raise NoteError(f"key name {name!r} contains a space, '+' or control character")


def key_id(name: str, public_key: bytes) -> bytes:
    """The Ed25519 key ID: SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]."""
    if len(public_key) != _ED25519_KEY_SIZE:
        raise NoteError(f"Ed25519 public key is {len(public_key)} bytes, not {_ED25519_KEY_SIZE}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return digest[:_KEY_ID_SIZE]


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Verifier:
    """One trusted Ed25519 key, known by name and key ID."""

    __slots__ = ("_public_key", "key_id", "name", "public_key_bytes")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_key_name(name)
        self.name = name
        self._public_key = public_key
        self.public_key_bytes = _raw_public_key(public_key)
        self.key_id = key_id(name, self.public_key_bytes)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex8 key ID>+<base64(0x01 || public key)>``; the key ID must match the key."""
        parts = vkey.split("+", 2)  # base64 may itself contain "+"
        if len(parts) != 3:
            raise NoteError("verifier key is not <name>+<key id>+<key>")
        name, hex_id, b64_key = parts
        if not _HEX8.fullmatch(hex_id):
            raise NoteError("verifier key ID is not 8 hex digits")
        raw = _b64decode_strict(b64_key, "verifier key")
        if not raw or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        if len(raw) != 1 + _ED25519_KEY_SIZE:
            raise NoteError("verifier key has the wrong length for Ed25519")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError as exc:
            raise NoteError("verifier key is not a valid Ed25519 public key") from exc
        verifier = cls(name, public_key)
        if verifier.key_id != bytes.fromhex(hex_id):
            raise NoteError("verifier key ID does not match its name and key")
        return verifier

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + self.public_key_bytes)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"


class Signer:
    """An Ed25519 signing key under a key name (for a checkpoint, by convention the log's origin)."""

    __slots__ = ("_private_key", "key_id", "name", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self._private_key = private_key
        self.verifier = Verifier(name, private_key.public_key())
        self.key_id = self.verifier.key_id

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse the Go note tool's ``PRIVATE+KEY+<name>+<hex8 key ID>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key is not PRIVATE+KEY+<name>+<key id>+<key>")
        name, hex_id, b64_key = parts[2:]
        if not _HEX8.fullmatch(hex_id):
            raise NoteError("signer key ID is not 8 hex digits")
        raw = _b64decode_strict(b64_key, "signer key")
        if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id != bytes.fromhex(hex_id):
            raise NoteError("signer key ID does not match its name and key")
        return signer

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    def signature_line(self, text: str) -> str:
        """``— <name> <base64(key ID || signature)>\\n`` over `text` (which `sign_note` has validated)."""
        signature = self._private_key.sign(text.encode("utf-8"))
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + signature)}\n"

    def sign(self, text: str) -> str:
        """The note: `text`, an empty line, and this key's signature line."""
        return sign_note(text, [self])


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_utf8(text, "note text")
    if _has_control_characters(text):
        raise NoteError("note text contains a control character other than newline")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The note: `text`, an empty line, then one signature line per signer, in order."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(signer.signature_line(text) for signer in signers)


@dataclass(frozen=True, slots=True)
class VerifiedNote:
    text: str
    signed_by: list[str]
    """Names of the known keys whose signatures verified, in note order."""
    key_ids: list[bytes]
    """Their key IDs, parallel to `signed_by` (two keys of one name during a rotation differ only here)."""


def verify_note(note: str, verifiers: Sequence[Verifier]) -> VerifiedNote:
    """Check `note` against the trusted `verifiers`; return its text once at least one of them has signed it.

    Signatures by unknown keys are ignored; a bad signature by a known key, a malformed note, or a note that
    no known key signed raises NoteError.
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        previous = known.setdefault((v.name, v.key_id), v)
        if previous.public_key_bytes != v.public_key_bytes:
            raise NoteError(f"two trusted keys share the name {v.name!r} and key ID {v.key_id.hex()}")

    _check_utf8(note, "note")
    if _has_control_characters(note):
        raise NoteError("note contains a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no empty line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    if not block.endswith("\n"):
        raise NoteError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")

    message = text.encode("utf-8")
    seen: set[tuple[str, bytes]] = set()
    signed_by: list[str] = []
    key_ids: list[bytes] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash and a space")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64:
            raise NoteError("signature line is not '— <name> <signature>'")
        _check_key_name(name)
        raw = _b64decode_strict(b64, "signature")
        if len(raw) <= _KEY_ID_SIZE:
            raise NoteError("signature is too short to hold a key ID and a signature")
        ident = (name, raw[:_KEY_ID_SIZE])
        verifier = known.get(ident)
        if verifier is None or ident in seen:
            continue
        seen.add(ident)
        if not verifier.verify(message, raw[_KEY_ID_SIZE:]):
            raise NoteError(f"invalid signature by known key {name}+{ident[1].hex()}")
        signed_by.append(name)
        key_ids.append(ident[1])
    if not signed_by:
        raise NoteError("note has no signature from a known key")
    return VerifiedNote(text=text, signed_by=signed_by, key_ids=key_ids)


# Checkpoints ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the note text naming a log, its size and its RFC 6962 root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, line in [("origin", self.origin), *(("extension line", ext) for ext in self.extensions)]:
            if not line:
                raise NoteError(f"checkpoint {what} is empty")
            _check_utf8(line, f"checkpoint {what}")
            if "\n" in line or _has_control_characters(line):
                raise NoteError(f"checkpoint {what} contains a newline or control character")
        if isinstance(self.size, bool) or not 0 <= self.size <= _UINT64_MAX:
            raise NoteError(f"checkpoint size {self.size} is not an unsigned 64-bit integer")
        if len(self.root_hash) != 32:
            raise NoteError(f"checkpoint root hash is {len(self.root_hash)} bytes, not 32")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Strictly parse a checkpoint note text (as returned in `VerifiedNote.text`)."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint has fewer than three lines")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise NoteError("checkpoint size is not a decimal number without leading zeros")
        root_hash = _b64decode_strict(root_text, "checkpoint root hash")
        return cls(origin=origin, size=int(size_text), root_hash=root_hash, extensions=tuple(extensions))


# Keys -------------------------------------------------------------------------------------------------------


def generate_private_key_pem() -> bytes:
    """A new Ed25519 key as unencrypted PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(data: bytes | str) -> Ed25519PrivateKey:
    """An Ed25519 key from unencrypted PKCS#8 PEM, or from its 32-byte seed written as base64 text."""
    raw = data.encode("ascii", errors="replace") if isinstance(data, str) else data
    stripped = raw.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(stripped, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("not an unencrypted PKCS#8 PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"PEM key is {type(key).__name__}, not Ed25519")
        return key
    try:
        seed = base64.b64decode(stripped, validate=True)
    except binascii.Error as exc:
        raise ValueError("private key is neither PEM nor base64") from exc
    if len(seed) != _ED25519_KEY_SIZE:
        raise ValueError(f"base64 private key holds {len(seed)} bytes, not a {_ED25519_KEY_SIZE}-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)
