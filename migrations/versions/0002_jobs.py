"""Background jobs: procrastinate's schema, from the pinned procrastinate package.

Revision ID: 0002_jobs
Revises: 0001_foundation
"""

from importlib.resources import files

from alembic import op

revision = "0002_jobs"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(files("procrastinate.sql").joinpath("schema.sql").read_text())


def downgrade() -> None:
    op.execute("""
    DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events,
        procrastinate_jobs, procrastinate_workers CASCADE;
    DROP TYPE IF EXISTS procrastinate_job_event_type, procrastinate_job_status,
        procrastinate_job_to_defer_v1 CASCADE;
    """)
