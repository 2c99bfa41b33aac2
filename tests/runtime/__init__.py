"""The runtime's semantic tests, run on the memory transport and on Redis Streams."""
