"""AsrSlots: transcriptions at once in the process, finals ahead of partials."""

from __future__ import annotations

import asyncio

import pytest

from mediaserver.agents.ai.asr_slots import AsrSlots


def test_partials_never_take_the_last_of_two_slots() -> None:
    slots = AsrSlots(2)
    assert slots.try_partial()
    assert not slots.try_partial()  # the second slot is kept for a final
    slots.release()
    assert slots.try_partial()


def test_with_one_worker_a_partial_takes_the_free_slot() -> None:
    slots = AsrSlots(1)
    assert slots.try_partial()
    assert not slots.try_partial()
    slots.release()
    assert slots.busy == 0


async def test_a_final_starts_beside_a_running_partial() -> None:
    slots = AsrSlots(2)
    assert slots.try_partial()
    await asyncio.wait_for(slots.acquire_final(), 0.1)  # no wait: the reserved slot
    assert slots.busy == 2


async def test_waiting_finals_go_first_in_order_and_block_new_partials() -> None:
    slots = AsrSlots(1)
    assert slots.try_partial()
    order: list[str] = []

    async def final(name: str) -> None:
        await slots.acquire_final()
        order.append(name)

    first = asyncio.create_task(final("a"))
    second = asyncio.create_task(final("b"))
    await asyncio.sleep(0)
    assert slots.finals_waiting == 2 and not slots.partial_free()
    slots.release()  # the partial ends: its slot goes to the first final, not to a new partial
    await asyncio.sleep(0)
    assert order == ["a"] and slots.busy == 1 and not slots.try_partial()
    slots.release()
    await asyncio.gather(first, second)
    assert order == ["a", "b"]
    slots.release()
    assert slots.busy == 0 and slots.try_partial()


async def test_a_cancelled_waiting_final_gives_up_its_place() -> None:
    slots = AsrSlots(1)
    await slots.acquire_final()
    waiting = asyncio.create_task(slots.acquire_final())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slots.release()
    assert slots.busy == 0 and slots.finals_waiting == 0


async def test_a_final_cancelled_as_its_slot_is_handed_over_passes_it_on() -> None:
    slots = AsrSlots(1)
    await slots.acquire_final()
    waiting = asyncio.create_task(slots.acquire_final())
    await asyncio.sleep(0)
    slots.release()  # handed to `waiting`, which has not run yet
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert slots.busy == 0  # not leaked


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        AsrSlots(0)
