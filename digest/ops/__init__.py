"""Running digest as a service: `digest doctor` (every check that can fail before a send),
health and Prometheus metrics, JSON logs, and alerts to the owner."""
