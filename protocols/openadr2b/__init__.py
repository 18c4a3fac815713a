"""OpenADR 2.0b VEN on openleadr's client: registration, events -> directives with opt in/out, telemetry reports."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# openleadr signs with signxml, whose type hints name DSA keys: cryptography >= 51 warns about DSA when signxml is
# imported, and that line would open the output of every dergw command (and break `dergw ... --json | jq`).
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module="signxml")
