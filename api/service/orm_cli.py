"""ORM configuration for tortoise's own CLI (``make migrations``); never opens a database."""

import tempfile
from pathlib import Path

from api.core.settings import Settings
from api.platform.db import orm_config

TORTOISE_ORM = orm_config(Settings.from_env(data_dir=Path(tempfile.gettempdir()) / "consentry-mk"))
