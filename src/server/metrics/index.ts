// The metrics port: Prometheus metrics with memcached_exporter's names, a status page and
// its JSON, all read from the same code that answers `stats`. See docs/metrics.md.
export { MetricsServer, type MetricsServerOptions } from './metrics-server'
export { metricsText, statusReport, type StatusReport, type SlabClassStatus } from './report'
export type { StatsFamily, StatsSource } from './stats-snapshot'
