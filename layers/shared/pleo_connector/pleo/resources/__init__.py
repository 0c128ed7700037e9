"""One module per Pleo resource; each method is one documented operation."""
