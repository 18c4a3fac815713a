"""Gateway configuration: one TOML file, validated with precise errors (docs/configuration.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.model import OcppVersion


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationConfig(_Section):
    """A station allowed to connect. `password_hash` comes from `dergw hash-password` (never the password)."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")]
    password_hash: str | None = None
    groups: list[str] = Field(default_factory=list)
    #: Subprotocols this station may use; empty = any the gateway speaks.
    versions: list[OcppVersion] = Field(default_factory=list)


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


class GatewayConfig(_Section):
    data_dir: Path = Path("data")
    certs_dir: Path = Path("certs")
    ocpp: OcppConfig = Field(default_factory=OcppConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    stations: list[StationConfig] = Field(default_factory=list)

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


class ConfigError(Exception):
    """A configuration file that cannot be used, with every problem listed by location."""


def load_config(path: Path) -> GatewayConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    base = path.parent

    def rel(p: Path | None) -> Path | None:
        return None if p is None else base / p

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
    return config.model_copy(
        update={"data_dir": base / config.data_dir, "certs_dir": base / config.certs_dir, "ocpp": ocpp, "api": api}
    )
