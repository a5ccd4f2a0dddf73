from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from cctv_gov.authz import Role
from cctv_gov.kit.schemas import Input, Output

Name = Annotated[str, Field(min_length=1, max_length=200, examples=["Aroha Ngata"])]


class GrantIn(Input):
    role: Role
    site_id: uuid.UUID | None = Field(
        default=None, description="Omit for an install-wide grant (admin, auditor)"
    )


class PersonCreate(Input):
    name: Name
    email: Annotated[str | None, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] = None
    grants: Annotated[list[GrantIn], Field(min_length=1, max_length=50)]


class AgentCreate(Input):
    site_id: uuid.UUID
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["nvr-gym-central-1"])]
    token_label: Annotated[str, Field(min_length=1, max_length=100)] = "agent"  # noqa: S105


class TokenCreate(Input):
    label: Annotated[str, Field(min_length=1, max_length=100, examples=["laptop"])]
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = 365


class GrantOut(Output):
    id: uuid.UUID
    role: Role
    site_id: uuid.UUID | None


class PrincipalOut(Output):
    id: uuid.UUID
    kind: Literal["person", "agent"]
    name: str
    email: str | None
    created_at: datetime
    disabled_at: datetime | None
    grants: list[GrantOut]


class TokenOut(Output):
    id: uuid.UUID
    principal_id: uuid.UUID
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenOut):
    token: str = Field(description="The secret. Shown once; only its hash is kept.")


class AgentCreated(Output):
    principal: PrincipalOut
    token: IssuedToken


class MeGrant(Output):
    role: Role
    site_id: uuid.UUID | None
    site_slug: str | None


class MePrincipal(Output):
    id: uuid.UUID | None
    kind: str
    name: str


class MeOut(Output):
    principal: MePrincipal
    grants: list[MeGrant]
