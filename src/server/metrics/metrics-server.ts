// The metrics port (`--metrics-port`): a small node:http server with three read-only
// routes: `/metrics` (Prometheus text), `/` (the status page) and `/stats.json` (what the
// page reads). Every answer is computed from the stats at request time.
import http from 'node:http'
import type net from 'node:net'
import type { Logger } from '../logger'
import { EXPOSITION_CONTENT_TYPE } from './exposition'
import { metricsText, statusReport } from './report'
import type { StatsSource } from './stats-snapshot'
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page'

/** Where the metrics server listens. */
export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one. */
  port: number
  /** Interface (ferrocached: the same as `-l` unless `--metrics-host` says otherwise). */
  host: string
  logger: Logger
}

const COMMON_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' }

/** Serves the metrics, the status page and its JSON for one stats source. */
export class MetricsServer {
  private readonly http: http.Server

  constructor(
    private readonly source: StatsSource,
    private readonly options: MetricsServerOptions,
  ) {
    this.http = http.createServer((req, res) => this.handle(req, res))
    // a scraper is not a browser: keep idle keep-alive sockets from piling up
    this.http.keepAliveTimeout = 5_000
    this.http.headersTimeout = 10_000
    this.http.requestTimeout = 10_000
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject)
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', reject)
        this.http.on('error', (err) => this.options.logger.error({ err: err.message }, 'metrics server error'))
        const addr = this.http.address() as net.AddressInfo
        this.options.logger.info({ host: addr.address, port: addr.port }, 'metrics listening')
        if (!isLoopback(addr.address)) {
          this.options.logger.warn({ host: addr.address, port: addr.port }, 'the metrics port has no login: anyone who reaches it reads the stats')
        }
        resolve(addr)
      })
    })
  }

  /** The bound address, once listening. */
  address(): net.AddressInfo | null {
    return this.http.address() as net.AddressInfo | null
  }

  /** Stops listening and closes open connections at once. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.http.listening) return resolve()
      this.http.close(() => resolve())
      this.http.closeAllConnections()
    })
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' })
      res.end('method not allowed\n')
      return
    }
    try {
      if (path === '/metrics') {
        this.send(req, res, 200, EXPOSITION_CONTENT_TYPE, metricsText(this.source))
      } else if (path === '/stats.json') {
        this.send(req, res, 200, 'application/json; charset=utf-8', JSON.stringify(statusReport(this.source)))
      } else if (path === '/' || path === '/index.html') {
        this.send(req, res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML, { 'Content-Security-Policy': STATUS_PAGE_CSP })
      } else {
        this.send(req, res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /stats.json or /\n')
      }
    } catch (err) {
      // the cache was closed under us (the server is stopping)
      this.send(req, res, 503, 'text/plain; charset=utf-8', `unavailable: ${(err as Error).message}\n`)
    }
  }

  private send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    type: string,
    body: string,
    extra: Record<string, string> = {},
  ): void {
    res.writeHead(status, { ...COMMON_HEADERS, ...extra, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1'
}
