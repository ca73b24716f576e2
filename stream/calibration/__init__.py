"""The calibration loop in batch: judge a period, diagnose it, propose the next policy."""
