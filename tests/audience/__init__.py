"""Tests of digest.audience."""
