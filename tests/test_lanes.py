"""Per-key lanes in front of a shared limit (``aggregator.sources.lanes``)."""

from __future__ import annotations

import asyncio

import pytest

from aggregator.sources.lanes import Lanes, waits


def test_a_task_waiting_for_its_busy_key_holds_no_shared_slot() -> None:
    async def main() -> list[str]:
        lanes = Lanes(per_key=1, total=2)
        release = asyncio.Event()
        order: list[str] = []

        async def hold(name: str, key: str) -> None:
            async with lanes.slot(key):
                order.append(name)
                await release.wait()

        async def quick(name: str, key: str) -> None:
            async with lanes.slot(key):
                order.append(name)

        first = asyncio.create_task(hold("slow-1", "slow"))
        waiting = [asyncio.create_task(hold(f"slow-{i}", "slow")) for i in (2, 3, 4)]
        await asyncio.sleep(0)
        # Three tasks wait for the slow key: none took the second shared slot.
        await asyncio.wait_for(quick("other", "other"), timeout=60)
        release.set()
        await asyncio.gather(first, *waiting)
        return order

    order = asyncio.run(main())
    assert order[:2] == ["slow-1", "other"]
    assert sorted(order[2:]) == ["slow-2", "slow-3", "slow-4"]


def test_per_key_and_total_limits_hold() -> None:
    async def main() -> tuple[dict[str, int], int]:
        lanes = Lanes(per_key=2, total=3)
        now: dict[str, int] = {}
        peak: dict[str, int] = {}
        total = [0, 0]

        async def one(key: str) -> None:
            async with lanes.slot(key):
                now[key] = now.get(key, 0) + 1
                peak[key] = max(peak.get(key, 0), now[key])
                total[0] += 1
                total[1] = max(total[1], total[0])
                for _ in range(3):
                    await asyncio.sleep(0)
                now[key] -= 1
                total[0] -= 1

        await asyncio.gather(*(one(k) for k in "aaaaabbbbbcc" * 3))
        return peak, total[1]

    peak, most = asyncio.run(main())
    assert peak == {"a": 2, "b": 2, "c": 2}
    assert most == 3


def test_no_key_takes_only_a_shared_slot_and_lanes_do_not_accumulate() -> None:
    async def main() -> int:
        lanes = Lanes(per_key=1, total=1)
        for i in range(50):
            async with lanes.slot(f"host-{i}"):
                pass
        async with lanes.slot(None):
            assert lanes.keys() == 0
        with pytest.raises(RuntimeError):
            async with lanes.slot("x"):
                raise RuntimeError("boom")
        return lanes.keys()

    assert asyncio.run(main()) == 0


@pytest.mark.parametrize(("per_key", "total"), [(0, 1), (1, 0)])
def test_limits_below_one_are_refused(per_key: int, total: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Lanes(per_key=per_key, total=total)


def test_waits_for_a_slot_are_counted_where_asked() -> None:
    """A context that sets ``waits`` learns how long its tasks queued; the others cost nothing."""

    async def main() -> tuple[list[float], list[float]]:
        lanes = Lanes(per_key=1, total=4)
        holding, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with lanes.slot("host"):
                holding.set()
                await release.wait()

        async def queued(counted: list[float]) -> None:
            waits.set(counted)
            async with lanes.slot("host"):
                pass

        first = asyncio.create_task(hold())
        await holding.wait()
        counted: list[float] = []
        second = asyncio.create_task(queued(counted))
        await asyncio.sleep(0.05)  # the second task queues behind the first meanwhile
        release.set()
        await asyncio.gather(first, second)
        free: list[float] = []
        await asyncio.create_task(queued(free))
        return counted, free

    counted, free = asyncio.run(main())
    assert len(counted) == 1 and counted[0] >= 0.04
    assert len(free) == 1 and free[0] < counted[0]
    assert waits.get() is None


def test_a_slot_given_back_early_lets_the_next_task_of_its_key_in() -> None:
    async def main() -> tuple[list[str], int]:
        lanes = Lanes(per_key=1, total=1)
        order: list[str] = []
        done = asyncio.Event()

        async def first() -> None:
            async with lanes.slot("host") as held:
                order.append("first")
                held.release()  # its write is queued: the host's next source may go
                held.release()  # again: nothing
                await done.wait()
                order.append("first ends")

        async def second() -> None:
            async with lanes.slot("host"):
                order.append("second")
                done.set()

        await asyncio.wait_for(asyncio.gather(first(), second()), timeout=60)
        return order, lanes.keys()

    order, keys = asyncio.run(main())
    assert order == ["first", "second", "first ends"]
    assert keys == 0


def test_a_slot_given_back_early_counts_once_against_both_limits() -> None:
    async def main() -> int:
        lanes = Lanes(per_key=1, total=1)
        async with lanes.slot("host") as held:
            held.release()
        # Released early and at the end: the limits are as they were, not above.
        inside = 0
        peak = 0

        async def one() -> None:
            nonlocal inside, peak
            async with lanes.slot("host"):
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0)
                inside -= 1

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(5))), timeout=60)
        return peak

    assert asyncio.run(main()) == 1
