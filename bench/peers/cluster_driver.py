"""The distributed mode's leader as a long-lived contender: one poll cycle per `cycle` command.

``python -m bench.peers.cluster_driver FEEDS_YAML``. A cycle is the leader's barrier round
(`Leader.poll_all_once`, the code of `monitor run --once` over workers): every source due
now, batches claimed and sent to the broker every 0.2 s until every source was polled by the
`monitor worker` processes the bench started. The cycle then waits until the analysis owner
(`monitor run --role analysis`, also started by the bench) has analysed every poll in the
intake, so its wall time is poll *and* analysis, as the one-process `run_once` it is
compared with. The answer says when the polls ended (`polled_wall`) too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from datetime import timedelta
from typing import Any

from bench.peers.driver import say, serve

DRAINED_TIMEOUT = 1800.0


async def main(config: str) -> None:
    logging.basicConfig(level=os.environ.get("MONITOR_BENCH_LOG", "ERROR"), format="%(asctime)s %(name)s %(message)s")
    try:
        from monitor.clock import utc_now
        from monitor.run.cluster import _celery, _opened
        from monitor.run.leader import Leader
        from monitor.run.worker import dispatcher
        from monitor.store import distributed as cluster
    except Exception as exc:  # an older checkout without the distributed mode
        say({"error": f"cannot import the distributed mode: {type(exc).__name__}: {exc}"})
        return
    with _opened(config, "the bench's leader") as (holder, store):
        leader = Leader(holder, store, dispatcher(_celery(holder, "the bench's leader")))
        leader.take_office()  # once, as a running leader does when elected

        def waiting() -> int:
            with store.connect() as conn:
                return cluster.intake_lag(conn, utc_now())[0]

        async def cycle() -> dict[str, Any]:
            started = time.monotonic()
            await leader.poll_all_once(timeout=timedelta(seconds=DRAINED_TIMEOUT), take_office=False)
            polled = time.monotonic() - started
            deadline = time.monotonic() + DRAINED_TIMEOUT
            while await asyncio.to_thread(waiting):
                if time.monotonic() > deadline:
                    raise TimeoutError("the analysis owner did not drain the intake in time")
                await asyncio.sleep(0.05)
            return {"polled_wall": polled}

        await serve(cycle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
