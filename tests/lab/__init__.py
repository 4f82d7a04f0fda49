"""The local lab: real services the collection is tested and demonstrated against.

Every part starts on loopback (or, for systemd hosts, on addresses of network namespaces
the lab creates itself), is health-checked with a bounded wait, and is torn down.
"""
