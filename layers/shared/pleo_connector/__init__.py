"""The shared layer: Pleo API client, storage, crypto, sync engine and web pieces.

Imports point one way: handlers (functions/) -> this package's services -> its adapters
(store/, pleo/, sync/adapters/). Nothing here knows Lambda event shapes.
"""
