"""Builders for the reward tests: projects with decided work, funding, epochs and claims.

Work is stored through the real task service (a lease, then an answer) and then decided the
way quality control would leave it: the answers get a status, their items are finalised and
the project's aggregation watermark moves past them, so a worker's quality run leaves them be.
"""

import itertools
import json
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient, TxResult
from backend.consent.models import Consent
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.deps import get_storage
from backend.projects import service as projects
from backend.projects.models import Item, Project, ProjectCreate
from backend.quality.models import AnswerStatus
from backend.rewards import epochs, service
from backend.rewards import escrow as mirror
from backend.rewards.models import EscrowProject, RewardEntry, RewardEpoch
from backend.tasks import service as tasks
from backend.tasks.models import Answer, AnswerSubmit
from tests.factories import give_eth, recorded_consent_row

REWARD = 10**16
TOKEN = "TestRewardToken"

_item_numbers = itertools.count()


def make_project(
    session: Session,
    owner: str,
    *,
    reward: int = REWARD,
    reward_token: str | None = None,
    **overrides: Any,
) -> Project:
    return projects.create_project(
        session=session,
        owner=owner,
        data=ProjectCreate(
            task_type="text_classification",
            title="Rewards",
            instructions="Label it",
            label_schema={"classes": ["a", "b"]},
            overlap=1,
            reward_per_answer=reward,
            reward_token=reward_token,
            **overrides,
        ),
    )


def work(
    session: Session,
    project_id: int,
    counts: dict[str, int],
    status: AnswerStatus | None = AnswerStatus.accepted,
    *,
    gold: bool = False,
) -> list[int]:
    """Each contributor answers ``n`` new items of the project; the answers get ``status``
    (None: left pending, for quality control to decide). With ``gold``, the new items are gold
    items (served once earlier items are taken, as they are after each call)."""
    project = session.get(Project, project_id)
    assert project is not None
    rows: list[dict[str, Any]] = [
        {"text": f"item {next(_item_numbers)}"} for _ in range(sum(counts.values()))
    ]
    if gold:
        rows = [{**row, "gold_answer": {"label": "a"}} for row in rows]
    projects.add_text_items(
        session=session,
        settings=get_settings(),
        project=project,
        data="\n".join(json.dumps(r) for r in rows).encode(),
        filename="items.jsonl",
        content_type=None,
    )
    ids = []
    for contributor, n in counts.items():
        if session.exec(select(Consent).where(Consent.contributor == contributor)).first() is None:
            recorded_consent_row(session, contributor)
        for _ in range(n):
            lease = tasks.next_task(session=session, project_id=project_id, contributor=contributor)
            stored, _ = tasks.submit_answer(
                session=session,
                task_id=lease.id,
                contributor=contributor,
                data=AnswerSubmit(answer={"label": "a"}),
            )
            ids.append(stored.id)
    if status is None:
        session.commit()
        return ids
    session.execute(update(Answer).where(col(Answer.id).in_(ids)).values(status=status))
    session.execute(update(Item).where(col(Item.project_id) == project_id).values(finalized=True))
    top = session.exec(select(func.max(Answer.id)).where(Answer.project_id == project_id)).one()
    session.execute(
        update(Project).where(col(Project.id) == project_id).values(aggregated_through=top)
    )
    session.commit()
    return ids


def deploy_token(chain: ChainClient, *, decimals: int = 18, name: str = "Other Token") -> str:
    """A TestRewardToken of the test's own, minted by the operator."""
    result = chain.deploy(TOKEN, name, "OTK", decimals, chain.operator.address)
    return str(chain.w3.eth.get_transaction_receipt(result.tx_hash)["contractAddress"])


def token_at(chain: ChainClient, address: str) -> Any:
    return chain.contract(TOKEN, address)


def balance(chain: ChainClient, token: str, account: str) -> int:
    return int(token_at(chain, token).functions.balanceOf(account).call())


def escrow_of(chain: ChainClient) -> Any:
    return mirror.escrow_contract(chain)


def fund(session: Session, chain: ChainClient, project_id: int, amount: int) -> str:
    """Register the project and deposit ``amount`` of its token from the operator (anyone may
    deposit); mirror it. Returns the token's address."""
    project = session.get(Project, project_id)
    assert project is not None
    row = service.ensure_registered(session=session, chain=chain, project=project)
    token = token_at(chain, row.token)
    escrow = escrow_of(chain)
    chain.transact(token.functions.mint(chain.operator.address, amount))
    chain.transact(token.functions.approve(escrow.address, amount))
    chain.transact(escrow.functions.deposit(project_id, row.token, amount))
    mirror.sync(session=session, chain=chain)
    return row.token


def send_from(
    chain: ChainClient, account: LocalAccount, contract: Any, fn: str, *args: Any
) -> TxResult:
    """``contract.fn(*args)`` signed and sent by ``account``'s own wallet."""
    give_eth(chain, account.address)
    return chain.send_as(
        account, to=contract.address, data=contract.encode_abi(fn, args=list(args))
    )


def run_epochs(session: Session, chain: ChainClient) -> dict[str, int]:
    """One pass of the reward worker, in this process: mirror, post and build, mirror."""
    mirror.sync(session=session, chain=chain)
    result = epochs.post_pending(session=session, chain=chain, storage=get_storage())
    mirror.sync(session=session, chain=chain)
    session.expire_all()
    return result


def epoch_rows(project_id: int) -> list[RewardEpoch]:
    with Session(get_engine()) as s:
        return list(
            s.exec(
                select(RewardEpoch)
                .where(RewardEpoch.project_id == project_id)
                .order_by(col(RewardEpoch.id))  # creation order, across escrow deployments
            )
        )


def entries_of(epoch_id: int) -> dict[str, int]:
    with Session(get_engine()) as s:
        rows = s.exec(select(RewardEntry).where(RewardEntry.epoch_id == epoch_id))
        return {r.contributor: int(r.cumulative) for r in rows}


def escrow_row(project_id: int) -> EscrowProject | None:
    with Session(get_engine()) as s:
        return s.get(EscrowProject, project_id)


def on_chain(chain: ChainClient, project_id: int) -> dict[str, Any]:
    """ProjectEscrow.project(id) as a dict."""
    p = escrow_of(chain).functions.project(project_id).call()
    names = ("requester", "token", "deposited", "committed", "paid", "withdrawn", "root")
    out: dict[str, Any] = dict(zip(names, p[:7], strict=True))
    out["root"] = "0x" + bytes(out["root"]).hex()
    out["epoch"], out["closed"] = int(p[7]), bool(p[8])
    return out


def root_posted_logs(chain: ChainClient, project_id: int) -> list[Any]:
    return list(
        escrow_of(chain).events.RootPosted.get_logs(
            from_block=0, argument_filters={"projectId": project_id}
        )
    )


def claim_data(chain: ChainClient, project_id: int, account: str, cumulative: int, proof) -> str:
    """The calldata of ``claim`` (what the API's prepared transaction holds)."""
    return escrow_of(chain).encode_abi(
        "claim",
        args=[
            project_id,
            account,
            cumulative,
            [bytes.fromhex(p.removeprefix("0x")) for p in proof],
        ],
    )
