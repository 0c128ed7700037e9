"""The connect flows: OAuth install, API-key install, settings and activation, disconnect.

Handlers call these services with plain values and map their errors to pages; the services know
nothing of Lambda events or HTTP responses.
"""
