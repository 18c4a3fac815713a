"""`dergw bench fanout`: the gateway, two baselines and the station simulator, each in its own process.

`fanout` orchestrates and reports, `servers` runs one CSMS (the gateway, the naive `ocpp`-library CSMS or the bare
websockets floor), `baselines` holds the two baselines, `simproc` runs simulated stations, `procs` is the line-based
JSON control channel between them and `stats` the arithmetic and /proc readings.
"""
