"""How the leader packs due sources into `poll_batch` tasks (monitor/store/distributed.py)."""

from __future__ import annotations

from monitor.store.distributed import pack_hosts


def test_hosts_with_one_feed_each_share_a_batch_so_a_worker_has_work_for_its_concurrency() -> None:
    by_host = {f"h{i}": [f"s{i}"] for i in range(120)}
    packed = pack_hosts(by_host, 50)
    assert [len(ids) for _, ids in packed] == [50, 50, 20]
    assert [s for _, ids in packed for s in ids] == [f"s{i}" for i in range(120)]  # due order kept


def test_a_hosts_sources_are_never_split_over_two_batches() -> None:
    by_host = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1", "c2", "c3", "c4"]}
    packed = pack_hosts(by_host, 5)
    assert packed == [(["a", "b"], ("a1", "a2", "a3", "b1", "b2")), (["c"], ("c1", "c2", "c3", "c4"))]
    for hosts, ids in packed:
        assert {s[0] for s in ids} == set(hosts)


def test_a_full_host_group_is_a_batch_of_its_own() -> None:
    by_host = {"small": ["x"], "big": [f"b{i}" for i in range(50)], "other": ["y"]}
    assert [hosts for hosts, _ in pack_hosts(by_host, 50)] == [["small"], ["big"], ["other"]]


def test_nothing_due_is_no_batch() -> None:
    assert pack_hosts({}, 50) == []
