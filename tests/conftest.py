"""Shared fixtures: both database tiers, the services, an app client and a populated world of principals."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cctv_gov.app import create_app
from cctv_gov.authz import SYSTEM_ACTOR, Role
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.db import Database
from cctv_gov.kit.clock import FixedClock
from cctv_gov.models import Base
from cctv_gov.sites.schemas import SiteCreate

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.s3"]

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def sqlite_db_url() -> Iterator[str]:
    from cctv_gov.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="cctv-gov-sqlite-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'test.db'}"
        upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on each database tier."""
    name = "sqlite_db_url" if request.param == "sqlite" else "postgres_db_url"
    url: str = request.getfixturevalue(name)
    return url


def wipe(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.is_postgres:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    wipe(db)
    try:
        yield db
    finally:
        wipe(db)
        db.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        jobs_enabled=False,
        audit_origin="test.cctv-gov/audit",
    )


@pytest.fixture
def services(settings: Settings, clock: FixedClock, database: Database) -> Services:
    return build_services(settings, clock=clock, db=database)


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    app = create_app(settings, services=services)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class World:
    """Two sites, and at each a principal per role; an install-wide admin and auditor."""

    site_a: str
    site_b: str
    tokens: dict[str, str] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


PEOPLE_AT_SITE = [Role.GENERAL_MANAGER, Role.OPERATOR, Role.AUDITOR, Role.REQUESTER, Role.ADMIN]


@pytest.fixture
def world(services: Services) -> World:
    with services.db.transaction() as s:
        a = services.sites.create(s, SYSTEM_ACTOR, SiteCreate(slug="site-a", name="Site A", timezone="UTC"))
        b = services.sites.create(
            s, SYSTEM_ACTOR, SiteCreate(slug="site-b", name="Site B", timezone="Pacific/Auckland")
        )
        w = World(site_a=str(a.id), site_b=str(b.id))
        for site_key, site in (("a", a), ("b", b)):
            for role in PEOPLE_AT_SITE:
                view = services.identity.create_person(
                    s, SYSTEM_ACTOR, name=f"{role.value}-{site_key}", email=None, grants=[(role, site.id)]
                )
                _, secret = services.identity.issue_token(
                    s, SYSTEM_ACTOR, view.principal.id, label="t", expires_in_days=30
                )
                w.tokens[f"{role.value}@{site_key}"] = secret
                w.principals[f"{role.value}@{site_key}"] = str(view.principal.id)
            agent = services.identity.create_agent(s, SYSTEM_ACTOR, site_id=site.id, name=f"nvr-{site_key}")
            _, secret = services.identity.issue_token(
                s, SYSTEM_ACTOR, agent.principal.id, label="a", expires_in_days=None
            )
            w.tokens[f"agent@{site_key}"] = secret
            w.principals[f"agent@{site_key}"] = str(agent.principal.id)
        for role in (Role.ADMIN, Role.AUDITOR):
            view = services.identity.create_person(
                s, SYSTEM_ACTOR, name=f"{role.value}-global", email=None, grants=[(role, None)]
            )
            _, secret = services.identity.issue_token(
                s, SYSTEM_ACTOR, view.principal.id, label="t", expires_in_days=30
            )
            w.tokens[f"{role.value}@*"] = secret
            w.principals[f"{role.value}@*"] = str(view.principal.id)
    return w


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With CCTV_GOV_TEST_REQUIRE_TIERS (CI sets it), a tier that did not run fails the whole run."""
    import os

    from tests.fixtures.tiers import TIERS_RUN

    required = os.environ.get("CCTV_GOV_TEST_REQUIRE_TIERS", "").split()
    missing = []
    for need in required:
        name, _, value = need.partition("=")
        ran = TIERS_RUN.get(name)
        if ran is None or (value and ran != value):
            missing.append(f"{need} (ran: {ran or 'no'})")
    if missing:
        print(f"\nrequired test tiers did not run: {', '.join(missing)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
