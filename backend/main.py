"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from backend.audit.router import router as audit_router
from backend.auth.router import router as auth_router
from backend.consent.router import router as consent_router
from backend.contributions.router import router as contributions_router
from backend.core.asgi import InFlightLimit, RecycleConnections
from backend.core.bodies import BodyGuard
from backend.core.config import get_settings
from backend.core.errors import AppError, error_response, http_error_response, validation_error
from backend.core.process import freeze_startup_objects
from backend.datasets.router import router as datasets_router
from backend.projects.router import router as projects_router
from backend.provenance.router import router as provenance_router
from backend.quality.router import router as quality_router
from backend.rewards.router import router as rewards_router
from backend.tasks import pg_loop
from backend.tasks.fast_lane import LoopFastLane
from backend.tasks.router import router as tasks_router
from backend.web.router import mount_web_app
from backend.web.router import router as web_router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # Sync endpoints run in anyio's thread pool (40 threads by default); size it to match the
    # database pool (see backend/core/db.py).
    to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
    # The contributor's loop's connections on PostgreSQL (see backend/tasks/pg_loop.py).
    pool = await pg_loop.open_pool(settings) if pg_loop.enabled(settings) else None
    app.state.pg_loop_pool = pool
    freeze_startup_objects()
    try:
        yield
    finally:
        if pool is not None:
            await pg_loop.close_pool(pool)


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Provenant",
        description="Crowdsourced data marketplace with on-chain provenance and compensation.",
        version="0.1.0",
    )

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return http_error_response(exc.status_code, exc.detail, exc.headers)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    # Routes are matched in order: the contributor's loop (tasks) first, as most requests are.
    app.include_router(tasks_router)
    app.include_router(auth_router)
    app.include_router(consent_router)
    app.include_router(projects_router)
    app.include_router(provenance_router)
    app.include_router(quality_router)
    app.include_router(rewards_router)
    app.include_router(datasets_router)
    app.include_router(audit_router)
    app.include_router(contributions_router)
    app.include_router(web_router)
    mount_web_app(app, get_settings().web_dist_dir)  # last: API routes match first
    settings = get_settings()
    # Added innermost first. The loop's fast lane (PostgreSQL only) serves its requests before
    # FastAPI's routing and dependencies, and hands every other request on: middleware that
    # the loop's requests must pass through (CORS, say) has to be added after it.
    if settings.api_loop_fast_lane:
        app.add_middleware(LoopFastLane)
    # Requests in flight, threads and database connections (backend/core/db.py) agree.
    app.add_middleware(InFlightLimit, limit=settings.api_threads)
    # Outside the fast lane and everything else that reads a body: the caller authenticated
    # and the body bounded and checked first (backend/core/bodies.py). Outside the in-flight
    # limit too, so a slow client's body does not hold a request slot while it arrives.
    app.add_middleware(BodyGuard)
    app.add_middleware(RecycleConnections, requests=settings.api_keepalive_requests)
    return app


app = create_app()
