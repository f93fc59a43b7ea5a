"""Randomized torture of a live `envwatchd run`: crashes, overflows, bad input."""
