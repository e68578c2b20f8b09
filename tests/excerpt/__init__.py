"""Tests of digest.excerpt."""
