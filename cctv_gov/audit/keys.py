"""The checkpoint signing key: loaded from a secret or a file; generated on first start only in embedded mode.

Rotation: install the new key, and list the old key's verifier key in ``CCTV_GOV_AUDIT_PREVIOUS_VKEYS`` so
checkpoints it signed stay verifiable (the verifier pins keys from configuration, never from the database).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cctv_gov.config import ConfigurationError, Mode, Settings
from cctv_gov.kit.signed_note import Signer, Verifier, generate_private_key_pem, load_private_key


@dataclass(frozen=True)
class AuditKeys:
    signer: Signer
    previous: tuple[Verifier, ...]

    @property
    def verifiers(self) -> list[Verifier]:
        return [Verifier.from_vkey(self.signer.vkey), *self.previous]

    @property
    def vkeys(self) -> list[str]:
        return [self.signer.vkey, *(v.vkey for v in self.previous)]


def load_audit_keys(settings: Settings) -> AuditKeys:
    if settings.signing_key is not None:
        material = settings.signing_key.get_secret_value().encode()
    else:
        path = settings.signing_key_file or settings.default_signing_key_path
        if not path.exists():
            if settings.mode is Mode.PRODUCTION:
                raise ConfigurationError(f"signing key file {path} does not exist")
            _generate(path)
        material = path.read_bytes()
    try:
        private = load_private_key(material)
    except ValueError as exc:
        raise ConfigurationError(f"the audit signing key cannot be loaded: {exc}") from None
    previous = []
    for vkey in settings.audit_previous_vkeys:
        try:
            previous.append(Verifier.from_vkey(vkey))
        except ValueError as exc:
            raise ConfigurationError(f"CCTV_GOV_AUDIT_PREVIOUS_VKEYS has a bad key: {exc}") from None
    return AuditKeys(Signer(settings.audit_origin, private), tuple(previous))


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(generate_private_key_pem())
        fh.flush()
        os.fsync(fh.fileno())
