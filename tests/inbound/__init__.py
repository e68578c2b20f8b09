"""Tests of digest.inbound."""
