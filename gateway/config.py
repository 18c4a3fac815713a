"""Gateway configuration: one TOML file, validated with precise errors (docs/configuration.md).

Three layers, applied in this order: the file, `DERGW_SECTION__KEY` environment overrides, then secret references
(`env:VAR`, `file:PATH`) in any string value. Utility links are off until their section is present.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.model import OcppVersion, Target
from protocols.openadr2b.ven import OpenAdr2bConfig
from protocols.openadr3.adapter import OpenAdr3Config


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationConfig(_Section):
    """A station allowed to connect. `password_hash` comes from `dergw hash-password` (never the password)."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")]
    password_hash: str | None = None
    groups: list[str] = Field(default_factory=list)
    #: Subprotocols this station may use; empty = any the gateway speaks.
    versions: list[OcppVersion] = Field(default_factory=list)
    #: Import rating (W) for sharing an aggregate limit; overrides what the station reports (2.0.1/1.6 report none).
    max_w: float | None = Field(default=None, ge=0)
    #: The least it can charge at (W) when it charges at all; default 6 A x nominal voltage x phases.
    min_w: float | None = Field(default=None, ge=0)


class UpstreamConfig(_Section):
    """The CSMS a sidecar relays stations to (docs/sidecar.md). Toward it the gateway acts as each station: profile
    1/2 relay the station's own HTTP Basic credentials, profile 3 uses the gateway's own client certificate."""

    url: Annotated[str, Field(pattern=r"^wss?://")]
    security_profile: int = Field(default=1, ge=0, le=3)
    #: CA that signs the CSMS's server certificate (profiles 2 and 3).
    ca: Path | None = None
    #: The gateway's own client certificate and key (profile 3); never a station's.
    client_cert: Path | None = None
    client_key: Path | None = None
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    retry_wait_minimum_s: float = Field(default=3.0, ge=0)
    retry_random_range_s: float = Field(default=2.0, ge=0)
    retry_repeat_times: int = Field(default=5, ge=0, le=20)
    buffer_limit: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _tls(self) -> UpstreamConfig:
        if self.security_profile >= 2 and (not self.url.startswith("wss://") or self.ca is None):
            raise ValueError(f"upstream security_profile {self.security_profile} needs a wss:// url and ca")
        if self.security_profile == 3 and (self.client_cert is None or self.client_key is None):
            raise ValueError("upstream security_profile 3 needs the gateway's client_cert and client_key")
        return self


class OcppConfig(_Section):
    #: csms: the gateway is the stations' CSMS; sidecar: it relays them to [ocpp.upstream] (docs/sidecar.md).
    mode: Literal["csms", "sidecar"] = "csms"
    upstream: UpstreamConfig | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    path: str = Field(default="/ocpp", pattern=r"^/[A-Za-z0-9/_\-]*$")
    security_profile: int = Field(default=1, ge=0, le=3)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    call_timeout_s: float = Field(default=30.0, gt=0, le=600)
    heartbeat_s: int = Field(default=300, ge=1, le=86_400)
    max_message_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    compression: bool = True

    @model_validator(mode="after")
    def _tls(self) -> OcppConfig:
        if self.security_profile >= 2 and (self.tls_cert is None or self.tls_key is None):
            raise ValueError(f"security_profile {self.security_profile} needs tls_cert and tls_key")
        if self.security_profile == 3 and self.client_ca is None:
            raise ValueError("security_profile 3 needs client_ca (the CA that signs station certificates)")
        if self.mode == "sidecar" and self.upstream is None:
            raise ValueError("mode = sidecar needs an [ocpp.upstream] section")
        return self


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: Bearer token for every call that reads fleet data or writes; None disables the API's auth (dev only).
    token: str | None = None
    token_file: Path | None = None

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text(encoding="utf-8").strip()
        return self.token


class AuditConfig(_Section):
    #: Seconds between signed checkpoints of the audit log (also one every 1000 entries and at shutdown).
    checkpoint_s: float = Field(default=60.0, ge=1, le=86_400)


class DispatchConfig(_Section):
    """How stations step back after a curtailment when the utility gives no pace (docs/dispatch.md, "Restore")."""

    #: Ramp in percent of the station's rating per second (0.33 %/s: a full ramp in about 300 s).
    restore_ramp_pct_per_s: float = Field(default=0.33, ge=0, le=100)
    #: Each station waits a reproducible random delay in [0, this) before its ramp starts.
    restore_max_delay_s: float = Field(default=300.0, ge=0, le=3600)
    #: Per-EVSE charge rating assumed for a station that reports none (1.6, 2.0.1 without DCDERCtrlr).
    restore_rating_w: float = Field(default=22_000.0, gt=0)
    #: How long before a known end the ramp is sent to the station.
    restore_lead_s: float = Field(default=60.0, ge=0, le=3600)


class RatingsConfig(_Section):
    max_w: float = Field(gt=0)
    max_charge_w: float = Field(gt=0)


class EndDeviceConfig(_Section):
    """Mirrors protocols.ieee2030_5.config.EndDeviceBinding (a dataclass there, so it has no validation)."""

    name: str = Field(min_length=1)
    lfdi: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$")]
    sfdi: int = Field(ge=0, le=999_999_999_999)
    target: Target
    stations: list[str] = Field(default_factory=list)
    pin: int | None = None
    ratings: RatingsConfig | None = None


class Ieee20305Section(_Section):
    """Mirrors protocols.ieee2030_5.config.Ieee20305Config field by field (docs/configuration.md)."""

    server: Annotated[str, Field(pattern=r"^https://")]
    ca: Path
    cert: Path
    key: Path
    devices: list[EndDeviceConfig] = Field(min_length=1)
    dcap_path: str = "/dcap"
    #: TOML key `register` (a pydantic model cannot have a field of that name).
    register_device: bool = Field(default=True, alias="register")
    page_limit: int = Field(default=25, ge=1, le=255)
    request_timeout_s: float = Field(default=10.0, gt=0, le=600)
    default_poll_s: int = Field(default=900, ge=1)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    nominal_hz: float = Field(default=50.0, gt=0)
    log_event_pen: int = Field(default=0, ge=0)


class Iec61850Section(_Section):
    """Mirrors protocols.iec61850.adapter.Iec61850Config, which is not imported here: the binding is an optional
    (GPL) extra, loaded only when this section is present."""

    host: str = "127.0.0.1"
    port: int = Field(default=102, ge=0, le=65535)
    ied_name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")] = "DERGW"
    priority: int = Field(default=1, ge=0)
    hold_s: float | None = Field(default=None, gt=0)
    sample_s: float = Field(default=1.0, ge=0)


class GatewayConfig(_Section):
    data_dir: Path = Path("data")
    certs_dir: Path = Path("certs")
    ocpp: OcppConfig = Field(default_factory=OcppConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    stations: list[StationConfig] = Field(default_factory=list)
    #: Utility links: each starts only when its section is present.
    ieee2030_5: Ieee20305Section | None = None
    openadr3: OpenAdr3Config | None = None
    openadr2b: OpenAdr2bConfig | None = None
    iec61850: Iec61850Section | None = None

    @field_validator("stations")
    @classmethod
    def _unique(cls, stations: list[StationConfig]) -> list[StationConfig]:
        seen: set[str] = set()
        for s in stations:
            if s.id in seen:
                raise ValueError(f"station {s.id!r} is listed twice")
            seen.add(s.id)
        return stations

    @property
    def database(self) -> Path:
        return self.data_dir / "dergw.sqlite"

    def links(self) -> list[str]:
        """Names of the configured utility links."""
        return [name for name in ("ieee2030_5", "openadr3", "openadr2b", "iec61850") if getattr(self, name)]


class ConfigError(Exception):
    """A configuration file that cannot be used, with every problem listed by location."""


ENV_PREFIX = "DERGW_"
#: Top-level keys an environment variable without `__` may set; other DERGW_ variables (DERGW_API_TOKEN, read by
#: the `dergw directive` client) are not configuration.
_TOP_LEVEL_ENV = frozenset({"data_dir", "certs_dir"})


def _env_value(text: str) -> Any:
    """A TOML value when the text is one (`8080`, `true`, `["a"]`), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Apply `DERGW_SECTION__KEY=value` overrides in place; returns which location came from which variable."""
    origin: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if len(path) == 1 and path[0] not in _TOP_LEVEL_ENV:
            continue
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a section")
            node = child
        node[path[-1]] = _env_value(environ[name])
        origin[path] = name
    return origin


def _resolve_secrets(node: Any, base: Path, environ: Mapping[str, str], loc: str, problems: list[str]) -> Any:
    """Replace `env:VAR` and `file:PATH` string values by the variable's value or the file's content, so secrets
    need not sit in the configuration file."""
    if isinstance(node, dict):
        return {k: _resolve_secrets(v, base, environ, f"{loc}.{k}" if loc else k, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_secrets(v, base, environ, f"{loc}.{i}", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("env:"):
        if node[4:] not in environ:
            problems.append(f"{loc}: environment variable {node[4:]} is not set")
            return node
        return environ[node[4:]]
    if isinstance(node, str) and node.startswith("file:"):
        try:
            return (base / node[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{loc}: cannot read {base / node[5:]}: {exc.strerror}")
    return node


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, override from the environment, resolve secrets, validate and make paths relative to the file.
    ConfigError lists every problem as `FILE: location: message`."""
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    base = path.parent
    try:
        origin = _apply_env(raw, environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    problems: list[str] = []
    raw = _resolve_secrets(raw, base, environ, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = tuple(str(p) for p in e["loc"])
            where = ".".join(loc) or "(top)"
            source = next((f" (from {v})" for k, v in origin.items() if loc[: len(k)] == k), "")
            lines.append(f"{path}: {where}{source}: {e['msg']}")
        raise ConfigError("\n".join(lines)) from None
    config = _relative_to(config, base)
    missing = [f"{path}: {where}: no such file {p}" for where, p in _files(config) if not p.exists()]
    if missing:
        raise ConfigError("\n".join(missing))
    return config


def _files(config: GatewayConfig) -> list[tuple[str, Path]]:
    """Every file the configuration names, by location (checked at load so `check-config` finds them)."""
    named: list[tuple[str, Path | str | None]] = [
        ("ocpp.tls_cert", config.ocpp.tls_cert),
        ("ocpp.tls_key", config.ocpp.tls_key),
        ("ocpp.client_ca", config.ocpp.client_ca),
        ("api.token_file", config.api.token_file),
    ]
    if (up := config.ocpp.upstream) is not None:
        named += [("ocpp.upstream.ca", up.ca), ("ocpp.upstream.client_cert", up.client_cert)]
        named += [("ocpp.upstream.client_key", up.client_key)]
    if (sep := config.ieee2030_5) is not None:
        named += [("ieee2030_5.ca", sep.ca), ("ieee2030_5.cert", sep.cert), ("ieee2030_5.key", sep.key)]
    if (b := config.openadr2b) is not None:
        named += [("openadr2b.cert", b.cert), ("openadr2b.key", b.key), ("openadr2b.ca_file", b.ca_file)]
    return [(where, Path(p)) for where, p in named if p is not None]


def _relative_to(config: GatewayConfig, base: Path) -> GatewayConfig:
    def rel(p: Path | None) -> Path | None:
        return None if p is None else base / p

    def rel_str(p: str | None) -> str | None:
        return None if p is None else str(base / p)

    upstream = config.ocpp.upstream
    if upstream is not None:
        upstream = upstream.model_copy(
            update={
                "ca": rel(upstream.ca),
                "client_cert": rel(upstream.client_cert),
                "client_key": rel(upstream.client_key),
            }
        )
    ocpp = config.ocpp.model_copy(
        update={
            "tls_cert": rel(config.ocpp.tls_cert),
            "tls_key": rel(config.ocpp.tls_key),
            "client_ca": rel(config.ocpp.client_ca),
            "upstream": upstream,
        }
    )
    api = config.api.model_copy(update={"token_file": rel(config.api.token_file)})
    sep = config.ieee2030_5
    if sep is not None:
        sep = sep.model_copy(update={"ca": base / sep.ca, "cert": base / sep.cert, "key": base / sep.key})
    b = config.openadr2b
    if b is not None:
        b = b.model_copy(update={"cert": rel_str(b.cert), "key": rel_str(b.key), "ca_file": rel_str(b.ca_file)})
    return config.model_copy(
        update={
            "data_dir": base / config.data_dir,
            "certs_dir": base / config.certs_dir,
            "ocpp": ocpp,
            "api": api,
            "ieee2030_5": sep,
            "openadr2b": b,
        }
    )
