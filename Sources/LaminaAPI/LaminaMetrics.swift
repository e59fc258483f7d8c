import CoreMetrics
import Foundation
import LaminaHost
import Prometheus

/// The daemon's Prometheus metrics (through swift-metrics): invocations by outcome, errors,
/// throttles, cold starts, durations, queued events, and environments by state.
public final class LaminaMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                   .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                                   .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
                                                   .seconds(60), .seconds(300), .seconds(900)]
        self.factory = factory
    }

    func invoked(function: String, result: InvocationResult, seconds: Double) {
        let outcome = result.meter.outcome.rawValue
        Counter(label: "lamina_invocations_total", dimensions: [("function", function), ("outcome", outcome)], factory: factory).increment()
        if result.functionError != nil {
            Counter(label: "lamina_errors_total", dimensions: [("function", function), ("outcome", outcome)], factory: factory).increment()
        }
        if result.coldStart {
            Counter(label: "lamina_cold_starts_total", dimensions: [("function", function)], factory: factory).increment()
        }
        Timer(label: "lamina_invocation_duration_seconds", dimensions: [("function", function)], factory: factory)
            .recordNanoseconds(result.meter.durationMicros * 1000)
        Timer(label: "lamina_api_invoke_latency_seconds", dimensions: [], factory: factory).recordSeconds(seconds)
    }

    func throttled(function: String) {
        Counter(label: "lamina_throttles_total", dimensions: [("function", function)], factory: factory).increment()
    }

    func queued(function: String) {
        Counter(label: "lamina_async_events_queued_total", dimensions: [("function", function)], factory: factory).increment()
    }

    /// The Prometheus text exposition, with the environment gauges set to `environments` now.
    public func render(environments: [ExecutionEnvironment.State: Int], pendingEvents: Int?) -> String {
        for state in [ExecutionEnvironment.State.initializing, .idle, .busy] {
            Gauge(label: "lamina_environments", dimensions: [("state", state.rawValue)], factory: factory).record(environments[state] ?? 0)
        }
        if let pendingEvents {
            Gauge(label: "lamina_async_events_pending", dimensions: [], factory: factory).record(pendingEvents)
        }
        var buffer = [UInt8]()
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
