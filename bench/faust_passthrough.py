"""A Faust agent that only forwards raw input records: the framework's own ceiling on this machine.

Run by bench/worker_bench.py as `python bench/faust_passthrough.py worker`, configured from the
environment (BENCH_PREFIX, BENCH_APP_ID, BENCH_OUTPUT, KAFKA_BOOTSTRAP_SERVERS, and BENCH_SCHEME:
`kafka` for faust's aiokafka driver, `rdkafka` for the project's confluent-kafka transport).
Same broker settings as the worker's app, no table, no decoding: what is left of the worker's
cost is Faust and its driver.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stream.topics import INPUT_TOPICS  # noqa: E402
from stream.worker import rdkafka  # noqa: E402

rdkafka.register()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


prefix = os.environ["BENCH_PREFIX"]
app = faust.App(
    os.environ["BENCH_APP_ID"],
    broker=[
        f"{os.environ.get('BENCH_SCHEME', 'kafka')}://{host}"
        for host in os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")
    ],
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    # The worker command starts the web server anyway; a free port keeps runs from colliding.
    web_host="127.0.0.1",
    web_port=_free_port(),
    producer_acks=-1,
    producer_linger=0.01,
    # As the worker: commits by time only (see stream/worker/app.py).
    broker_commit_every=1_000_000_000,
    broker_commit_interval=1.0,
    datadir=f"/tmp/{os.environ['BENCH_APP_ID']}",
)
raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
inputs = app.topic(*(prefix + name for name in INPUT_TOPICS), **raw)
# Not a topic the worker reads: its own (BENCH_OUTPUT), made by the bench.
output = app.topic(os.environ.get("BENCH_OUTPUT", prefix + "bench.faust-passthrough"), **raw)


@app.agent(inputs, name="passthrough")
async def forward(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await output.send(key=event.message.key, value=event.message.value)


if __name__ == "__main__":
    app.main()
