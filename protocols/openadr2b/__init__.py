"""OpenADR 2.0b VEN on openleadr's client: registration, events -> directives with opt in/out, telemetry reports."""
