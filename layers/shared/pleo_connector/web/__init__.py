"""Web pieces of the pages: security headers, signed sessions, CSRF, forms and templates.

Nothing is re-exported here so that a handler pays only for the modules it imports.
"""
