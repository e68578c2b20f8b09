"""Tests of digest.store."""
