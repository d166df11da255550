"""Web application: registry entry, case view with image viewer, dose and quality dashboards,
remote consultation; server-rendered pages (zh-CN / en) and a JSON API with OpenAPI."""

from .app import create_app
from .context import Ctx
from .security import Principal, hash_password, verify_password
from .seed import add_user, seed_demo

__all__ = ["Ctx", "Principal", "add_user", "create_app", "hash_password", "seed_demo", "verify_password"]
