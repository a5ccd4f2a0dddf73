"""Every table, one module each. Importing this package registers them all on ``Base.metadata``."""

from cctv_gov.models.api_token import ApiToken
from cctv_gov.models.approval import WrittenApproval
from cctv_gov.models.audit import AuditCheckpoint, AuditEvent, AuditTreeNode
from cctv_gov.models.base import Base
from cctv_gov.models.camera import Camera
from cctv_gov.models.hold import EvidenceHold, HeldKey, HoldCamera, HoldState
from cctv_gov.models.principal import Principal, RoleGrant
from cctv_gov.models.retention import DayKeyDestruction, PurgeRun, SegmentTombstone
from cctv_gov.models.segment import Segment, SegmentState
from cctv_gov.models.site import Site

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditTreeNode",
    "Base",
    "Camera",
    "DayKeyDestruction",
    "EvidenceHold",
    "HeldKey",
    "HoldCamera",
    "HoldState",
    "Principal",
    "PurgeRun",
    "RoleGrant",
    "Segment",
    "SegmentState",
    "SegmentTombstone",
    "Site",
    "WrittenApproval",
]
