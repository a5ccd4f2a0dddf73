"""``cctv-gov``: serve, migrate, administer, and check the audit log from a shell on a service host.

Commands run as the local "system" actor: whoever can run them already holds the service's configuration and
secrets. Every change they make is audited like one made through the API.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from cctv_gov.authz import SYSTEM_ACTOR, Role
from cctv_gov.config import ConfigurationError, Settings, get_settings
from cctv_gov.container import Services, build_services
from cctv_gov.errors import AppError
from cctv_gov.redaction.commands import redact


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise click.ClickException("invalid settings: " + _validation_text(exc)) from None


@contextmanager
def _services() -> Iterator[Services]:
    try:
        services = build_services(_settings())
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield services
    finally:
        services.db.dispose()


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group()
@click.version_option(package_name="cctv-gov")
def main() -> None:
    """CCTV footage governance service."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default from CCTV_GOV_HOST).")
@click.option("--port", type=int, default=None, help="Port (default from CCTV_GOV_PORT).")
@click.option("--no-migrate", is_flag=True, help="Do not apply migrations before serving.")
def serve(host: str | None, port: int | None, no_migrate: bool) -> None:
    """Run the HTTP API (and its background jobs)."""
    import uvicorn

    from cctv_gov.app import create_app
    from cctv_gov.migrate import upgrade

    settings = _settings()
    try:
        settings.check_production()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    if not no_migrate:
        upgrade(settings.database_url, data_dir=settings.data_dir if settings.is_sqlite else None)
    uvicorn.run(
        create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info"
    )


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    from cctv_gov.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, data_dir=settings.data_dir if settings.is_sqlite else None)
    click.echo("database is up to date")


@main.command()
def worker() -> None:
    """Run the background jobs without serving HTTP (for dedicated worker machines)."""
    import signal
    import threading

    with _services() as services:
        runner = services.job_runner()
        runner.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        click.echo(f"worker {runner.worker_id} running {sorted(runner.jobs)}")
        stop.wait()
        runner.stop()


@main.command()
@click.option("--dry-run", is_flag=True, help="Say what would be erased; change nothing.")
@click.option("--force", is_flag=True, help="Go on although the safety threshold is exceeded.")
def purge(dry_run: bool, force: bool) -> None:
    """Erase footage past its site's retention period (one pass), and destroy the keys of emptied days."""
    with _services() as services:
        report = services.purge.run(services.db, dry_run=dry_run, force=force)
        _emit(report.as_dict())
        if report.outcome == "stopped" and not dry_run:
            raise click.ClickException(f"the purge stopped: {report.reason} (--force to go on)")


# admin ----------------------------------------------------------------------------------------------------


@main.command()
@click.option("--dry-run", is_flag=True, help="Report only; erase no orphan.")
def reconcile(dry_run: bool) -> None:
    """Compare the bucket with the database both ways; report, and erase objects that must not exist."""
    with _services() as services:
        report = services.reconcile.run(services.db, dry_run=dry_run)
        _emit(
            {
                **report.counts(),
                "dry_run": dry_run,
                "rows_without_objects": report.rows_without_objects,
                "orphans": report.orphans,
                "orphans_erased": report.orphans_erased,
            }
        )


@main.group()
def retention() -> None:
    """Compliance reports and erasure certificates."""


@retention.command("report")
@click.option("--site", "site_slug", required=True)
def retention_report(site_slug: str) -> None:
    """The site's compliance report (as the API gives it)."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        r = services.compliance.report(session, SYSTEM_ACTOR, site_id)
        _emit(
            {
                "site": site_slug,
                "generated_at": r.generated_at.isoformat(),
                "retention_days": r.retention_days,
                "limit_seconds": r.limit_seconds,
                "cameras": [
                    {
                        "key": c.key,
                        "oldest_end": c.oldest_end,
                        "age_seconds": c.age_seconds,
                        "overdue": c.overdue,
                    }
                    for c in r.cameras
                ],
                "purged_per_day": {d.isoformat(): n for d, n in r.purged_per_day.items()},
                "holds_in_force": [
                    {"id": str(h.id), "incident_ref": h.incident_ref, "ends_at": h.ends_at.isoformat()}
                    for h in r.holds_in_force
                ],
                "holds_due_for_review": [str(h) for h in r.holds_due_for_review],
                "last_successful_pass": None
                if r.last_successful_pass is None
                else (r.last_successful_pass.finished_at or r.last_successful_pass.started_at).isoformat(),
                "overdue": r.overdue,
            }
        )


@retention.command("certificate")
@click.option("--site", "site_slug", required=True)
@click.option("--day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="UTC day, YYYY-MM-DD")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="Write the signed note to this file."
)
def retention_certificate(site_slug: str, day: datetime, out: str | None) -> None:
    """The signed erasure certificate of one UTC day (check it with docs/recipients.md's script)."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        cert = services.certificates.issue(session, SYSTEM_ACTOR, site_id, day.date())
    if out:
        Path(out).write_text(cert.note, encoding="utf-8")
        click.echo(
            f"wrote {out}: {len(cert.body['segments'])} segments, {len(cert.body['day_keys_destroyed'])} day keys"
        )
    else:
        click.echo(cert.note, nl=False)


@main.group()
def admin() -> None:
    """Sites, people, agents, roles and tokens."""


def _site_id(services: Services, session: Any, slug: str | None) -> uuid.UUID | None:
    if slug is None:
        return None
    return services.sites.by_slug(session, slug).id


@admin.command("create-site")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--timezone", "tz", required=True, help="IANA zone, e.g. Pacific/Auckland")
@click.option("--retention-days", type=int, default=31, show_default=True)
def create_site(slug: str, name: str, tz: str, retention_days: int) -> None:
    """Create a site."""
    from cctv_gov.sites.schemas import SiteCreate, SiteOut

    try:
        data = SiteCreate(slug=slug, name=name, timezone=tz, retention_days=retention_days)
    except ValidationError as exc:
        raise click.ClickException(_validation_text(exc)) from None
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site = services.sites.create(session, SYSTEM_ACTOR, data)
        _emit(SiteOut.model_validate(site).model_dump(mode="json"))


@admin.command("create-camera")
@click.option("--site", "site_slug", required=True)
@click.option("--key", required=True, help="Stable name the NVR and agent use, e.g. cam-01")
@click.option("--name", required=True)
@click.option("--location", required=True)
@click.option("--purpose", required=True, help="Why the camera records (the policy requires one per camera)")
@click.option("--disabled", is_flag=True, help="Create it disabled (it takes no footage until enabled).")
def create_camera(site_slug: str, key: str, name: str, location: str, purpose: str, disabled: bool) -> None:
    """Add a camera to a site."""
    from cctv_gov.cameras.schemas import CameraCreate, CameraOut

    try:
        data = CameraCreate(key=key, name=name, location=location, purpose=purpose, enabled=not disabled)
    except ValidationError as exc:
        raise click.ClickException(_validation_text(exc)) from None
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        camera = services.cameras.create(session, SYSTEM_ACTOR, site_id, data)
        _emit(CameraOut.model_validate(camera).model_dump(mode="json"))


@admin.command("list-cameras")
@click.option("--site", "site_slug", required=True)
def list_cameras(site_slug: str) -> None:
    """The cameras of a site."""
    from cctv_gov.cameras.schemas import CameraOut

    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        _emit(
            [
                CameraOut.model_validate(c).model_dump(mode="json")
                for c in services.cameras.list(session, site_id)
            ]
        )


@admin.command("update-camera")
@click.option("--site", "site_slug", required=True)
@click.option("--key", required=True)
@click.option("--name", default=None)
@click.option("--location", default=None)
@click.option("--purpose", default=None)
@click.option("--enable/--disable", "enabled", default=None)
def update_camera(
    site_slug: str,
    key: str,
    name: str | None,
    location: str | None,
    purpose: str | None,
    enabled: bool | None,
) -> None:
    """Rename, move, restate the purpose of, enable or disable a camera."""
    from cctv_gov.cameras.schemas import CameraOut, CameraUpdate

    try:
        data = CameraUpdate(name=name, location=location, purpose=purpose, enabled=enabled)
    except ValidationError as exc:
        raise click.ClickException(_validation_text(exc)) from None
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        camera = next((c for c in services.cameras.list(session, site_id) if c.key == key), None)
        if camera is None:
            raise click.ClickException(f"no camera {key!r} at site {site_slug!r}")
        updated = services.cameras.update(session, SYSTEM_ACTOR, site_id, camera.id, data)
        _emit(CameraOut.model_validate(updated).model_dump(mode="json"))


def _parse_grant(text: str) -> tuple[Role, str | None]:
    role, _, site = text.partition("@")
    try:
        return Role(role), (site or None)
    except ValueError:
        raise click.BadParameter(f"{role!r} is not a role ({', '.join(r.value for r in Role)})") from None


@admin.command("create-person")
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option(
    "--grant", "grants", multiple=True, required=True, help="ROLE@SITE-SLUG, or ROLE for install-wide"
)
@click.option("--token-label", default=None, help="Also issue a token with this label (printed once).")
def create_person(name: str, email: str | None, grants: tuple[str, ...], token_label: str | None) -> None:
    """Create a person with roles (e.g. --grant admin, --grant general_manager@gym-central)."""
    parsed = [_parse_grant(g) for g in grants]
    with _services() as services, _app_errors(), services.db.transaction() as session:
        resolved = [(role, _site_id(services, session, slug)) for role, slug in parsed]
        view = services.identity.create_person(session, SYSTEM_ACTOR, name=name, email=email, grants=resolved)
        out: dict[str, Any] = {
            "principal_id": str(view.principal.id),
            "grants": [g.role for g in view.grants],
        }
        if token_label:
            token, secret = services.identity.issue_token(
                session, SYSTEM_ACTOR, view.principal.id, label=token_label, expires_in_days=365
            )
            out["token_id"] = str(token.id)
            out["token"] = secret
        _emit(out)


@admin.command("create-agent")
@click.option("--site", "site_slug", required=True)
@click.option("--name", required=True)
def create_agent(site_slug: str, name: str) -> None:
    """Register a site's NVR agent and print its token (once)."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        site_id = services.sites.by_slug(session, site_slug).id
        view = services.identity.create_agent(session, SYSTEM_ACTOR, site_id=site_id, name=name)
        token, secret = services.identity.issue_token(
            session, SYSTEM_ACTOR, view.principal.id, label="agent", expires_in_days=None
        )
        _emit({"principal_id": str(view.principal.id), "token_id": str(token.id), "token": secret})


@admin.command("issue-token")
@click.option("--principal", "principal_id", type=click.UUID, required=True)
@click.option("--label", required=True)
@click.option("--expires-in-days", type=int, default=365, show_default=True)
def issue_token(principal_id: uuid.UUID, label: str, expires_in_days: int) -> None:
    """Issue a token for a principal (printed once)."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        token, secret = services.identity.issue_token(
            session, SYSTEM_ACTOR, principal_id, label=label, expires_in_days=expires_in_days
        )
        _emit({"token_id": str(token.id), "token": secret})


@admin.command("revoke-token")
@click.argument("token_id", type=click.UUID)
def revoke_token(token_id: uuid.UUID) -> None:
    """Revoke a token."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        token = services.identity.revoke_token(session, SYSTEM_ACTOR, token_id)
        _emit({"token_id": str(token.id), "revoked_at": token.revoked_at})


@admin.command("list-principals")
def list_principals() -> None:
    """List people and agents with their grants."""
    with _services() as services, _app_errors(), services.db.transaction() as session:
        views = services.identity.list_principals(session, SYSTEM_ACTOR)
        _emit(
            [
                {
                    "id": str(v.principal.id),
                    "kind": v.principal.kind,
                    "name": v.principal.name,
                    "disabled": v.principal.disabled_at is not None,
                    "grants": [{"role": g.role, "site_id": g.site_id} for g in v.grants],
                }
                for v in views
            ]
        )


# audit ----------------------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option(
    "--witnessed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="A checkpoint kept outside the database (e.g. fetched earlier from /v1/audit/checkpoint).",
)
def audit_verify(witnessed: tuple[Path, ...]) -> None:
    """Recompute the whole log from the database and check every signed checkpoint."""
    from cctv_gov.audit.verifier import verify_log

    with _services() as services, services.db.transaction() as session:
        report = verify_log(
            session,
            origin=services.keys.signer.name,
            verifiers=services.keys.verifiers,
            witnessed=[p.read_text() for p in witnessed],
        )
    _emit(
        {
            "ok": report.ok,
            "events": report.events,
            "checkpoints": report.checkpoints,
            "witnessed": report.witnessed,
            "unsequenced": report.unsequenced,
            "tree_size": report.tree_size,
            "root_hash": report.root_hash.hex(),
            "seconds": round(report.seconds, 3),
            "problems": report.problems,
        }
    )
    if not report.ok:
        sys.exit(1)


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Integrate queued events now and print the latest signed checkpoint."""
    with _services() as services:
        with services.db.transaction() as session:
            services.sequencer.integrate_all(session)
        with services.db.transaction() as session, _app_errors():
            click.echo(services.audit.latest_checkpoint(session).note, nl=False)


@audit.command("public-key")
def audit_public_key() -> None:
    """Print the verifier key (C2SP vkey) of the checkpoint signing key."""
    with _services() as services:
        click.echo(services.keys.signer.vkey)


@contextmanager
def _app_errors() -> Iterator[None]:
    try:
        yield
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None


def _validation_text(exc: Any) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


# storage --------------------------------------------------------------------------------------------------


@main.group()
def storage() -> None:
    """The object store: set up the footage bucket."""


@storage.command("setup")
@click.option("--bucket", default=None, help="Bucket to set up (default from CCTV_GOV_S3_BUCKET).")
@click.option(
    "--expire-after-days",
    type=click.IntRange(min=1),
    default=None,
    help="Days after which the store's lifecycle expires footage objects "
    "(default: CCTV_GOV_MAX_RETENTION_DAYS + 2). Must exceed CCTV_GOV_MAX_RETENTION_DAYS.",
)
def storage_setup(bucket: str | None, expire_after_days: int | None) -> None:
    """Create the footage bucket with Object Lock and versioning, and put the lifecycle backstop on it.

    Idempotent: run it again after changing CCTV_GOV_MAX_RETENTION_DAYS. Prints what it found and did.
    """
    from cctv_gov.config import StorageBackend
    from cctv_gov.container import build_storage
    from cctv_gov.kit.storage import S3ObjectStore, StorageError
    from cctv_gov.kit.storage.s3_admin import default_expire_after_days, setup_footage_bucket

    settings = _settings()
    if settings.storage_backend is not StorageBackend.S3:
        raise click.ClickException(
            "storage setup is for the s3 backend (CCTV_GOV_STORAGE_BACKEND=s3): the local backend has no "
            "bucket, versioning, Object Lock or lifecycle, so footage there is erased by the purge alone"
        )
    days = expire_after_days or default_expire_after_days(settings.max_retention_days)
    if days <= settings.max_retention_days:
        raise click.ClickException(
            f"--expire-after-days {days} would let the store erase footage that a site may keep for "
            f"CCTV_GOV_MAX_RETENTION_DAYS={settings.max_retention_days} days; give more than that"
        )
    if bucket is not None:
        settings = settings.model_copy(update={"s3_bucket": bucket})
    store = build_storage(settings)
    if not isinstance(store, S3ObjectStore):  # pragma: no cover - the backend was checked above
        raise click.ClickException(f"expected an S3 store, got {store!r}")
    try:
        report = setup_footage_bucket(store, expire_after_days=days)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    _emit({**report.as_dict(), "max_retention_days": settings.max_retention_days, "expire_after_days": days})


# Commands that live with their domain (redaction needs no settings, server or database).
main.add_command(redact)
