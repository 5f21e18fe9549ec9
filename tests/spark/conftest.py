import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/spark/" in str(item.fspath):
            item.add_marker(pytest.mark.spark)


class PinSpy:
    """The batches pinned (``session.pin``) through the modules :meth:`watch` patched, held
    here so only ``release()`` can free them (not the JVM's cleaner)."""

    def __init__(self, spark, monkeypatch) -> None:
        self.pinned: list = []
        self._jsc = spark.sparkContext._jsc
        self._monkeypatch = monkeypatch

    def watch(self, *modules) -> None:
        for module in modules:
            self._monkeypatch.setattr(module, "pin", self._pin)

    def _pin(self, df):
        from lean_ops_spark import session

        self.pinned.append(session.pin(df))
        return self.pinned[-1]

    def stored(self) -> list[int]:
        """Which of the pinned batches the executors store (their order of pinning)."""
        persistent = set(self._jsc.getPersistentRDDs().keySet())
        ids = [df._jdf.queryExecution().logical().rdd().id() for df in self.pinned]
        return [i for i, rdd in enumerate(ids) if rdd in persistent]


@pytest.fixture
def pin_spy(spark, monkeypatch) -> PinSpy:
    return PinSpy(spark, monkeypatch)
