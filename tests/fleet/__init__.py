"""Tests of the fleet state map, clamping, fleet view and saturation."""
