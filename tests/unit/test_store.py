"""The store through its API: a real TinyDB backend on tmp_path, a fake only of our own seam.

What a user of `Store` relies on: staged writes are checked against the latest state but
reads show only what is durable; resourceVersions only grow, across restarts and for
volatile (memory-only) resources too; many concurrent writes share a commit; watches
replay, expire, filter and end as the apiserver's do; a failing disk stops the writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from bramble.kube.errors import Expired, ServiceUnavailable
from bramble.master.store import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    KeyExists,
    KeyNotFound,
    Store,
    TinyDBBackend,
    VersionConflict,
)
from bramble.master.store.backend import Loaded, Op
from bramble.master.store.entry import Entry
from bramble.master.store.watch import WatchHub

NS = "default"


def index(resource: str, obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    m = obj.get("metadata") or {}
    return dict(m.get("labels") or {}), {
        "metadata.name": m.get("name", ""),
        "spec.nodeName": (obj.get("spec") or {}).get("nodeName", ""),
    }


def pod(name: str, namespace: str = NS, **labels: str) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                        "labels": labels}, "spec": {}}


@asynccontextmanager
async def opened(path: Path, **kwargs: Any) -> AsyncIterator[Store]:
    store = Store(TinyDBBackend(path, fsync=False), index, **kwargs)
    await store.open()
    store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


# -- create / update / delete --------------------------------------------------------


async def test_create_get_list_and_entry_fields(db: Path) -> None:
    async with opened(db) as store:
        entry = await store.create("pods", NS, "web", pod("web", app="web"))
        assert (entry.resource, entry.namespace, entry.name) == ("pods", NS, "web")
        assert entry.labels == {"app": "web"}
        assert entry.fields["metadata.name"] == "web"
        assert entry.obj()["metadata"]["resourceVersion"] == str(entry.rv)
        assert store.get("pods", NS, "web") == entry
        assert store.rv == entry.rv
        assert store.count("pods") == 1


async def test_list_is_sorted_and_filtered_by_namespace(db: Path) -> None:
    async with opened(db) as store:
        for ns, name in [("b", "x"), ("a", "z"), ("a", "y"), ("c", "a")]:
            await store.create("pods", ns, name, pod(name, ns))
        assert [(e.namespace, e.name) for e in store.list("pods")] == [
            ("a", "y"), ("a", "z"), ("b", "x"), ("c", "a")]
        assert [e.name for e in store.list("pods", "a")] == ["y", "z"]
        assert store.list("pods", "nope") == []
        assert store.list("services") == []


async def test_cluster_scoped_objects_use_an_empty_namespace(db: Path) -> None:
    async with opened(db) as store:
        await store.create("nodes", "", "pi1", {"metadata": {"name": "pi1"}})
    async with opened(db) as store:
        entry = store.get("nodes", "", "pi1")
        assert entry is not None and entry.namespace == ""


@pytest.mark.parametrize(("setup", "write", "error"), [
    # (objects created first, the write to try, what it raises)
    (["web"], lambda s: s.create("pods", NS, "web", pod("web")), KeyExists),
    ([], lambda s: s.update("pods", NS, "web", pod("web")), KeyNotFound),
    ([], lambda s: s.delete("pods", NS, "web"), KeyNotFound),
    (["web"], lambda s: s.update("pods", NS, "web", pod("web"), expect_rv=999), VersionConflict),
    (["web"], lambda s: s.delete("pods", NS, "web", expect_rv=999), VersionConflict),
    # Same name, another namespace or resource: a different key.
    (["web"], lambda s: s.update("pods", "other", "web", pod("web")), KeyNotFound),
    (["web"], lambda s: s.delete("services", NS, "web"), KeyNotFound),
])
async def test_write_preconditions(db: Path, setup: list[str],
                                   write: Callable[[Store], Any], error: type) -> None:
    async with opened(db) as store:
        for name in setup:
            await store.create("pods", NS, name, pod(name))
        before = store.rv
        with pytest.raises(error):
            write(store)
        # A refused write hands out no resourceVersion and stages nothing.
        assert store.rv == before
        nxt = await store.create("pods", NS, "probe", pod("probe"))
        assert nxt.rv == before + 1


async def test_version_conflict_reports_the_current_rv(db: Path) -> None:
    async with opened(db) as store:
        entry = await store.create("pods", NS, "web", pod("web"))
        with pytest.raises(VersionConflict) as err:
            store.update("pods", NS, "web", pod("web"), expect_rv=entry.rv - 1)
        assert err.value.current == entry.rv


async def test_update_and_delete_with_the_right_rv(db: Path) -> None:
    async with opened(db) as store:
        created = await store.create("pods", NS, "web", pod("web", v="1"))
        updated = await store.update("pods", NS, "web", pod("web", v="2"), expect_rv=created.rv)
        assert updated.labels == {"v": "2"}
        assert store.get("pods", NS, "web") == updated
        deleted = await store.delete("pods", NS, "web", expect_rv=updated.rv)
        assert deleted.rv > updated.rv
        assert deleted.obj()["metadata"]["labels"] == {"v": "2"}
        assert store.get("pods", NS, "web") is None
        assert store.count("pods") == 0


async def test_recreate_after_delete(db: Path) -> None:
    async with opened(db) as store:
        await store.create("pods", NS, "web", pod("web", v="1"))
        await store.delete("pods", NS, "web")
        again = await store.create("pods", NS, "web", pod("web", v="2"))
        assert store.get("pods", NS, "web") == again
    async with opened(db) as store:
        entry = store.get("pods", NS, "web")
        assert entry is not None and entry.labels == {"v": "2"}


# -- committed reads vs. staged writes ------------------------------------------------


async def test_reads_see_committed_state_latest_sees_staged(db: Path) -> None:
    async with opened(db) as store:
        before = store.rv
        pending = store.create("pods", NS, "web", pod("web"))
        # Staged, not durable: invisible to reads, visible as the base for the next write.
        assert store.get("pods", NS, "web") is None
        assert store.list("pods") == []
        assert store.rv == before
        staged = store.latest("pods", NS, "web")
        assert staged is not None and staged.rv == before + 1
        entry = await pending
        assert store.get("pods", NS, "web") == entry == staged
        assert store.rv == entry.rv


async def test_staged_writes_chain_without_awaiting(db: Path) -> None:
    """Read-modify-write on latest(): create, update and delete staged back to back."""
    async with opened(db) as store:
        created = store.create("pods", NS, "web", pod("web", v="1"))
        with pytest.raises(KeyExists):
            store.create("pods", NS, "web", pod("web"))
        rv1 = store.latest("pods", NS, "web").rv
        updated = store.update("pods", NS, "web", pod("web", v="2"), expect_rv=rv1)
        deleted = store.delete("pods", NS, "web")
        assert store.latest("pods", NS, "web") is None
        with pytest.raises(KeyNotFound):
            store.update("pods", NS, "web", pod("web"))
        recreated = store.create("pods", NS, "web", pod("web", v="3"))
        results = await asyncio.gather(created, updated, deleted, recreated)
        assert [r.rv for r in results] == sorted(r.rv for r in results)
        assert len({r.rv for r in results}) == 4
        final = store.get("pods", NS, "web")
        assert final is not None and final.labels == {"v": "3"}
        assert store.latest("pods", NS, "web") == final


async def test_delete_then_recreate_while_a_commit_is_in_flight(db: Path) -> None:
    async with opened(db) as store:
        await store.create("pods", NS, "web", pod("web", v="1"))
        deleting = store.delete("pods", NS, "web")
        await asyncio.sleep(0)  # let the committer take the deletion
        recreated = store.create("pods", NS, "web", pod("web", v="2"))
        await deleting
        # The deletion is durable, the re-creation is still staged.
        assert store.latest("pods", NS, "web") is not None
        await recreated
        entry = store.get("pods", NS, "web")
        assert entry is not None and entry.labels == {"v": "2"}


async def test_group_commit_shares_commits(db: Path) -> None:
    commits: list[int] = []
    async with opened(db, on_commit=lambda _s, _b, n: commits.append(n)) as store:
        first = store.create("pods", NS, "p0", pod("p0"))
        await asyncio.sleep(0)  # the first commit is now (probably) in flight
        rest = [store.create("pods", NS, f"p{i}", pod(f"p{i}")) for i in range(1, 40)]
        entries = await asyncio.gather(first, *rest)
    assert sum(commits) == 40
    assert len(commits) < 40
    assert [e.rv for e in entries] == sorted(e.rv for e in entries)


async def test_resource_versions_strictly_increase_and_survive_reopen(db: Path) -> None:
    rvs: list[int] = []
    async with opened(db) as store:
        for i in range(5):
            rvs.append((await store.create("pods", NS, f"p{i}", pod(f"p{i}"))).rv)
        rvs.append((await store.update("pods", NS, "p0", pod("p0", v="2"))).rv)
        rvs.append((await store.delete("pods", NS, "p4")).rv)
        last = store.rv
    async with opened(db) as store:
        # The deletion's rv is the highest: the ceiling on disk remembers it.
        assert store.rv == last
        assert [e.name for e in store.list("pods")] == ["p0", "p1", "p2", "p3"]
        assert store.get("pods", NS, "p0").labels == {"v": "2"}
        rvs.append((await store.create("pods", NS, "p9", pod("p9"))).rv)
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


async def test_loaded_objects_keep_their_rv_and_bytes(db: Path) -> None:
    async with opened(db) as store:
        written = await store.create("pods", NS, "web", pod("web", app="web"))
    async with opened(db) as store:
        loaded = store.get("pods", NS, "web")
        assert loaded is not None
        assert (loaded.rv, loaded.labels) == (written.rv, {"app": "web"})
        assert orjson.loads(loaded.raw) == orjson.loads(written.raw)


# -- volatile resources ---------------------------------------------------------------


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_volatile_resources_are_not_written_to_disk(db: Path) -> None:
    volatile = frozenset({"leases"})
    commits: list[int] = []
    async with opened(db, volatile=volatile,
                      on_commit=lambda _s, _b, n: commits.append(n)) as store:
        await store.create("pods", NS, "web", pod("web"))
        size = await asyncio.to_thread(_size, db)
        for i in range(5):
            await store.create("leases", NS, f"heartbeat-marker-{i}", pod(f"x{i}"))
        for _ in range(20):
            await store.update("leases", NS, "heartbeat-marker-0", pod("x0"))
        assert store.count("leases") == 5  # served from memory meanwhile
        # One small record reserving resourceVersions, then nothing per heartbeat.
        assert commits == [1, 0]
        assert await asyncio.to_thread(_size, db) - size < 200
        last_lease_rv = store.get("leases", NS, "heartbeat-marker-0").rv
    assert b"heartbeat-marker" not in await asyncio.to_thread(db.read_bytes)
    async with opened(db, volatile=volatile) as store:
        assert store.count("leases") == 0
        assert store.get("pods", NS, "web") is not None
        # The reservation ceiling: a heartbeat after a restart never reuses an rv.
        again = await store.create("leases", NS, "heartbeat-marker-0", pod("x0"))
        assert again.rv > last_lease_rv
        pod_after = await store.create("pods", NS, "db", pod("db"))
        assert pod_after.rv > again.rv


async def test_volatile_and_durable_writes_interleaved_stay_monotonic(db: Path) -> None:
    volatile = frozenset({"leases"})
    rvs: list[int] = []
    for _ in range(3):  # three master restarts
        async with opened(db, volatile=volatile) as store:
            for i in range(3):
                rvs.append((await store.create("leases", NS, f"l{i}-{len(rvs)}",
                                               pod("l"))).rv)
                rvs.append((await store.create("pods", NS, f"p{len(rvs)}", pod("p"))).rv)
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


# -- close -----------------------------------------------------------------------------


async def test_close_flushes_staged_writes_and_is_idempotent(db: Path) -> None:
    store = Store(TinyDBBackend(db, fsync=False), index)
    await store.open()
    store.start()
    pending = [store.create("pods", NS, f"p{i}", pod(f"p{i}")) for i in range(10)]
    await store.close()
    assert all(p.done() and p.exception() is None for p in pending)
    await store.close()
    async with opened(db) as again:
        assert again.count("pods") == 10


async def test_close_ends_open_watches(db: Path) -> None:
    async with opened(db) as store:
        watcher = store.watch("pods", None, None, None)
    assert watcher.closed_reason == "store closed"
    assert await watcher.next_batch(None) == []


# -- watch through the store ------------------------------------------------------------


async def test_watch_from_now_sees_later_changes_in_order(db: Path) -> None:
    async with opened(db) as store:
        await store.create("pods", NS, "before", pod("before"))
        watcher = store.watch("pods", None, None, None)
        a = await store.create("pods", NS, "a", pod("a"))
        await store.update("pods", NS, "a", pod("a", v="2"))
        await store.create("services", NS, "svc", pod("svc"))  # another resource
        await store.delete("pods", NS, "a")
        batch = await watcher.next_batch(0)
        assert [(kind, c.entry.name) for kind, c in batch] == [
            (ADDED, "a"), (MODIFIED, "a"), (DELETED, "a")]
        assert batch[0][1].entry.rv == a.rv
        assert [c.entry.rv for _, c in batch] == sorted(c.entry.rv for _, c in batch)


async def test_watch_replays_from_an_rv_in_history(db: Path) -> None:
    async with opened(db) as store:
        a = await store.create("pods", NS, "a", pod("a"))
        await store.create("pods", NS, "b", pod("b"))
        await store.update("pods", NS, "a", pod("a", v="2"))
        watcher = store.watch("pods", None, None, a.rv)
        assert [(k, c.entry.name) for k, c in await watcher.next_batch(0)] == [
            (ADDED, "b"), (MODIFIED, "a")]
        # Starting at the current rv replays nothing.
        assert await store.watch("pods", None, None, store.rv).next_batch(0) == []


async def test_watch_below_the_history_floor_is_expired(db: Path) -> None:
    async with opened(db, history=3) as store:
        rvs = [(await store.create("pods", NS, f"p{i}", pod(f"p{i}"))).rv for i in range(6)]
        # The history holds the last 3 changes: a watch from rvs[2] can be served.
        watcher = store.watch("pods", None, None, rvs[2])
        assert [c.entry.rv for _, c in await watcher.next_batch(0)] == rvs[3:]
        with pytest.raises(Expired) as err:
            store.watch("pods", None, None, rvs[1])
        assert err.value.code == 410
        assert "too old resource version" in err.value.message


async def test_watch_from_before_a_restart_is_expired(db: Path) -> None:
    async with opened(db) as store:
        first = await store.create("pods", NS, "a", pod("a"))
        await store.create("pods", NS, "b", pod("b"))
    async with opened(db) as store:
        with pytest.raises(Expired):
            store.watch("pods", None, None, first.rv)
        watcher = store.watch("pods", None, None, store.rv)
        await store.create("pods", NS, "c", pod("c"))
        assert [c.entry.name for _, c in await watcher.next_batch(0)] == ["c"]


async def test_watch_filters_by_namespace(db: Path) -> None:
    async with opened(db) as store:
        watcher = store.watch("pods", "a", None, None)
        await store.create("pods", "a", "x", pod("x", "a"))
        await store.create("pods", "b", "x", pod("x", "b"))
        await store.create("pods", "a", "y", pod("y", "a"))
        assert [(c.entry.namespace, c.entry.name) for _, c in await watcher.next_batch(0)] == [
            ("a", "x"), ("a", "y")]


def _app_is_web(labels: dict[str, str], fields: dict[str, str]) -> bool:
    return labels.get("app") == "web"


async def test_selector_transitions(db: Path) -> None:
    """Leaving the selector is DELETED, entering is ADDED, outside is silent."""
    async with opened(db) as store:
        watcher = store.watch("pods", None, _app_is_web, None)
        steps: list[tuple[Callable[[], Any], str | None]] = [
            (lambda: store.create("pods", NS, "p", pod("p", app="web")), ADDED),
            (lambda: store.update("pods", NS, "p", pod("p", app="web", v="2")), MODIFIED),
            (lambda: store.update("pods", NS, "p", pod("p", app="db")), DELETED),
            (lambda: store.update("pods", NS, "p", pod("p", app="db", v="2")), None),
            (lambda: store.update("pods", NS, "p", pod("p", app="web")), ADDED),
            (lambda: store.delete("pods", NS, "p"), DELETED),
            (lambda: store.create("pods", NS, "q", pod("q", app="db")), None),
            (lambda: store.delete("pods", NS, "q"), None),
        ]
        for write, expected in steps:
            await write()
            batch = await watcher.next_batch(0)
            assert [kind for kind, _ in batch] == ([expected] if expected else [])


async def test_selector_transition_to_deleted_carries_the_new_object(db: Path) -> None:
    async with opened(db) as store:
        await store.create("pods", NS, "p", pod("p", app="web"))
        watcher = store.watch("pods", None, _app_is_web, None)
        await store.update("pods", NS, "p", pod("p", app="db"))
        [(kind, change)] = await watcher.next_batch(0)
        assert kind == DELETED and change.type == MODIFIED
        assert change.entry.labels == {"app": "db"} and change.prev.labels == {"app": "web"}


async def test_field_selector_transitions(db: Path) -> None:
    def on_pi1(labels: dict[str, str], fields: dict[str, str]) -> bool:
        return fields.get("spec.nodeName") == "pi1"

    async with opened(db) as store:
        await store.create("pods", NS, "p", pod("p"))
        watcher = store.watch("pods", None, on_pi1, None)
        bound = pod("p")
        bound["spec"]["nodeName"] = "pi1"
        await store.update("pods", NS, "p", bound)
        assert [k for k, _ in await watcher.next_batch(0)] == [ADDED]


@pytest.mark.parametrize("final", [None, {"metadata": {"name": "web", "namespace": NS,
                                                        "labels": {"gone": "yes"}}}])
async def test_deleted_event_carries_the_deleted_object(db: Path, final: Any) -> None:
    async with opened(db) as store:
        await store.create("pods", NS, "web", pod("web", app="web"))
        watcher = store.watch("pods", None, None, None)
        entry = await store.delete("pods", NS, "web", final=final)
        [(kind, change)] = await watcher.next_batch(0)
        assert kind == DELETED
        obj = orjson.loads(change.entry.raw)
        assert obj["metadata"]["name"] == "web"
        expected_labels = {"app": "web"} if final is None else {"gone": "yes"}
        assert obj["metadata"]["labels"] == expected_labels
        assert change.entry.labels == expected_labels
        # The deletion has its own resourceVersion, shown in the object too.
        assert obj["metadata"]["resourceVersion"] == str(change.entry.rv) == str(entry.rv)


# -- the watch hub directly -------------------------------------------------------------


def change(rv: int, name: str = "p", kind: str = ADDED, resource: str = "pods") -> Change:
    return Change(kind, Entry(resource, NS, name, rv, b"{}", {}, {}))


async def test_slow_watcher_is_closed_when_its_queue_is_full() -> None:
    hub = WatchHub(history=100, queue_limit=2)
    slow = hub.subscribe("pods", None, None, None)
    fast = hub.subscribe("pods", None, None, None)
    hub.publish(change(1))
    hub.publish(change(2))
    assert [c.entry.rv for _, c in await fast.next_batch(0)] == [1, 2]
    hub.publish(change(3))
    assert slow.closed_reason == "watcher fell too far behind"
    assert hub.watcher_count == 1
    # It still gets what it had queued, then nothing more.
    assert [c.entry.rv for _, c in await slow.next_batch(0)] == [1, 2]
    hub.publish(change(4))
    assert await slow.next_batch(0) == []
    assert [c.entry.rv for _, c in await fast.next_batch(0)] == [3, 4]


async def test_watcher_overflowing_during_replay_is_not_registered() -> None:
    hub = WatchHub(history=100, queue_limit=2)
    for rv in range(1, 6):
        hub.publish(change(rv))
    watcher = hub.subscribe("pods", None, None, 0)
    assert watcher.closed_reason is not None
    assert hub.watcher_count == 0


async def test_history_floor_moves_as_the_ring_fills() -> None:
    hub = WatchHub(history=3)
    for rv in range(1, 6):
        hub.publish(change(rv))
    assert hub.floor == 2
    assert [c.entry.rv for _, c in await hub.subscribe("pods", None, None, 2).next_batch(0)] == [
        3, 4, 5]
    with pytest.raises(Expired):
        hub.subscribe("pods", None, None, 1)


async def test_closed_watcher_returns_at_once_and_unsubscribes() -> None:
    hub = WatchHub()
    watcher = hub.subscribe("pods", None, None, None)
    assert hub.watcher_count == 1
    assert await watcher.next_batch(0) == []  # nothing yet, no waiting
    watcher.close("bye")
    watcher.close("again")  # idempotent: the first reason stays
    assert (watcher.closed_reason, hub.watcher_count) == ("bye", 0)
    assert await watcher.next_batch(None) == []


async def test_next_batch_wakes_on_a_publish() -> None:
    hub = WatchHub()
    watcher = hub.subscribe("pods", None, None, None)
    waiting = asyncio.create_task(watcher.next_batch(None), name="test-watch-wait")
    await asyncio.sleep(0)
    hub.publish(change(1))
    assert [c.entry.rv for _, c in await waiting] == [1]


# -- a failing backend (a fake of our own seam) -------------------------------------------


class FailingBackend:
    """Opens empty; every commit fails like a full SD card, once released."""

    bytes_written = 0

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.closed = False

    async def open(self) -> Loaded:
        return Loaded(objects=[], meta={"rv": 7})

    async def commit(self, ops: list[Op], meta: dict[str, Any]) -> int:
        self.entered.set()
        await self.release.wait()
        raise OSError(28, "No space left on device")

    async def close(self) -> None:
        self.closed = True


async def test_backend_failure_fails_pending_writes_and_refuses_later_ones() -> None:
    backend = FailingBackend()
    store = Store(backend, index)
    await store.open()
    task = store.start()
    try:
        in_flight = store.create("pods", NS, "a", pod("a"))
        await backend.entered.wait()
        queued = store.create("pods", NS, "b", pod("b"))  # waits for the next commit
        backend.release.set()
        results = await asyncio.gather(in_flight, queued, return_exceptions=True)
        assert [type(r) for r in results] == [ServiceUnavailable, ServiceUnavailable]
        assert all(r.code == 503 and "No space left" in r.message for r in results)
        # The committer dies with the disk's error, so the supervisor stops the master.
        await asyncio.wait([task])
        assert isinstance(task.exception(), OSError)
        with pytest.raises(ServiceUnavailable):
            store.create("pods", NS, "c", pod("c"))
        # Nothing staged leaks into reads or into the base for writes.
        assert store.get("pods", NS, "a") is None
        assert store.latest("pods", NS, "a") is None
        assert store.rv == 7
    finally:
        await store.close()
    assert backend.closed
