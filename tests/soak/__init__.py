"""The soak (`make soak`): three nodes under a mixed load for ten minutes, one killed and
restarted every two; nothing lost or doubled, and the takeovers' p99 against the steady p99.
"""
