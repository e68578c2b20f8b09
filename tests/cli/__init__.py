"""Tests of digest.cli."""
