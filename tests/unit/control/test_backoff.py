from hftops.control.backoff import RestartPolicy


def test_delays_double_then_the_start_limit_gives_up() -> None:
    policy = RestartPolicy(initial_s=1, max_s=60, burst=5, interval_s=300)
    decisions = [policy.record_failure(now) for now in (0, 10, 20, 30, 40)]
    assert [d.delay_s for d in decisions[:4]] == [1, 2, 4, 8]
    assert all(d.restart for d in decisions[:4])
    assert decisions[4].exhausted
    assert decisions[4].failures_in_window == 5


def test_delay_is_capped() -> None:
    policy = RestartPolicy(initial_s=1, max_s=5, burst=100, interval_s=1e9)
    delays = [policy.record_failure(float(i)).delay_s for i in range(8)]
    assert delays == [1, 2, 4, 5, 5, 5, 5, 5]


def test_failures_outside_the_window_are_forgotten() -> None:
    policy = RestartPolicy(initial_s=1, max_s=60, burst=3, interval_s=60)
    policy.record_failure(0)
    policy.record_failure(10)
    late = policy.record_failure(100)  # both earlier failures are older than 60 s
    assert late.restart and late.delay_s == 1 and late.failures_in_window == 1


def test_reset_forgives() -> None:
    policy = RestartPolicy(initial_s=1, max_s=60, burst=2, interval_s=300)
    policy.record_failure(0)
    policy.reset()
    assert policy.record_failure(1).restart
