"""How many clean records the drift observation profiles, from the batch's size."""

from lean_ops_spark.drift.observe import _BUCKETS, _sample_share


def sampled_of(records: int, sample_clean: int | None) -> float:
    return records * _sample_share(records, sample_clean) / _BUCKETS


def test_small_batches_are_profiled_whole() -> None:
    assert _sample_share(0, 10_000) == _sample_share(19_999, 10_000) == _BUCKETS
    assert _sample_share(10**9, None) == _BUCKETS


def test_large_batches_profile_between_one_and_two_times_the_sample() -> None:
    for records in (20_000, 105_000, 1_000_000, 7_777_777):
        assert 10_000 <= sampled_of(records, 10_000) < 20_000, records


def test_the_share_bottoms_out_at_one_in_16384() -> None:
    assert _sample_share(10**12, 10) == _BUCKETS >> 14
