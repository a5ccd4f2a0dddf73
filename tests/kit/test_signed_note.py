"""Signed notes and checkpoints, checked against golang.org/x/mod/sumdb/note's published key, note and signatures."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cctv_gov.kit.signed_note import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    generate_private_key_pem,
    key_id,
    load_private_key,
    sign_note,
    verify_note,
)

EM_DASH = "\u2014"

# The example of the Go reference implementation (sumdb/note's package documentation and note_test.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
PETER_SIG = (
    f"{EM_DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM_DASH} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

PETER = Verifier.from_vkey(GO_VKEY)
ENOCH = Verifier.from_vkey(ENOCH_VKEY)


def _seed(i: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test key %d" % i).digest())


LOG = Signer("log.example/cctv", _seed(1))
WITNESS = Signer("witness.example", _seed(2))


def _insert(line: str, at: int, extra: str) -> str:
    return line[:at] + extra + line[at:]


# Interoperability with the Go reference ---------------------------------------------------------------------


def test_signer_reproduces_the_go_reference_note_byte_for_byte() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.vkey == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_TEXT + "\n" + PETER_SIG

    # The same key given as an Ed25519 key object and a name: Ed25519 is deterministic.
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    assert Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed)).sign(GO_TEXT) == (
        GO_TEXT + "\n" + PETER_SIG
    )


def test_key_id_is_the_specified_hash() -> None:
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    want = hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()[:4]
    assert key_id("PeterNeumann", public) == want == bytes.fromhex("c74f20a3")
    assert PETER.key_id == want
    assert PETER.vkey == GO_VKEY
    with pytest.raises(NoteError, match="31 bytes"):
        key_id("PeterNeumann", public[:-1])


def test_verifier_accepts_the_go_reference_notes() -> None:
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    one = verify_note(note, [PETER])
    assert one.text == GO_TEXT
    assert one.signed_by == ["PeterNeumann"]
    assert one.key_ids == [bytes.fromhex("c74f20a3")]
    both = verify_note(note, [PETER, ENOCH])
    assert both.signed_by == ["PeterNeumann", "EnochRoot"]
    assert verify_note(GO_TEXT + "\n" + ENOCH_SIG, [ENOCH]).signed_by == ["EnochRoot"]
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(note, [])


def test_go_reference_rejections() -> None:
    with pytest.raises(NoteError, match="invalid signature by known key PeterNeumann\\+c74f20a3"):
        verify_note(GO_TEXT + "\n" + _insert(PETER_SIG, 58, "ABCD"), [PETER])
    # A bad signature from a key we do not know is ignored like any other unknown signature.
    assert verify_note(GO_TEXT + "\n" + PETER_SIG + _insert(ENOCH_SIG, 58, "ABCD"), [PETER]).signed_by == [
        "PeterNeumann"
    ]
    # Repeated signatures count once.
    assert verify_note(GO_TEXT + "\n" + PETER_SIG * 2 + ENOCH_SIG * 2, [PETER, ENOCH]).signed_by == [
        "PeterNeumann",
        "EnochRoot",
    ]
    for count in (MAX_SIGNATURES + 1, 150):
        with pytest.raises(NoteError, match="more than 100 signatures"):
            verify_note(GO_TEXT + "\n" + PETER_SIG * count, [PETER])
    assert verify_note(GO_TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [PETER]).signed_by == ["PeterNeumann"]
    bad_messages = [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        "\udcff" + GO_TEXT + "\n" + PETER_SIG,  # what a decoder leaves of an invalid UTF-8 byte
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ]
    for message in bad_messages:
        with pytest.raises(NoteError):
            verify_note(message, [PETER])


@pytest.mark.parametrize("key", [GO_VKEY, GO_SKEY])
def test_every_mangled_key_string_is_rejected(key: str) -> None:
    parse = Verifier.from_vkey if key == GO_VKEY else Signer.from_skey
    parse(key)
    mangled = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)} - {key}
    mangled |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    for bad in sorted(mangled):
        with pytest.raises(NoteError):
            parse(bad)


def test_wrong_length_and_unknown_algorithm_keys_are_rejected() -> None:
    # From the Go tests: key hashes adjusted so that only the length or the algorithm byte is wrong.
    for vkey in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(NoteError):
            Verifier.from_vkey(vkey)
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    for raw, message in [
        (b"\x01" + public + b"\x00", "wrong length"),
        (b"\x01" + public[:-1], "wrong length"),
        (b"\x04" + public, "not an Ed25519 key"),  # a tlog-cosignature key is not a note-signing key
        (b"", "not an Ed25519 key"),
    ]:
        with pytest.raises(NoteError, match=message):
            Verifier.from_vkey(f"PeterNeumann+c74f20a3+{base64.b64encode(raw).decode()}")


# Our own notes ----------------------------------------------------------------------------------------------


def test_round_trip_with_generated_key() -> None:
    key = load_private_key(generate_private_key_pem())
    signer = Signer("cctv-gov.example/audit", key)
    verifier = Verifier.from_vkey(signer.vkey)
    assert verifier.key_id == signer.key_id
    text = "cctv-gov.example/audit\n42\nqh5Y7TOFb5Ff2N/vYmhNVN0n4nlKkUY2XqBrVbjhPzY=\n"
    note = signer.sign(text)
    assert note.startswith(text + "\n" + EM_DASH + " cctv-gov.example/audit ")
    assert note.endswith("\n")
    assert len(base64.b64decode(note.rsplit(" ", 1)[1])) == 4 + 64
    result = verify_note(note, [verifier])
    assert result.text == text
    assert result.signed_by == ["cctv-gov.example/audit"]


@pytest.mark.parametrize(
    "text",
    ["line one\n\nline three\n", "trailing empty line\n\n", "\n", "\n\n\n", "ünïcødé — text\n"],
)
def test_text_with_empty_lines_survives(text: str) -> None:
    note = LOG.sign(text)
    assert verify_note(note, [LOG.verifier]).text == text


def test_tampered_text_or_signature_is_rejected() -> None:
    note = LOG.sign("origin\n7\nroot\n")
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(note.replace("7", "8", 1), [LOG.verifier])
    text, signature_line = note.split("\n\n")
    head, b64 = signature_line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    tampered = f"{text}\n\n{head} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(tampered, [LOG.verifier])
    # Changing the key ID turns the signature into an unknown key's, and then nobody known has signed.
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(f"{text}\n\n{head} {base64.b64encode(bytes(raw)).decode()}\n", [LOG.verifier])


def test_unknown_keys_are_ignored_but_not_trusted() -> None:
    text = "some text\n"
    both = sign_note(text, [WITNESS, LOG])
    assert verify_note(both, [LOG.verifier]).signed_by == [LOG.name]
    assert verify_note(both, [WITNESS.verifier]).signed_by == [WITNESS.name]
    only_witness = WITNESS.sign(text)
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(only_witness, [LOG.verifier])
    # Same name, different key: a different key ID, so still unknown.
    impostor = Signer(LOG.name, _seed(99))
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(impostor.sign(text), [LOG.verifier])


def test_key_rotation_old_and_new_keys_each_verify_their_own_signature() -> None:
    old, new = Signer("log.example", _seed(10)), Signer("log.example", _seed(11))
    assert old.key_id != new.key_id
    note = sign_note("checkpoint\n", [old, new])
    by_old = verify_note(note, [old.verifier])
    by_new = verify_note(note, [new.verifier])
    assert (by_old.signed_by, by_old.key_ids) == (["log.example"], [old.key_id])
    assert (by_new.signed_by, by_new.key_ids) == (["log.example"], [new.key_id])
    assert verify_note(note, [new.verifier, old.verifier]).key_ids == [old.key_id, new.key_id]
    # A note signed by the new key alone is accepted by a verifier that knows it, refused by one that does not.
    assert verify_note(new.sign("after\n"), [old.verifier, new.verifier]).key_ids == [new.key_id]
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(new.sign("after\n"), [old.verifier])


def _malformed_notes() -> dict[str, tuple[str, str]]:
    """Each case with the error it must give. Bad signature lines follow a valid signature by a known key, so
    only the malformed line itself can be the reason for the rejection."""
    good = LOG.sign("text\n")
    sig = good.split("\n\n")[1]
    name, b64 = sig[2:].rstrip("\n").split(" ")
    key_id_only = base64.b64encode(LOG.key_id).decode()
    bad_lines = {
        "hyphen instead of em dash": (f"- {name} {b64}", "em dash"),
        "em dash without space": (f"{EM_DASH}{name} {b64}", "em dash"),
        "no signature": (f"{EM_DASH} {name}", "not '. <name> <signature>'"),
        "empty signature": (f"{EM_DASH} {name} ", "not '. <name> <signature>'"),
        "two spaces": (f"{EM_DASH} {name}  {b64}", "not valid base64"),
        "bad base64": (f"{EM_DASH} {name} {b64[:-2]}!=", "not valid base64"),
        "unpadded base64": (f"{EM_DASH} {name} {b64.rstrip('=')}", "not valid base64"),
        "non-canonical base64": (f"{EM_DASH} {name} {b64[:-2]}B=", "not canonical"),
        "key ID only": (f"{EM_DASH} {name} {key_id_only}", "too short"),
        "plus in name": (f"{EM_DASH} a+b {b64}", "key name"),
        "space in name": (f"{EM_DASH} a\u2003b {b64}", "key name"),
        "empty name": (f"{EM_DASH}  {b64}", "key name is empty"),
        "plain text": ("garbage", "em dash"),
    }
    cases = {what: (good + line + "\n", error) for what, (line, error) in bad_lines.items()}
    cases |= {
        "missing final newline": (good[:-1], "does not end with a newline"),
        "no empty line": ("text\n" + sig, "no empty line"),
        "no signature lines": ("text\n\n", "no signature lines"),
        "carriage returns": (good.replace("\n", "\r\n"), "control character"),
        # Validly signed, but a note may not contain control characters.
        "tab in text": ("te\txt\n\n" + LOG.signature_line("te\txt\n"), "control character"),
        "lone surrogate": ("\udc80\n\n" + sig, "UTF-8"),
    }
    return cases


MALFORMED_NOTES = _malformed_notes()


@pytest.mark.parametrize(("note", "error"), MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_notes_are_rejected(note: str, error: str) -> None:
    with pytest.raises(NoteError, match=error):
        verify_note(note, [LOG.verifier])


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\nb", "a\tb", "a\u00a0b", "a\u2003b", "a\x00b", "\udc80"]
)
def test_invalid_key_names_are_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        Signer(name, _seed(1))


def test_sign_rejects_what_cannot_be_a_note_text() -> None:
    for text in ["", "no final newline", "control\x07\n", "\udc80\n"]:
        with pytest.raises(NoteError):
            LOG.sign(text)
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("text\n", [])


def test_conflicting_trusted_keys_are_refused() -> None:
    clone = Verifier(LOG.name, _seed(5).public_key())
    clone.key_id = LOG.key_id  # a forged collision: same name and key ID, another key
    with pytest.raises(NoteError, match="share the name"):
        verify_note(LOG.sign("x\n"), [LOG.verifier, clone])
    # The same key listed twice is no conflict.
    assert verify_note(LOG.sign("x\n"), [LOG.verifier, Verifier.from_vkey(LOG.vkey)]).signed_by == [LOG.name]


# Checkpoints ------------------------------------------------------------------------------------------------

SPEC_ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_checkpoint_text_matches_the_specification_example() -> None:
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, SPEC_ROOT)
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert checkpoint.to_text() == text
    assert Checkpoint.parse(text) == checkpoint


@pytest.mark.parametrize("extensions", [(), ("ext one",), ("a", "b — c")])
@pytest.mark.parametrize("size", [0, 1, 2**64 - 1])
def test_checkpoint_round_trip(size: int, extensions: tuple[str, ...]) -> None:
    checkpoint = Checkpoint("log.example/cctv", size, SPEC_ROOT, extensions)
    text = checkpoint.to_text()
    assert text.count("\n") == 3 + len(extensions)
    assert Checkpoint.parse(text) == checkpoint
    verified = verify_note(LOG.sign(text), [LOG.verifier])
    assert Checkpoint.parse(verified.text) == checkpoint


ROOT_B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        "origin\n1\n",  # two lines
        f"\n1\n{ROOT_B64}\n",  # empty origin
        f"origin\n01\n{ROOT_B64}\n",  # leading zero
        f"origin\n00\n{ROOT_B64}\n",
        f"origin\n+1\n{ROOT_B64}\n",
        f"origin\n-1\n{ROOT_B64}\n",
        f"origin\n 1\n{ROOT_B64}\n",
        f"origin\n1 \n{ROOT_B64}\n",
        f"origin\n1_000\n{ROOT_B64}\n",
        f"origin\n\u0661\n{ROOT_B64}\n",  # a non-ASCII digit int() would accept
        f"origin\n\n{ROOT_B64}\n",
        f"origin\n0x10\n{ROOT_B64}\n",
        f"origin\n{2**64}\n{ROOT_B64}\n",
        "origin\n1\n\n",  # empty root
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",  # 31 bytes
        f"origin\n1\n{base64.b64encode(bytes(33)).decode()}\n",  # 33 bytes
        f"origin\n1\n{ROOT_B64[:-2]}J=\n",  # non-canonical: padding bits set
        f"origin\n1\n{ROOT_B64.rstrip('=')}\n",  # unpadded
        f"origin\n1\n{ROOT_B64[:-1]}!\n",
        f"origin\n1\n{ROOT_B64}\n\n",  # empty extension line
        f"origin\n1\n{ROOT_B64}\next\n\n",
        f"origin\n1\n{ROOT_B64}\nbell\x07\n",
    ],
)
def test_checkpoint_parse_is_strict(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_checkpoint_needs_its_final_newline() -> None:
    with pytest.raises(NoteError, match="does not end with a newline"):
        Checkpoint.parse(f"origin\n1\n{ROOT_B64}")


def test_checkpoint_constructor_is_strict() -> None:
    bad = [
        ("", 1, SPEC_ROOT, ()),
        ("two\nlines", 1, SPEC_ROOT, ()),
        ("origin", -1, SPEC_ROOT, ()),
        ("origin", 2**64, SPEC_ROOT, ()),
        ("origin", True, SPEC_ROOT, ()),
        ("origin", 1, SPEC_ROOT[:-1], ()),
        ("origin", 1, SPEC_ROOT, ("",)),
        ("origin", 1, SPEC_ROOT, ("a\nb",)),
    ]
    for origin, size, root_hash, extensions in bad:
        with pytest.raises(NoteError):
            Checkpoint(origin, size, root_hash, extensions)


# Keys -------------------------------------------------------------------------------------------------------


def test_load_private_key_from_pem_and_base64_seed() -> None:
    pem = generate_private_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(pem)
    same = load_private_key(pem.decode())
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert key.public_key().public_bytes(*raw) == same.public_key().public_bytes(*raw)

    seed_b64 = base64.b64encode(base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]).decode()
    assert Signer("PeterNeumann", load_private_key(seed_b64)).vkey == GO_VKEY
    assert Signer("PeterNeumann", load_private_key(f"  {seed_b64}\n".encode())).vkey == GO_VKEY


def test_load_private_key_rejects_other_material() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    encrypted = _seed(1).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="not Ed25519"):
        load_private_key(p256)
    with pytest.raises(ValueError, match="PEM"):
        load_private_key(encrypted)
    with pytest.raises(ValueError, match="31 bytes"):
        load_private_key(base64.b64encode(bytes(31)))
    with pytest.raises(ValueError, match="neither PEM nor base64"):
        load_private_key("not a key!")
    with pytest.raises(ValueError, match="PEM"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
