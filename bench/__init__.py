"""Benchmarks: every `bench_*.py` module has a `main()` and prints
`bench: <name> = <value> <unit>` lines."""
