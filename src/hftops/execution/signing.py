"""Binance request signing: HMAC-SHA256 (hex) of the exact query string, and credentials that never print."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from hftops.execution.errors import CredentialsError

# Valid only against the simulated venue (which accepts them when HFT_SIM_API_KEY/SECRET are unset);
# documented so a development box trades the simulator without any setup.
DEV_API_KEY = "hftops-dev-key"
DEV_API_SECRET = "hftops-dev-secret"


def sign(payload: str, secret: str) -> str:
    """Binance's `signature`: HMAC-SHA256 of `totalParams` (query string + body) keyed by the secret, hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def encode_params(params: Mapping[str, object]) -> str:
    """The query string exactly as it is sent (and therefore signed): insertion order, booleans lower case."""
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            items.append((key, "true" if value else "false"))
        else:
            items.append((key, str(value)))
    return urlencode(items)


def _redact(value: str) -> str:
    return f"{value[:4]}…({len(value)} chars)" if len(value) > 8 else "***"


@dataclass(frozen=True)
class Credentials:
    """API key and secret. The repr shows a key prefix only and never the secret."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    source: str = "env"  # "env" or "dev-default" (the simulator's documented development pair)

    def __repr__(self) -> str:
        return f"Credentials(api_key={_redact(self.api_key)!r}, api_secret='***', source={self.source!r})"

    __str__ = __repr__

    def sign(self, payload: str) -> str:
        return sign(payload, self.api_secret)


def load_credentials(key_env: str, secret_env: str, environ: Mapping[str, str], allow_dev_default: bool) -> Credentials:
    """Read the key and secret from the named environment variables.

    With neither set and `allow_dev_default` (the simulated venue), the documented development pair is used;
    against a real venue a missing variable is an error naming it.
    """
    key, secret = environ.get(key_env, ""), environ.get(secret_env, "")
    if key and secret:
        return Credentials(key, secret, "env")
    if not key and not secret and allow_dev_default:
        return Credentials(DEV_API_KEY, DEV_API_SECRET, "dev-default")
    missing = [name for name, value in ((key_env, key), (secret_env, secret)) if not value]
    raise CredentialsError(
        f"broker credentials missing: set {' and '.join(missing)} in the environment "
        f"(names from broker.api_key_env / broker.api_secret_env; secrets never go in config files)"
    )
