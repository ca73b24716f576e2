"""Faust's fetch loop, handing each fetched record to its agent inline instead of through tasks.

faust-streaming's `Consumer._drain_messages` hands every record over with
`await self.wait_first(callback(message), self.suspend_flow.wait())`, so that a hand-over stuck
while a rebalance suspends the flow is given up. `wait_first` wraps the callback and three events
in four new tasks, waits for the first, and cancels the rest: about 30 µs of CPU per record on a
quiet loop, and at least one pass of the event loop per record, so the records of one fetch
reach their agent one loop pass apart, each pass running whatever else is ready.

The hand-over itself does not wait: Faust's conductor puts the record on the agent's queue with
`put_nowait` (a full queue pauses the partition instead). Only its lock on the subscription map
can make it wait, while the subscriptions change. So, while the flow runs, the record is handed
over inline, as a plain await; while the flow is suspended, as Faust does. Everything else in
the loop is Faust's, line for line, as in faust-streaming 0.15.3. Should the installed Faust's
loop be another (its source's hash differs), the worker runs Faust's own loop and says so at
start: a copy of an older loop must not stand in for a newer one. A test fails on such a Faust,
so an upgrade is read against this copy first.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from typing import Any, cast

import structlog
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from mode import Service

log = structlog.get_logger(__name__)

#: sha256 of the source of faust-streaming 0.15.3's `Consumer._drain_messages`, the loop copied.
COPIED_LOOP_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


def installed_loop_is_the_copied_one() -> bool:
    try:
        source = inspect.getsource(AIOKafkaConsumer._drain_messages)
    except (OSError, TypeError):  # no source to compare: not known to be the same
        return False
    return hashlib.sha256(source.encode()).hexdigest() == COPIED_LOOP_SHA256


#: Records handed over between two passes of the event loop given to the rest of the worker, as
#: in Faust.
YIELD_EVERY = 100


class InlineDelivery(AIOKafkaConsumer):
    """The aiokafka consumer of Faust with the fetch loop above; counts how records went."""

    handed_inline = 0
    handed_while_suspended = 0

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's drain loop (see the module docstring for the one difference)."""
        if not installed_loop_is_the_copied_one():
            log.warning(
                "faust_drain_loop_not_the_copied_one",
                detail="the installed faust-streaming's Consumer._drain_messages differs from "
                "the one stream/worker/delivery.py copies; running Faust's own",
            )
            await super()._drain_messages(fetcher)
            return
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        suspended = self.suspend_flow.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                # getmany may be called in a loop that never hands the event loop back
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        since_yield += 1
                        if since_yield > YIELD_EVERY:
                            await sleep(0)
                            since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if suspended():
                                self.handed_while_suspended += 1
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                self.handed_inline += 1
                                await callback(message)
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
