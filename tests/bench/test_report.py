"""The throughput table's derived columns: ratios, the CPU prediction, cores busy."""

from __future__ import annotations

from bench.report import Summary, busy, throughput_table


def summary(server: str, rate: float, cpu: float, redis: float = 0.0, wrk: float = 20.0) -> Summary:
    return Summary("hit", server, rate=rate, p50_ms=1.0, p99_ms=2.0, cpu_ms_per_1k=cpu, redis_cpu_ms_per_1k=redis,
                   wrk_cpu_ms_per_1k=wrk, exact="n/a", loads=[0.5], rates=[rate])


def test_the_ratio_to_the_ceiling_is_predicted_from_cpu_per_request() -> None:
    ceiling = summary("ceiling", 20_000, 50)
    minimal = summary("minimal", 16_000, 60)
    counter = summary("counter", 8_000, 125, redis=45)
    tuned = summary("counter tuned", 12_000, 80)
    naive = summary("naive", 2_000, 500)
    rows = throughput_table([ceiling, minimal, naive, counter, tuned]).splitlines()[2:]
    cells = [row.split(" | ") for row in rows]
    # measured, predicted (50/125), × limit (8,000 / 16,000), × naive
    assert cells[3][4:8] == ["0.40", "0.40", "0.50", "4.0"]
    assert cells[4][4:8] == ["0.60", "0.62", "0.75", "6.0"]
    assert cells[0][4:8] == ["1.00", "", "", ""]
    assert cells[1][6:8] == ["", ""]  # the baselines are not compared with themselves


def test_cores_busy_is_rate_times_cpu_per_request() -> None:
    assert busy(summary("counter", 8_000, 125, redis=45, wrk=20)) == (1.0, 0.36, 0.16)
