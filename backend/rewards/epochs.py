"""Reward epochs: cumulative Merkle roots of what each contributor has earned, posted on chain.

Each epoch's leaves are ``(contributor, cumulative amount earned in the project)`` with the
amount = accepted answers x the project's reward per answer, plus its gold bonus for each
accepted gold answer (see ``earned``): only accepted answers are paid,
and an accepted answer stays accepted (quality decisions are frozen), so amounts only grow and
each root supersedes the previous one. ProjectEscrow pays ``cumulative - already claimed``.

The state machine, as crash-safe as anchoring (backend/provenance/service.py):
  accepted answers --build--> RewardEpoch(built): the tree's dump is put in storage, then one
      DB transaction records the epoch and its entries; the (project, epoch) unique key makes
      a racing builder's commit fail. A crash before the commit leaves nothing (at most an
      unreferenced blob); after it, a built epoch, which is posted before any newer one is
      built.
  built --post--> postRoot. Before sending, the chain is asked for the project's epoch: an
      epoch whose transaction went out before a crash is recognised and only mirrored; the
      contract takes epoch N only right after N-1, so no epoch can be posted twice or skipped.
  --> RewardEpoch(posted) with the transaction hash and block.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.core.errors import ChainRevert, ChainUnavailable, NotFound
from backend.core.failpoints import failpoint
from backend.core.time import utcnow
from backend.projects.models import Item, Project
from backend.provenance.merkle import StandardMerkleTree
from backend.quality.models import AnswerStatus
from backend.rewards.escrow import escrow_contract, followed_escrow
from backend.rewards.models import EpochStatus, EscrowProject, RewardEntry, RewardEpoch
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

LEAF_ENCODING = ("address", "uint256")


def reward_tree(earnings: Mapping[str, int]) -> StandardMerkleTree:
    """The standard-v1 tree of ``(account, cumulative amount)``; values sorted by account so
    that the same earnings always give the same dump, byte for byte."""
    return StandardMerkleTree.of(
        [(account, amount) for account, amount in sorted(earnings.items())], LEAF_ENCODING
    )


@dataclass(frozen=True)
class Earned:
    """What accepted work in a project is worth: per contributor, and the answers it counts."""

    amounts: dict[str, int]  # contributor -> cumulative amount earned
    accepted_answers: int

    @property
    def total(self) -> int:
        return sum(self.amounts.values())


def earned(session: Session, project: Project, contributor: str | None = None) -> Earned:
    """The one rule for what is owed: each accepted answer earns the project's reward, and an
    accepted answer to a gold item (a correct one) earns its gold bonus on top."""
    query = (
        select(Answer.contributor, Item.is_gold, func.count())
        .join(Item, col(Item.id) == Answer.item_id)
        .where(Answer.project_id == project.id, Answer.status == AnswerStatus.accepted)
        .group_by(col(Answer.contributor), col(Item.is_gold))
    )
    if contributor is not None:
        query = query.where(Answer.contributor == contributor)
    reward, bonus = int(project.reward_per_answer), int(project.gold_bonus)
    amounts: dict[str, int] = {}
    answers = 0
    for account, is_gold, n in session.execute(query).all():
        amounts[account] = amounts.get(account, 0) + n * (reward + (bonus if is_gold else 0))
        answers += n
    return Earned(amounts, answers)


def latest_epoch(session: Session, project_id: int, *, posted: bool = False) -> RewardEpoch | None:
    """The project's newest epoch (or newest posted one) in the escrow the mirror follows."""
    query = select(RewardEpoch).where(
        RewardEpoch.project_id == project_id, RewardEpoch.escrow == followed_escrow(session)
    )
    if posted:
        query = query.where(RewardEpoch.status == EpochStatus.posted)
    return session.exec(query.order_by(col(RewardEpoch.epoch).desc())).first()


def posted_amounts(session: Session, project_id: int) -> dict[str, int]:
    """Each contributor's cumulative amount in the project's latest posted root."""
    posted = latest_epoch(session, project_id, posted=True)
    if posted is None:
        return {}
    rows = session.execute(
        select(RewardEntry.contributor, RewardEntry.cumulative).where(
            RewardEntry.epoch_id == posted.id
        )
    ).all()
    return {account: int(amount) for account, amount in rows}


def owed(session: Session, project: Project) -> Earned:
    """What the next root owes each contributor: what accepted work earned, and never less
    than a posted root already committed to them. Quality control may hold answers it had
    accepted (a contributor flagged later); what a posted root promised stays claimable on
    chain all the same, and a lower amount would make the contract refuse every later root."""
    work = earned(session, project)
    amounts = dict(work.amounts)
    for account, amount in posted_amounts(session, project.id).items():  # type: ignore[arg-type]
        amounts[account] = max(amounts.get(account, 0), amount)
    return Earned({a: n for a, n in amounts.items() if n}, work.accepted_answers)


def why_waiting(session: Session, project: Project, work: Earned | None = None) -> str | None:
    """Why accepted work of the project is not in an epoch yet, if it is not (else None).
    ``work``: the project's ``owed`` if the caller has it already (it reads every entry of the
    latest root)."""
    escrow = session.get(EscrowProject, project.id)
    if escrow is None:
        return "the project is not funded on chain yet"
    if escrow.closed:
        return "the project is closed on chain: no new epochs"
    last = latest_epoch(session, project.id)  # type: ignore[arg-type]
    if last is not None and last.status == EpochStatus.built:
        return f"epoch {last.epoch} is built and waits to be posted" + (
            f" ({last.error})" if last.error else ""
        )
    if last is not None and last.status == EpochStatus.conflict:
        return f"epoch {last.epoch} conflicts with the chain: {last.error}"
    total = (work or owed(session, project)).total
    budget = int(escrow.deposited) - int(escrow.withdrawn)
    if total > budget:
        return (
            f"accepted work is worth {total} but the escrow holds a budget of {budget}: "
            "the requester must deposit more"
        )
    return None


def build_epoch(*, session: Session, storage: BlobStorage, project_id: int) -> RewardEpoch | None:
    """Build the project's next epoch if it has newly accepted work and the budget for it."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id}")
    escrow = session.get(EscrowProject, project_id)
    if escrow is None or escrow.closed:
        return None
    last = latest_epoch(session, project_id)
    if last is not None and last.status != EpochStatus.posted:
        return None  # post (or resolve) it first: epochs go on chain in order
    address = followed_escrow(session)
    work = owed(session, project)
    earnings, total = work.amounts, work.total
    if address is None or total == 0 or (last is not None and int(last.total) == total):
        return None  # nothing new: amounts never drop below the last root, so equal totals
        # mean equal leaves
    if total > int(escrow.deposited) - int(escrow.withdrawn):
        return None  # the contract would refuse the root; why_waiting tells the requester

    tree = reward_tree(earnings)
    # Content-addressed by SHA-256, so the storage digest is also the posted treeHash.
    digest = storage.put(tree.dump_json())
    epoch = RewardEpoch(
        escrow=address,
        project_id=project_id,
        epoch=max(last.epoch if last else 0, escrow.epoch) + 1,
        root=tree.root,
        total=str(total),
        contributor_count=len(earnings),
        accepted_answers=work.accepted_answers,
        tree_digest=digest,
        created_at=utcnow(),
    )
    session.add(epoch)
    session.flush()
    entries = [
        {
            "epoch_id": epoch.id,
            "contributor": account,
            "cumulative": str(amount),
            "value_index": index,
        }
        for index, (account, amount) in enumerate(tree.values)
    ]
    session.execute(insert(RewardEntry), entries)  # one executemany: 100k rows in seconds
    failpoint("rewards.before_build_commit")
    session.commit()
    session.refresh(epoch)
    failpoint("rewards.after_build")
    return epoch


def _posted_log(chain: ChainClient, project_id: int, epoch: int) -> Any | None:
    escrow = escrow_contract(chain)
    from_block = int(chain.deployments.contracts["ProjectEscrow"].get("blockNumber", 0))
    logs = chain.get_logs(
        escrow.events.RootPosted,
        from_block=from_block,
        argument_filters={"projectId": project_id, "epoch": epoch},
    )
    return logs[0] if logs else None


def _mark_posted(epoch: RewardEpoch, log: Any) -> None:
    epoch.status = EpochStatus.posted
    epoch.tx_hash = "0x" + bytes(log["transactionHash"]).hex()
    epoch.block_number = int(log["blockNumber"])
    epoch.posted_at, epoch.error = utcnow(), None


def post_epoch(*, session: Session, chain: ChainClient, epoch_id: int) -> str:
    """Put a built epoch's root on chain; safe to repeat, and after a crash at any point."""
    epoch = session.get(RewardEpoch, epoch_id)
    if epoch is None:
        raise NotFound(f"no reward epoch with id {epoch_id}")
    if epoch.status != EpochStatus.built:
        return epoch.status
    epoch.attempts += 1
    session.add(epoch)
    session.commit()
    escrow = escrow_contract(chain)
    if escrow.address != epoch.escrow:
        epoch.status = EpochStatus.conflict
        epoch.error = f"built for escrow {epoch.escrow}; the deployment is now {escrow.address}"
        session.add(epoch)
        session.commit()
        return epoch.status
    try:
        on_chain = chain.call(escrow.functions.project(epoch.project_id))
        chain_epoch = int(on_chain[7])
        if chain_epoch >= epoch.epoch:
            log = _posted_log(chain, epoch.project_id, epoch.epoch)
            if log is None:
                raise ChainUnavailable(f"epoch {epoch.epoch} is on chain but its log is not yet")
            root = "0x" + bytes(log["args"]["root"]).hex()
            if root == epoch.root:
                _mark_posted(epoch, log)
            else:
                epoch.status = EpochStatus.conflict
                epoch.error = f"chain holds root {root} for epoch {epoch.epoch}, not {epoch.root}"
        else:
            try:
                chain.transact(
                    escrow.functions.postRoot(
                        epoch.project_id,
                        epoch.epoch,
                        bytes.fromhex(epoch.root[2:]),
                        int(epoch.total),
                        bytes.fromhex(epoch.tree_digest),
                    )
                )
            except ChainRevert as exc:
                expected = int(exc.error_args.get("expected", 0))
                if exc.error_name == "ProjectEscrowNonConsecutiveEpoch" and expected > epoch.epoch:
                    session.rollback()  # posted meanwhile (another worker): mirror it
                    return post_epoch(session=session, chain=chain, epoch_id=epoch_id)
                if exc.error_name == "ProjectEscrowNonConsecutiveEpoch":
                    epoch.status = EpochStatus.conflict  # the escrow is behind the database
                    epoch.error = exc.detail[:1000]
                    session.add(epoch)
                    session.commit()
                    return epoch.status
                # Refused for good reason (over budget, project closed): stays built, says why.
                epoch.error = exc.detail[:1000]
                session.add(epoch)
                session.commit()
                return epoch.status
            failpoint("rewards.after_send")
            log = _posted_log(chain, epoch.project_id, epoch.epoch)
            assert log is not None, "postRoot mined without its RootPosted event"
            _mark_posted(epoch, log)
    except ChainUnavailable as exc:
        epoch.error = exc.detail
        session.add(epoch)
        session.commit()
        raise
    session.add(epoch)
    session.commit()
    return epoch.status


def post_pending(*, session: Session, chain: ChainClient, storage: BlobStorage) -> dict[str, int]:
    """Post every built epoch, then build (and post) the next epoch of every funded project."""
    posted = built = 0
    waiting = session.exec(
        select(RewardEpoch.id)
        .where(RewardEpoch.status == EpochStatus.built)
        .order_by(col(RewardEpoch.id))
    ).all()
    for epoch_id in waiting:
        assert epoch_id is not None
        posted += post_epoch(session=session, chain=chain, epoch_id=epoch_id) == EpochStatus.posted
    funded = session.exec(
        select(EscrowProject.project_id).where(col(EscrowProject.closed).is_(False))
    ).all()
    for project_id in funded:
        epoch = build_epoch(session=session, storage=storage, project_id=project_id)
        if epoch is not None:
            built += 1
            status = post_epoch(session=session, chain=chain, epoch_id=epoch.id)  # type: ignore[arg-type]
            posted += status == EpochStatus.posted
    return {"built": built, "posted": posted}
