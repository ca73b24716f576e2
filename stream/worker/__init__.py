"""The streaming worker: Faust agents around the decision core."""
