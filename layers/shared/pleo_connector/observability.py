"""The logger, in a neutral module that any layer may import.

Metrics join it with the operations work, where something emits them; Tracer is left out on
purpose: it pulls in the X-Ray SDK (hundreds of milliseconds of cold start, and not in the Lambda
runtime). Active tracing is switched in template.yaml and needs no code.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger()
