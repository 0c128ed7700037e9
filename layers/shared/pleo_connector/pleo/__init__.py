"""Pleo's external API and authorization server, as the integration uses them.

Modules: errors (the error tree), auth (API key, bearer), oauth (PKCE, authorize URL, tokens),
retry and ratelimit (pure policies), transport (one request, done right), models, resources/,
client (`PleoClient`). Import from the module you need: this package imports nothing eagerly.
"""
