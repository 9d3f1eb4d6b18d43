"""The starter function's code folder (its CodeUri); see ``adapters/sfn/starters.py``."""
