"""`python -m pleo_connector_admin`, the same as the `pleo-connector-admin` script."""

from pleo_connector_admin.cli import main

raise SystemExit(main())
