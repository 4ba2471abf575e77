"""A local stand-in for Apache Mesos: masters and agents speaking the v1 HTTP API.

Pure cores (RecordIO framing, resource arithmetic, task states, the master's bookkeeping, the
agent's status-update ledger) live apart from the HTTP and ZooKeeper edges so they are unit-tested
without services.
"""
