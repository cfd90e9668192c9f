"""ORM configuration for tortoise's own CLI (``make migrations``)."""

from pathlib import Path

from api.db import orm_config
from api.settings import Settings

TORTOISE_ORM = orm_config(Settings.from_env(data_dir=Path("/tmp/consentry-makemigrations")))
