"""Person keys of the clinic exports: keyed, per clinic, and mapped back only inside the archive.

Why HMAC and not a plain hash: person ids are short and often guessable (ID-card numbers, clinic numbering), so an
unkeyed hash of them is undone by trying every id. HMAC-SHA256 under a secret export key (setting `export_key`,
`CHRONIC_EXPORT_KEY`) cannot be undone without the key. The message is `clinic_id NUL person_id`, so the same person
gets unrelated keys in two clinics' exports and two clinics cannot join their files to link people. Keys are the
first 32 hex characters (128 bits) of the HMAC: short enough to read, with collisions out of reach for any
population. The way back (`export_key_map`) stays in the archive.

Without a key an export is refused (`ExportKeyError`) unless it is the demo, which then uses a fixed key anyone can
recompute (`demo_key`), with a `DemoKeyWarning`: demo pseudonyms are not secret, and the manifest says so.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from dataclasses import dataclass, field
from datetime import date

import duckdb

from chronic.archive.db import sql
from chronic.settings import Settings

KEY_HEX_CHARS = 32  # 128 bits of the HMAC-SHA256
DEMO_KEY_PREFIX = "chronic-demo-export-key:"
MIN_KEY_CHARS = 16
_BLOCK = 64  # SHA-256 block size (RFC 2104)


class ExportKeyError(RuntimeError):
    """No export key is configured and this is not the demo: exporting would need an unkeyed pseudonym."""


class DemoKeyWarning(UserWarning):
    """The export runs under the public demo key: its person keys can be recomputed by anyone."""


@dataclass(frozen=True)
class ExportKey:
    """The HMAC key of an export; `secret` never appears in repr or in any file."""

    secret: bytes = field(repr=False)
    demo: bool

    @property
    def key_id(self) -> str:
        """A fingerprint of the key for the manifest: tells key rotations apart without revealing the key."""
        return hmac.new(self.secret, b"chronic export key id", hashlib.sha256).hexdigest()[:16]

    def pads(self) -> tuple[bytes, bytes]:
        """(K xor ipad, K xor opad) of RFC 2104, so SQL can compute the HMAC with two sha256 calls per row."""
        k = hashlib.sha256(self.secret).digest() if len(self.secret) > _BLOCK else self.secret
        k = k.ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)

    def person_key(self, clinic_id: str, person_id: str) -> str:
        """The key of one person in one clinic's exports (reference implementation of sql/export_keys.sql)."""
        message = clinic_id.encode() + b"\0" + person_id.encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]


def demo_key(settings: Settings) -> bytes:
    """The demo key: `chronic-demo-export-key:<name of the data dir>`, fixed so that demo reruns are identical."""
    return (DEMO_KEY_PREFIX + settings.data_dir.name).encode()


def resolve_key(settings: Settings, *, demo: bool = False) -> ExportKey:
    """The export key of `settings`; without one, the demo key if `demo`, else `ExportKeyError`.

    A configured key wins even in the demo, so a demo run with a key gives real pseudonyms.
    """
    secret = settings.export_key.get_secret_value() if settings.export_key is not None else ""
    if secret:
        if len(secret) < MIN_KEY_CHARS:
            warnings.warn(
                f"the export key has fewer than {MIN_KEY_CHARS} characters; use a long random secret "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)",
                UserWarning,
                stacklevel=3,
            )
        return ExportKey(secret.encode(), demo=False)
    if not demo:
        raise ExportKeyError(
            "refusing to export: no export key. Set CHRONIC_EXPORT_KEY (a long random secret, kept out of the "
            "exports and the archive) so person ids can be pseudonymised; only the demo may run without one."
        )
    warnings.warn(
        f"exporting with the public demo key ({DEMO_KEY_PREFIX}<data dir name>): person keys are NOT secret; "
        "set CHRONIC_EXPORT_KEY for real data",
        DemoKeyWarning,
        stacklevel=3,
    )
    return ExportKey(demo_key(settings), demo=True)


def build_keys(con: duckdb.DuckDBPyConnection, key: ExportKey, *, as_of: date, clinics: list[str]) -> None:
    """Create temp table `export_keys(person_id, clinic_id, person_key)` for the people scored at `as_of`."""
    inner, outer = key.pads()
    con.execute(
        "create or replace temp table export_keys as " + sql("export_keys"),
        {"as_of": as_of, "clinics": clinics, "inner_pad": inner, "outer_pad": outer, "key_chars": KEY_HEX_CHARS},
    )


def record_key_map(con: duckdb.DuckDBPyConnection) -> None:
    """Add the keys of `export_keys` to the archive's `export_key_map` (the only way back to the person)."""
    con.execute(sql("export_key_map_insert"))
