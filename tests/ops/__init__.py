"""Tests of digest.ops: doctor, metrics, logs, alerts, backups and copies."""
