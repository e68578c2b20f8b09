"""Tests of digest.blogs."""
