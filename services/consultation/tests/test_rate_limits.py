"""Per-source token buckets of comment intake (pure logic; the service test drives them over
gRPC)."""

from services.consultation.rate_limits import IDLE_FORGET_S, SourceRateLimits, peer_source


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_source_gets_its_burst_then_its_rate():
    clock = Clock()
    limits = SourceRateLimits(rate=10, burst=20, clock=clock)
    assert limits.take("portal-a", 20) == 0
    assert limits.take("portal-a", 5) == 0.5        # 5 comments at 10/s
    clock.now += 0.5
    assert limits.take("portal-a", 5) == 0
    assert limits.take("portal-b", 20) == 0         # another source has its own bucket


def test_a_refused_take_takes_nothing():
    clock = Clock()
    limits = SourceRateLimits(rate=100, burst=100, clock=clock)
    assert limits.take("portal", 90) == 0
    assert limits.take("portal", 50) == 0.4
    assert limits.take("portal", 10) == 0


def test_a_batch_larger_than_the_burst_waits_for_a_full_bucket():
    clock = Clock()
    limits = SourceRateLimits(rate=100, burst=100, clock=clock)
    assert limits.take("portal", 1000) == 0         # the bucket is full: it goes through alone
    assert limits.take("portal", 1) > 0
    clock.now += 10
    assert limits.take("portal", 1000) == 0


def test_zero_rate_means_no_limit():
    limits = SourceRateLimits(rate=0, burst=0)
    assert all(limits.take("portal", 10_000) == 0 for _ in range(100))


def test_idle_and_surplus_sources_are_forgotten():
    clock = Clock()
    limits = SourceRateLimits(rate=1, burst=1, clock=clock, max_sources=3)
    for n in range(5):
        limits.take(f"caller-{n}")
    assert len(limits._buckets) == 3
    clock.now += IDLE_FORGET_S
    limits.take("caller-new")
    assert list(limits._buckets) == ["caller-new"]


def test_the_source_of_an_unauthenticated_caller_is_its_address():
    assert peer_source("ipv4:10.0.0.7:53211") == "ipv4:10.0.0.7"
    assert peer_source("ipv6:[::1]:53211") == "ipv6:[::1]"
    assert peer_source("unix:/tmp/socket") == "unix:/tmp/socket"
