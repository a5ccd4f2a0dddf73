"""Every audited action, as a fixed enumeration (``domain:object:verb``). Leaves carry these strings, so a value
is never renamed once released; add new ones instead."""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    SITE_CREATE = "site:site:create"
    SITE_UPDATE = "site:site:update"
    CAMERA_CREATE = "camera:camera:create"
    CAMERA_UPDATE = "camera:camera:update"
    SEGMENT_REGISTER = "footage:segment:register"
    UPLOAD_QUARANTINE = "footage:upload:quarantine"
    SEGMENT_LIST = "footage:segment:list"
    COVERAGE_READ = "footage:coverage:read"
    SEGMENT_PLAY = "footage:segment:play"
    SEGMENT_ERASE = "retention:segment:erase"
    DAY_KEY_DESTROY = "retention:daykey:destroy"
    PURGE_STOPPED = "retention:purge:stop"
    HOLD_KEY_DESTROY = "retention:holdkey:destroy"
    COMPLIANCE_READ = "retention:report:read"
    RECONCILE_FINDING = "retention:reconcile:finding"
    ORPHAN_ERASE = "retention:orphan:erase"
    CERTIFICATE_READ = "retention:certificate:read"
    HOLD_PROPOSE = "hold:hold:propose"
    HOLD_END = "hold:hold:end"
    HOLD_EXPIRE = "hold:hold:expire"
    APPROVAL_APPROVE = "approval:written:approve"
    APPROVAL_REFUSE = "approval:written:refuse"
    PRINCIPAL_CREATE = "identity:principal:create"
    PRINCIPAL_DISABLE = "identity:principal:disable"
    PRINCIPAL_READ = "identity:principal:read"
    GRANT_CREATE = "identity:grant:create"
    GRANT_REVOKE = "identity:grant:revoke"
    TOKEN_ISSUE = "identity:token:issue"  # noqa: S105 - an action name, not a secret
    TOKEN_REVOKE = "identity:token:revoke"  # noqa: S105 - an action name, not a secret
    ACCESS_DENY = "access:route:deny"
    AUDIT_READ = "audit:event:read"


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"
