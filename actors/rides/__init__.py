"""The rides actor: drivers, live locations, dispatch with offers, fares held and captured."""
