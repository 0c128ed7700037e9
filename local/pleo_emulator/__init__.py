"""A stand-in for Pleo (authorization server and External API) that runs on loopback.

Everything is in memory. `python -m local.pleo_emulator --port N` serves it; tests and the local
world drive it through the JSON control API under `/_emulator/` (see README.md beside this file).
"""
