"""Observability: the Mesos exporter, the Grafana dashboard's panels and `clusterjobs report`."""
