"""Alembic is the only way the schema is made, and the models agree with it on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cctv_gov.migrate import downgrade, upgrade
from cctv_gov.models import Base


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def test_migrations_run_down_and_up_again(tmp_path: object, postgres_server_url: str) -> None:
    from tests.fixtures.postgres import create_database, drop_database

    urls = [f"sqlite:///{tmp_path}/roundtrip.db", create_database(postgres_server_url)]
    try:
        for url in urls:
            upgrade(url)
            downgrade(url, "base")
            engine = create_engine(url)
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            engine.dispose()
            upgrade(url)
            engine = create_engine(url)
            assert {t.name for t in Base.metadata.sorted_tables} <= set(inspect(engine).get_table_names())
            engine.dispose()
    finally:
        drop_database(postgres_server_url, urls[1])
