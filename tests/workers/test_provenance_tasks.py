"""Anchoring through a real worker process, killed at each step of the state machine."""

import pytest
from sqlmodel import Session, select

from backend.core.db import get_engine
from backend.provenance.models import Batch
from backend.tasks.models import Answer
from tests.provenance.test_service import _answers
from tests.tcp_proxy import TcpProxy
from tests.workers.conftest import poll

FAST = {"PROVENANT_ANCHOR_INTERVAL_S": "0.3", "PROVENANT_ANCHOR_WINDOW_S": "0"}


def _state() -> tuple[list[Batch], list[Answer]]:
    with Session(get_engine()) as s:
        return list(s.exec(select(Batch).order_by(Batch.id))), list(s.exec(select(Answer)))


def _anchored_events(chain, batch_id: int) -> int:
    registry = chain.contract("ProvenanceRegistry")
    return len(
        registry.events.BatchAnchored.get_logs(from_block=0, argument_filters={"batchId": batch_id})
    )


def test_worker_anchors_pending_answers(session, chain, worker):
    _answers(session, 4)
    with worker(beat=True, **FAST):
        poll(
            lambda: (b := _state()[0]) and all(x.status == "anchored" for x in b),
            timeout=30,
            what="the batch to be anchored",
        )
    batches, answers = _state()
    assert sum(b.leaf_count for b in batches) == 4
    assert all(a.batch_id is not None for a in answers)


@pytest.mark.parametrize(
    "failpoint", ["anchor.before_build_commit", "anchor.after_build", "anchor.after_send"]
)
def test_killed_worker_neither_loses_nor_double_anchors(session, chain, worker, failpoint):
    _answers(session, 3)
    with worker(beat=True, PROVENANT_FAILPOINTS=failpoint, **FAST) as proc:
        assert proc.wait(timeout=30) == 86  # it died at the failpoint, as a kill would leave it
    batches, answers = _state()
    if failpoint == "anchor.before_build_commit":
        assert batches == [] and all(a.batch_id is None for a in answers)
    else:
        assert [b.status for b in batches] == ["built"]
    with worker(beat=True, **FAST):
        poll(
            lambda: (b := _state()[0]) and all(x.status == "anchored" for x in b),
            timeout=30,
            what="recovery to anchor the batch",
        )
    batches, answers = _state()
    assert len(batches) == 1 and batches[0].leaf_count == 3
    assert {a.batch_id for a in answers} == {batches[0].id}
    assert _anchored_events(chain, batches[0].id) == 1


def test_answers_keep_flowing_while_the_node_is_down(session, chain, worker, hardhat_node):
    proxy = TcpProxy(int(hardhat_node.rsplit(":", 1)[1]))
    _answers(session, 2)
    with worker(beat=True, PROVENANT_RPC_URL=proxy.url, **FAST):
        poll(lambda: _state()[0], timeout=30, what="a batch built while the chain is down")
        _answers(session, 2)  # submissions are accepted meanwhile
        # Batched too, in one batch or two: a run may cut one between the two answers.
        poll(
            lambda: all(a.batch_id is not None for a in _state()[1]),
            timeout=30,
            what="the new answers to be batched",
        )
        batches = _state()[0]
        assert len(batches) >= 2 and all(b.status == "built" for b in batches)
        proxy.up()
        try:
            poll(
                lambda: all(b.status == "anchored" for b in _state()[0]),
                timeout=60,
                what="every batch anchored after the outage",
            )
        finally:
            proxy.down()
    for b in _state()[0]:
        assert _anchored_events(chain, b.id) == 1
