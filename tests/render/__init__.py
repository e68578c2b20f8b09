"""Tests of digest.render."""
