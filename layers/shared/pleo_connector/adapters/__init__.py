"""The integrator's extension point: how an accounting system is read.

An adapter has two halves. Its descriptor (`base.AdapterDescriptor`: name, connection settings
model, what the settings page offers) is light and lives in the shared layer, so the web functions
can use it. Its reader (`base.SourceReader`: opens the source, streams the records) may need heavy
dependencies and is imported only by the functions that read sources. `registry` picks the
deployed one from configuration.
"""
