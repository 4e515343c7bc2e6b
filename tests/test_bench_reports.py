"""The benchmarks' report functions (pure): the realtime bench and the scaled bench judge the same
results against issue #15's targets. A change to the targets' shape once broke the scaled bench
only at the end of a 10-minute run; these catch that in a second. The export bench's A/B is
checked the same way: what it refuses, and how an older model is built."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import export_ab_worker  # noqa: E402
import export_bench  # noqa: E402
import realtime_bench  # noqa: E402
import realtime_scaled  # noqa: E402

OURS = {"typists_50": {"p99_ms": 20.0}, "connected_200": {"p99_ms": 20.0}, "viewers_1000": {"server_rss_mb": 140.0},
        "open_10k": {"median_ms": 10.0}, "open_10k_uncompacted": {"median_ms": 90.0},
        "acked_throughput": {"updates_per_s": 6000.0}}


def test_a_result_within_every_target_and_ratio_meets_them_all():
    reference = {"typists_50": {"p99_ms": 5.0}, "connected_200": {"p99_ms": 12.0}}
    summary = realtime_bench.compare(OURS, reference)
    assert {name: row["target_met"] for name, row in summary.items()} == {name: True for name in OURS}


def test_a_latency_under_its_target_but_too_many_times_the_reference_misses():
    summary = realtime_bench.compare(OURS, {"connected_200": {"p99_ms": 5.0}})
    assert summary["connected_200"]["target_met"] is False
    assert summary["connected_200"]["ratio_codedraft_to_reference"] == 4.0
    assert summary["typists_50"]["target_met"] is None  # no reference number: the ratio is unknown


def test_the_scaled_bench_judges_the_same_targets_without_a_reference():
    summary = realtime_scaled.against_targets({**OURS, "viewers_1000": {"server_rss_mb": 206.0, "error": "x"}})
    assert summary["typists_50"]["target_met"] is True
    assert summary["viewers_1000"] == {"metric": "server_rss_mb", "target": "<= 150", "value": 206.0,
                                       "target_met": False, "load_failed": True}


def test_the_scaled_bench_compares_processes_load_by_load():
    slower = {**OURS, "typists_50": {"p99_ms": 40.0, "server_cpu_ms_per_edit": 1.5},
              "acked_throughput": {"updates_per_s": 3000.0}}
    runs = {"1": {**OURS, "typists_50": {"p99_ms": 20.0, "server_cpu_ms_per_edit": 1.0}}, "2": slower}
    gains = realtime_scaled.gains(runs)
    assert gains["2"]["typists_50"] == 0.5 and gains["2"]["acked_throughput"] == 0.5  # both worse
    assert gains["2"]["open_10k"] == 1.0
    assert realtime_scaled.cpu_ratios(runs)["2"]["typists_50"] == 1.5


def test_rounds_of_the_scaled_bench_alternate_their_order_and_are_compared_by_their_means():
    assert realtime_scaled.interleaved([1, 2, 3], 4) == [[1, 2, 3], [3, 2, 1], [1, 2, 3], [3, 2, 1]]
    assert realtime_scaled.interleaved([1, 2], 1) == [[1, 2]]
    first = {"typists_50": {"p99_ms": 10.0, "server_cpu_ms_per_edit": 1.0, "server_cpu_s": 5.0, "sent": 100},
             "acked_throughput": {"updates_per_s": 2000.0, "server_cpu_ms_per_edit": None}}
    second = {"typists_50": {"p99_ms": 20.0, "server_cpu_ms_per_edit": 2.0, "server_cpu_s": 7.0, "sent": 90},
              "acked_throughput": {"updates_per_s": 3000.0, "server_cpu_ms_per_edit": 0.5}}
    merged = realtime_scaled.averaged([first, second])
    assert merged["typists_50"]["p99_ms"] == 15.0 and merged["typists_50"]["p99_ms_rounds"] == [10.0, 20.0]
    assert merged["typists_50"]["server_cpu_ms_per_edit"] == 1.5 and merged["typists_50"]["server_cpu_s"] == 6.0
    assert merged["typists_50"]["sent"] == 90  # not compared: the last round's
    assert merged["acked_throughput"]["updates_per_s"] == 2500.0
    # A round without the number (a load that failed) leaves the last round's value, not a mean of some.
    assert merged["acked_throughput"]["server_cpu_ms_per_edit"] == 0.5
    assert "server_cpu_ms_per_edit_rounds" not in merged["acked_throughput"]
    assert realtime_scaled.averaged([first]) is first


def test_the_export_ab_refuses_a_revision_it_cannot_time():
    with pytest.raises(export_bench.RevisionError, match="not a revision"):
        export_bench.resolve_revision("no-such-revision")
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=export_bench.ROOT,
                           capture_output=True, text=True).stdout.split()
    if not first or subprocess.run(["git", "cat-file", "-e", f"{first[0]}:codedraft/exports/redline.py"],
                                   cwd=export_bench.ROOT, capture_output=True).returncode == 0:
        pytest.skip("this clone's first commit is not one without exporters")
    with pytest.raises(export_bench.RevisionError, match="no redline exporters"):
        export_bench.resolve_revision(first[0])


@dataclass(frozen=True)
class OlderClause:
    uid: str
    body_markdown: str
    parent_uid: str | None = None


def test_an_older_model_is_built_from_the_fields_it_has():
    clause = export_ab_worker.with_known_fields(OlderClause, {"uid": "c1", "body_markdown": "Text.", "kind": "measure"})
    assert clause == OlderClause("c1", "Text.")


def test_the_throughput_clauses_are_chosen_to_spread_evenly_over_every_number_of_processes():
    import hashlib

    pool = [hashlib.sha256(str(n).encode()).hexdigest()[:16] for n in range(60)]  # like clause uids
    chosen = realtime_scaled.spread_evenly(pool, [1, 2, 3], 10)
    assert len(set(chosen)) == 10 and set(chosen) <= set(pool)
    assert sorted(realtime_scaled.clauses_per_process(chosen, 2)) == [5, 5]
    assert sorted(realtime_scaled.clauses_per_process(chosen, 3)) == [3, 3, 4]
    # The same hash as the load generator's (bench/realtime/loadgen.mjs, urlFor).
    script = ("let h = 0x811c9dc5; for (const c of process.argv[1]) "
              "h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0; console.log(h % 3)")
    for uid in chosen[:3]:
        answer = subprocess.run(["node", "-e", script, uid], capture_output=True, text=True, check=True)
        assert int(answer.stdout) == realtime_scaled.process_of(uid, 3)
