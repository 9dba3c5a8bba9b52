"""A local web page that watches the venue (live or replayed); see bridge.py."""
