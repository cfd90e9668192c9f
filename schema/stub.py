"""A clear answer for contract operations whose capability has not landed yet."""

from api.errors import ConsentryError


def not_yet(operation: str) -> ConsentryError:
    return ConsentryError(f"{operation} is not available yet", reason="NOT_IMPLEMENTED")
