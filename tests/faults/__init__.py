"""Fault tests (`pytest -m faults tests/faults`): the platform under sustained load while its
parts fail — services killed, PostgreSQL restarted, Kafka brokers and the network broken —
and nothing acknowledged may be lost or duplicated."""
