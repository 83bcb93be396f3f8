"""The destination's settings: read once from the Airbyte config, checked, then passed on as
plain values. Nobody else reads the raw config mapping."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from destination_codat_expenses import values
from destination_codat_expenses.errors import ConfigError
from destination_codat_expenses.mapping import FieldNames, MappingSettings
from destination_codat_expenses.receipts import PSEUDO_FILE_SYSTEMS
from destination_codat_expenses.redaction import is_postgres, shown
from destination_codat_expenses.redaction import shown as shown_store
from destination_codat_expenses.rules import parsed_fallbacks

SECRET_SETTINGS = ("api_key",)


def spec() -> dict:
    return json.loads(resources.files(__package__).joinpath("spec.json").read_text())


def defaults() -> dict[str, Any]:
    properties = spec()["connectionSpecification"]["properties"]
    return {name: prop["default"] for name, prop in properties.items() if "default" in prop}


@dataclass(frozen=True)
class Config:
    api_key: str
    base_url: str
    push_flow: str
    company_id: str | None
    company_id_field: str | None
    mapping: MappingSettings
    batch_size: int
    sync_size: int
    wait_for_syncs: bool
    sync_wait_timeout_seconds: int
    max_rejected_share: float
    status_store_path: str
    concurrency: int
    upload_receipts: bool
    receipts_root: str | None = None  # the real path of the only folder receipts are read from

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Config:
        settings = {**defaults(), **{k: v for k, v in raw.items() if v is not None}}
        api_key = settings.get("api_key")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("api_key", "is required: the API key from the Codat Portal.")
        return cls(
            api_key=api_key.strip(),
            base_url=checked_base_url(settings["base_url"]),
            push_flow=one_of(settings, "push_flow", ("direct", "datasets")),
            company_id=checked_company(settings.get("company_id")),
            company_id_field=(settings.get("company_id_field") or "").strip() or None,
            mapping=mapping_settings(settings),
            batch_size=bounded(settings, "batch_size", 1, 50),
            sync_size=bounded(settings, "sync_size", 1, 5000),
            wait_for_syncs=bool(settings["wait_for_syncs"]),
            sync_wait_timeout_seconds=bounded(settings, "sync_wait_timeout_seconds", 0, 86400),
            max_rejected_share=share(settings["max_rejected_share"]),
            status_store_path=checked_store(raw, settings),
            concurrency=bounded(settings, "concurrency", 1, 10),
            upload_receipts=bool(settings["upload_receipts"]),
            receipts_root=checked_receipts_root(settings.get("receipts_root")),
        ).routed()

    def routed(self) -> Config:
        if not self.company_id and not self.company_id_field:
            raise ConfigError(
                "company_id",
                "set a Codat company id, or 'company_id_field' to "
                "route each record by one of its fields.",
            )
        if self.company_id and self.company_id_field:
            raise ConfigError(
                "company_id_field", "set either a fixed company id or a company id field, not both."
            )
        return self

    def redacted(self) -> dict[str, Any]:
        """The settings as stored with a run: every secret replaced."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "mapping"}
        shown.update({name: "**********" for name in SECRET_SETTINGS})
        shown["status_store_path"] = shown_store(self.status_store_path)  # a URL's password
        shown["mapping"] = {
            "shape": self.mapping.shape,
            "zone": str(self.mapping.zone),
            "amount_includes_tax": self.mapping.amount_includes_tax,
            "fields": vars(self.mapping.fields),
            "defaults": self.mapping.fallbacks.defaults,
            "company_defaults": self.mapping.fallbacks.companies,
            "rules": len(self.mapping.fallbacks.rules),
        }
        return shown


def checked_base_url(value: Any) -> str:
    """https, or plain http to this machine only (the sandbox): over http anywhere else the
    API key would cross the network in clear text."""
    parsed = urlparse(str(value))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError("base_url", f"'{value}' is not an http(s) address.")
    if parsed.scheme == "http" and not is_loopback(parsed.hostname):
        raise ConfigError(
            "base_url",
            f"'{value}' is plain http to another host, which would send the API key in clear "
            "text; use https (plain http is allowed only for a loopback address such as "
            "127.0.0.1 or localhost).",
        )
    return str(value).rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_company(value: Any) -> str | None:
    if not value:
        return None
    canonical = values.canonical_uuid(str(value))
    if canonical is None:
        raise ConfigError("company_id", f"'{value}' is not a Codat company id (a UUID).")
    return canonical


def checked_store(raw: dict[str, Any], settings: dict[str, Any]) -> str:
    """`status_store`, else its old name `status_store_path`, else the default file."""
    name = "status_store" if raw.get("status_store") else "status_store_path"
    value = raw.get(name) or settings["status_store"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            name, "must be a DuckDB file path or a postgresql://user:password@host:port/db URL."
        )
    value = value.strip()
    if is_postgres(value) and not postgres_url_complete(value):
        raise ConfigError(
            name, f"{shown(value)} is not a postgresql://user:password@host:port/db URL."
        )
    return value


def postgres_url_complete(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.hostname) and bool(parts.path.strip("/")) and parts.port != 0
    except ValueError:
        return False


def checked_receipts_root(value: Any) -> str | None:
    """Unset: receipts come inline only. Set: an existing folder (its real path, symlinks
    resolved), never the file system root nor a kernel file system."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ConfigError("receipts_root", "must be the path of a folder that holds receipts.")
    try:
        root = Path(value.strip()).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        root = None
    if root is None or not root.is_dir():
        raise ConfigError("receipts_root", f"'{value.strip()}' is not an existing folder.")
    if root == Path(root.anchor) or any(root.is_relative_to(p) for p in PSEUDO_FILE_SYSTEMS):
        raise ConfigError(
            "receipts_root",
            f"'{value.strip()}' is a system folder; name a folder that holds only receipts.",
        )
    return str(root)


def one_of(settings: dict, name: str, allowed: tuple[str, ...]) -> str:
    if settings[name] not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}, not '{settings[name]}'.")
    return settings[name]


def bounded(settings: dict, name: str, low: int, high: int) -> int:
    value = settings[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(name, f"must be a whole number from {low} to {high}.")
    return value


def share(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError("max_rejected_share", "must be a number from 0 to 1 (0.1 = 10%).")
    return float(value)


def mapping_settings(settings: dict) -> MappingSettings:
    try:
        zone = ZoneInfo(str(settings["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "timezone", f"'{settings['timezone']}' is not an IANA time zone such as Europe/London."
        ) from None
    names = settings.get("field_mapping") or {}
    known = {f.name for f in fields(FieldNames)}
    unknown = set(names) - known
    if unknown:
        raise ConfigError(
            "field_mapping",
            f"unknown part(s) {sorted(unknown)}; known parts: {', '.join(sorted(known))}.",
        )
    if any(not isinstance(v, str) or not v.strip() for v in names.values()):
        raise ConfigError("field_mapping", "every part must name a record field.")
    shape = one_of(settings, "record_shape", ("flat", "codat"))
    company_id = checked_company(settings.get("company_id"))
    fallbacks = parsed_fallbacks(
        settings.get("defaults"), settings.get("mapping_rules"), company_id
    )
    if fallbacks and shape != "flat":
        raise ConfigError(
            "defaults" if fallbacks.defaults or fallbacks.companies else "mapping_rules",
            "applies to flat records only; with record_shape 'codat' each record carries "
            "its own references.",
        )
    return MappingSettings(
        shape=shape,
        fields=FieldNames(**{k: v.strip() for k, v in names.items()}),
        amount_includes_tax=bool(settings["amount_includes_tax"]),
        zone=zone,
        fallbacks=fallbacks,
        company_id=company_id,
        company_id_field=(settings.get("company_id_field") or "").strip() or None,
    )
