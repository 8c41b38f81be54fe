"""The session service's own metrics, on the app's registry. Names are a contract with
the dashboards and alerts in ``deploy/``; labels come from small fixed sets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from portal_pulse.core.metrics import ServiceMetrics

TRANSITIONS = ("created", "prompt", "extended", "expired", "ended")
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SessionMetrics:
    def __init__(self, base: ServiceMetrics) -> None:
        self.base = base
        registry = base.registry
        self.transitions = Counter(
            "pulse_session_transitions_total",
            "Session transitions announced by this process, by type.",
            ["type"], registry=registry,
        )
        self.live = Gauge(
            "pulse_session_live", "Sessions not yet expired or ended (sizes of the buckets' due-time indexes).",
            registry=registry,
        )
        self.keepalives = Counter(
            "pulse_session_keepalives_total", "Keep-alive clicks, by result (ok, gone).",
            ["result"], registry=registry,
        )
        self.activity = Counter(
            "pulse_session_activity_total", "Activity reports, by result (ok, prompt_open, gone).",
            ["result"], registry=registry,
        )
        self.event_streams = Gauge(
            "pulse_session_event_streams", "Open server-sent event streams in this process.",
            registry=registry,
        )
        self.scheduler_lag = Histogram(
            "pulse_session_scheduler_lag_seconds",
            "Delay between a transition's due time and its announcement by the scheduler.",
            buckets=LAG_BUCKETS, registry=registry,
        )
        for kind in TRANSITIONS:
            self.transitions.labels(kind)
        for result in ("ok", "gone"):
            self.keepalives.labels(result)
        for result in ("ok", "prompt_open", "gone"):
            self.activity.labels(result)
        #: Labelled children resolved once: ``labels()`` per request costs more than ``inc()``.
        self._touch_children = {
            **{("keepalive", result): self.keepalives.labels(result) for result in ("ok", "gone")},
            **{("activity", result): self.activity.labels(result) for result in ("ok", "prompt_open", "gone")},
        }
        self._transition_children = {kind: self.transitions.labels(kind) for kind in TRANSITIONS}

    def count_touch(self, mode: str, result: str) -> None:
        """One activity report or keep-alive click, by result."""
        child = self._touch_children.get((mode, result))
        if child is None:
            child = (self.activity if mode == "activity" else self.keepalives).labels(result)
        child.inc()

    def count_transitions(self, kinds: tuple[str, ...] | list[str]) -> None:
        for kind in kinds:
            child = self._transition_children.get(kind)
            if child is not None:
                child.inc()
