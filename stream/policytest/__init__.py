"""Policy test suites: named conversations with the decision each must get, run through `step`."""
