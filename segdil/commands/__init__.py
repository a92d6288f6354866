"""One module per ``segdil`` subcommand; each exposes a click command named ``command``."""
