"""The access path checks a connection out of the engine's pool per transaction (no connection held
per thread): more threads than the pool holds, calling check, consume and report_usage at once, all
succeed or fail with StorageError (exit 3), never a raw pool TimeoutError; an exhausted pool is one
sentence."""

from __future__ import annotations

import threading

import pytest

from tollgate import Tollgate
from tollgate.errors import StorageError

THREADS = 24  # the pool holds 5 + 10 overflow


@pytest.mark.slow
def test_more_threads_than_the_pool_holds_all_succeed_or_fail_with_storage_error(isolated_db):
    with Tollgate(isolated_db) as setup:
        setup.create_feature("API calls", type="metered", identifier="api-calls")
        setup.create_product("API", identifier="api")
        setup.create_plan("pro", product="api", feature_values=["api-calls=1000000"])
        setup.add_customer("Acme", identifier="acme")
        setup.add_subscription("acme", "pro")
    tg = Tollgate(isolated_db)
    outcomes: list[str] = []
    barrier = threading.Barrier(THREADS)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(15):
            try:
                if n % 3 == 0:
                    tg.check("acme", "api-calls")
                elif n % 3 == 1:
                    tg.consume("acme", "api-calls", 1, key=f"c-{n}-{i}")
                else:
                    tg.report_usage("acme", "api-calls", 1, key=f"r-{n}-{i}")
                outcomes.append("ok" if n % 3 == 0 else "recorded")
            except StorageError:
                outcomes.append("storage")
            except Exception as exc:  # noqa: BLE001 - the test is that nothing else escapes
                outcomes.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tg.close()
    assert set(outcomes) <= {"ok", "recorded", "storage"}, sorted(set(outcomes))
    assert outcomes.count("ok") > 0 and outcomes.count("recorded") > 0
    with Tollgate(isolated_db) as after:
        assert after.check("acme", "api-calls").used == outcomes.count("recorded")  # each success counted once
        assert after.check_database().ok


def test_an_exhausted_pool_is_one_sentence(isolated_db):
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from tollgate.storage_errors import storage_error

    error = storage_error(PoolTimeout("QueuePool limit of size 5 overflow 10 reached"), str(isolated_db))
    assert isinstance(error, StorageError) and error.exit_code == 3
    assert "pool" in error.message and "\n" not in error.message
