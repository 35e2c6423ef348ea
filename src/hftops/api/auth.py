"""Bearer-token check for mutating control calls (the token is compared in constant time, never logged)."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

NO_TOKEN_HINT = (
    "mutating API calls are disabled because no API token is configured; set api.token in the "
    "config file or the HFT_API_TOKEN environment variable, then restart the platform"
)


def check_bearer(request: Request, token: str | None) -> None:
    """Raises 401 (missing or wrong token) or 403 (no token configured). Nothing runs before this."""
    if token is None:
        raise HTTPException(status_code=403, detail=NO_TOKEN_HINT)
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise HTTPException(status_code=401, detail="missing 'Authorization: Bearer <token>' header", headers=challenge)
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(
            status_code=401, detail="the Authorization header must be 'Bearer <token>'", headers=challenge
        )
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise HTTPException(status_code=401, detail="wrong API token", headers=challenge)
