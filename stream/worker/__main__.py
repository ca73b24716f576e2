"""`python -m stream.worker`: run one worker with settings from the environment."""

from stream.worker.run import main

main()
