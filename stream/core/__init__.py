"""Pure decision code: no Kafka, Faust or network import may appear under this package."""
