"""Tests of digest.ops."""
