"""Running the Alembic migrations from code (``kassa migrate``, ``kassa up``, test sessions)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config


def _root() -> Path:
    configured = os.environ.get("KASSA_MIGRATIONS_DIR")
    if configured:
        return Path(configured).parent
    # src/kassa/core/migrate.py → the repository root holding alembic.ini and migrations/.
    return Path(__file__).resolve().parents[3]


def upgrade(dsn: str) -> None:
    """Apply every pending migration of every domain (``upgrade heads``)."""
    root = _root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.set_main_option("version_locations", str(root / "migrations" / "versions"))
    cfg.attributes["dsn"] = dsn
    command.upgrade(cfg, "heads")
