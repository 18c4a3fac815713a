"""IEEE 2030.5 / CSIP(-AUS) utility adapter: client, normalization into directives, reporting, and a test server."""
