"""Tests of digest.issues."""
