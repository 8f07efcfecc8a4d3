"""The `provenant` command line."""

import sys

import click

from backend.audit.commands import verify
from backend.buyer.commands import datasets
from backend.core.config import get_settings


@click.group()
def main() -> None:
    """Provenant: crowdsourced data with on-chain provenance and compensation."""


@main.command()
def deploy() -> None:
    """Deploy the contracts to PROVENANT_RPC_URL (re-running deploys nothing new)."""
    from backend.chain.client import ChainClient
    from backend.chain.deploy import deploy_all

    client = ChainClient(get_settings())
    deploy_all(client, log=click.echo)
    click.echo(f"deployments file: {client.deployments.path}")


@main.group()
def escrow() -> None:
    """The database's mirror of ProjectEscrow (a cache of the chain)."""


@escrow.command()
@click.option("--replace", is_flag=True, help="Replace the mirror with the rebuilt state.")
def rebuild(replace: bool) -> None:
    """Rebuild escrow and claim state from the contract's events and compare it with the
    database; exits 1 if they differ (unless --replace, which makes them equal)."""
    from sqlmodel import Session

    from backend.chain.client import ChainClient
    from backend.core.db import get_engine
    from backend.rewards.escrow import rebuild as rebuild_mirror

    chain = ChainClient(get_settings())
    with Session(get_engine()) as session:
        problems = rebuild_mirror(session=session, chain=chain, replace=replace)
    for line in problems:
        click.echo(f"differs: {line}")
    if not problems:
        click.echo("the database matches the chain: every escrow and claim agrees")
    elif replace:
        click.echo(f"replaced the mirror with the chain's state ({len(problems)} differences)")
    else:
        sys.exit(1)


@main.group()
def marketplace() -> None:
    """The database's mirror of DatasetMarketplace (a cache of the chain)."""


@marketplace.command("rebuild")
@click.option("--replace", is_flag=True, help="Replace the mirror with the rebuilt state.")
def marketplace_rebuild(replace: bool) -> None:
    """Rebuild registrations, licences and royalty claims from the marketplace's events and
    compare them with the database; exits 1 if they differ (unless --replace)."""
    from sqlmodel import Session

    from backend.chain.client import ChainClient
    from backend.core.db import get_engine
    from backend.datasets.marketplace import rebuild as rebuild_mirror

    chain = ChainClient(get_settings())
    with Session(get_engine()) as session:
        problems = rebuild_mirror(session=session, chain=chain, replace=replace)
    for line in problems:
        click.echo(f"differs: {line}")
    if not problems:
        click.echo("the database matches the chain: every version, licence and claim agrees")
    elif replace:
        click.echo(f"replaced the mirror with the chain's state ({len(problems)} differences)")
    else:
        sys.exit(1)


@marketplace.command("pay-royalties")
@click.argument("version_id", type=click.IntRange(min=1))
@click.option("--batch", type=click.IntRange(1, 500), default=100, show_default=True)
def marketplace_pay_royalties(version_id: int, batch: int) -> None:
    """Relay every royalty a dataset version owes now, BATCH contributors per claimMany
    transaction (the operator pays the gas; tokens go to the contributors)."""
    from sqlmodel import Session

    from backend.chain.client import ChainClient
    from backend.core.db import get_engine
    from backend.datasets.marketplace import relay_all
    from backend.datasets.models import DatasetVersion

    chain = ChainClient(get_settings())
    with Session(get_engine()) as session:
        version = session.get(DatasetVersion, version_id)
        if version is None or version.status not in ("published", "withdrawn"):
            raise click.ClickException(f"no published dataset version {version_id}")
        sent = relay_all(session=session, chain=chain, version=version, batch=batch)
    for tx in sent:
        click.echo(f"claimMany {tx.tx_hash}: paid {tx.amount}")
    click.echo(f"{len(sent)} transaction(s)" if sent else "nothing is owed now")


@main.command()
def migrate() -> None:
    """Bring the database schema up to date with Alembic."""
    from backend.core.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    click.echo(f"migrated {settings.resolved_database_url}")


@main.command()
@click.option("--host", default=None, help="Bind address (default PROVENANT_API_HOST).")
@click.option("--port", default=None, type=int, help="Port (default PROVENANT_API_PORT).")
@click.option("--workers", default=1, show_default=True, help="API processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "backend.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
    )


@main.command()
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Also run the scheduler (relay sweep, anchoring, quality runs).",
)
def worker(beat: bool) -> None:
    """Run the Celery workers (chain work and quality runs, a queue each) on the configured
    broker, and its scheduler."""
    from backend.stack import start_worker, stop_process
    from workers.celery_app import create_queue_rows

    settings = get_settings()
    create_queue_rows()
    proc = start_worker(
        settings.state_dir / "logs" / "worker.log", beat=beat, state_dir=settings.state_dir
    )
    click.echo(f"worker started (pid {proc.pid}); logs in {settings.state_dir / 'logs'}")
    code = 0
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(proc)
    sys.exit(code)


@main.command()
def up() -> None:
    """Start the whole local system and stay in the foreground; Ctrl-C stops everything."""
    from backend.stack import Stack

    stack = Stack(get_settings(), log=click.echo)
    running = stack.running_supervisor()
    if running is not None:
        click.echo(f"Provenant is already running: API {running['api']}, chain {running['rpc']}")
        click.echo("Stop it with `make stop` (or `provenant down`).")
        return
    try:
        url = stack.start()
        click.echo(f"\nProvenant is up.\n  API:  {url}   (OpenAPI docs at {url}/docs)")
        settings = get_settings()
        if (settings.web_dist_dir / "index.html").is_file():
            click.echo(f"  web app: {url}/")
        else:
            click.echo(f"  web app: not built ({settings.web_dist_dir}); `make build` builds it")
        click.echo(f"  chain: {get_settings().rpc_url}\n  logs: {stack.logs_dir}")
        click.echo("Press Ctrl-C (or run `make stop`) to stop everything.")
        reason = stack.wait()
        click.echo(f"stopping ({reason})")
    except Exception as exc:
        click.echo(f"error: {exc}", err=True)
        stack.stop()
        sys.exit(1)
    stack.stop()


@main.command()
def down() -> None:
    """Stop a system started with `provenant up`."""
    from backend.stack import stop_running

    if stop_running(get_settings()):
        click.echo("stopped")
    else:
        click.echo("nothing is running")


main.add_command(datasets)
main.add_command(verify)

if __name__ == "__main__":
    main()
