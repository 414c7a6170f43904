"""Evaluators and sweep reports."""
