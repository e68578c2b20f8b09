"""Tests of digest.delivery."""
