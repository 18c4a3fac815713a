"""DER translation gateway: utility grid signals in, OCPP station commands out."""

__version__ = "0.1.0"
