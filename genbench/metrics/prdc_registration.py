"""Registers precision, recall, density and coverage in the metric registry."""
