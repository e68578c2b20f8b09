"""Tests of digest.config."""
