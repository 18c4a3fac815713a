"""Sidecar mode: the gateway as a transparent OCPP proxy between stations and an existing CSMS (docs/sidecar.md)."""

from protocols.ocpp.sidecar.buffer import Backoff
from protocols.ocpp.sidecar.proxy import SidecarProxy
from protocols.ocpp.sidecar.upstream import UpstreamSettings

__all__ = ["Backoff", "SidecarProxy", "UpstreamSettings"]
