"""DynamoDB repositories: installations, credentials, OAuth state (one table, see template.yaml).

Every request goes through the adapter in dynamodb.py, the only module that knows botocore's
error codes. Domain records here are plain dataclasses; items are mapped explicitly.

Nothing is re-exported here, so that a function pays only for the modules it imports.
"""
