"""The actors: the runtime and one package per domain."""
