"""Tests of digest.ops: doctor, metrics, logs and alerts."""
