"""The application as a whole: a real uvicorn process under concurrent load."""

import asyncio

import httpx

from backend.stack import free_port, start_api, stop_process, wait_until


def test_many_concurrent_requests_do_not_exhaust_the_database_pool(db, hardhat_node, tmp_path):
    """Many more requests at once than the process serves: they queue and all succeed
    promptly. Before requests in flight were limited, threads waiting for a database
    connection held every pool thread while the requests holding the connections waited for a
    thread to serialize their responses: a deadlock until the pool's 30 s timeout, then 500s."""
    threads, count = 4, 40
    port = free_port()
    api = start_api(
        "127.0.0.1", port, tmp_path / "api.log", {"PROVENANT_API_THREADS": str(threads)}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(base), timeout=30, what="the API")

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                replies = await asyncio.wait_for(
                    asyncio.gather(*(client.get("/auth/nonce") for _ in range(count))),
                    timeout=20,
                )
            return [r.status_code for r in replies]

        assert asyncio.run(burst()) == [200] * count
    finally:
        stop_process(api)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_startup_leaves_its_objects_out_of_garbage_collection(db):
    import gc

    from fastapi.testclient import TestClient

    from backend.main import create_app

    gc.unfreeze()
    try:
        with TestClient(create_app()) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
