"""HTTP for cameras."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.authz import Actor, Role, allow
from cctv_gov.cameras.schemas import CameraCreate, CameraOut, CameraUpdate
from cctv_gov.cameras.service import CameraService
from cctv_gov.db import get_session

router = APIRouter(prefix="/v1/sites/{site_id}/cameras", tags=["cameras"])
SessionDep = Depends(get_session, scope="function")
MANAGERS = (Role.ADMIN, Role.GENERAL_MANAGER)
READERS = (Role.ADMIN, Role.GENERAL_MANAGER, Role.OPERATOR, Role.AUDITOR, Role.AGENT)


def _service(request: Request) -> CameraService:
    service: CameraService = request.app.state.services.cameras
    return service


@router.post("", status_code=201, response_model=CameraOut, summary="Add a camera (admins, general managers)")
def create_camera(
    site_id: uuid.UUID,
    body: CameraCreate,
    request: Request,
    actor: Actor = allow(*MANAGERS),
    session: Session = SessionDep,
) -> CameraOut:
    return CameraOut.model_validate(_service(request).create(session, actor, site_id, body))


@router.get("", response_model=list[CameraOut], summary="The site's cameras")
def list_cameras(
    site_id: uuid.UUID, request: Request, actor: Actor = allow(*READERS), session: Session = SessionDep
) -> list[CameraOut]:
    return [CameraOut.model_validate(c) for c in _service(request).list(session, site_id)]


@router.get("/{camera_id}", response_model=CameraOut, summary="One camera")
def get_camera(
    site_id: uuid.UUID,
    camera_id: uuid.UUID,
    request: Request,
    actor: Actor = allow(*READERS),
    session: Session = SessionDep,
) -> CameraOut:
    return CameraOut.model_validate(_service(request).get(session, site_id, camera_id))


@router.patch(
    "/{camera_id}", response_model=CameraOut, summary="Rename, move, restate the purpose, enable or disable"
)
def update_camera(
    site_id: uuid.UUID,
    camera_id: uuid.UUID,
    body: CameraUpdate,
    request: Request,
    actor: Actor = allow(*MANAGERS),
    session: Session = SessionDep,
) -> CameraOut:
    return CameraOut.model_validate(_service(request).update(session, actor, site_id, camera_id, body))
