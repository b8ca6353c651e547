"""The admin HTTP address: GET /health for readiness, GET /metrics for a Prometheus scraper.
/metrics is read with prometheus_client's own parsers, as a scraper would, and must move
with traffic."""

from __future__ import annotations

import urllib.request

from floe_harness import consume_all, make_records, produce, unique_topic


def get(broker, path: str):
    with urllib.request.urlopen(f"http://{broker.admin_addr}{path}", timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()


def scrape_counters(broker) -> dict[tuple, float]:
    status, ctype, text = get(broker, "/metrics")
    assert status == 200
    if ctype.startswith("application/openmetrics-text"):
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        assert ctype.startswith("text/plain"), f"unexpected /metrics content type {ctype!r}"
        from prometheus_client.parser import text_string_to_metric_families
    families = list(text_string_to_metric_families(text))  # raises on malformed exposition
    assert families, "/metrics exposes no metric families"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families if f.type == "counter" for s in f.samples
    }


def test_health_and_metrics_follow_traffic(broker):
    assert get(broker, "/health")[0] == 200
    before = scrape_counters(broker)
    assert before, "no counters in /metrics"

    topic = broker.create_topic(unique_topic("metrics"), partitions=2)
    records = make_records(2_000, seed=41, partitions=2)
    produce(broker.bootstrap, topic, records)
    consume_all(broker.bootstrap, topic)

    after = scrape_counters(broker)
    went_down = {k: (before[k], after.get(k)) for k in before if after.get(k, 0) < before[k]}
    assert not went_down, f"counters decreased or vanished: {went_down}"
    grew = [k for k in after if after[k] > before.get(k, 0)]
    assert grew, "no counter moved after producing and consuming 2000 records"
