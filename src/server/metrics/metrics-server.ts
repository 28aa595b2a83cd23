// The metrics port (`--metrics-port`): a small node:http server with three read-only
// routes: `/metrics` (Prometheus text), `/` (the status page) and `/stats.json` (what the
// page reads). Every answer is computed from the stats when asked for (and reused for 500 ms).
import * as http from 'node:http'
import type * as net from 'node:net'
import type { Logger } from '../log'
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
  /** Ms without socket activity (a client that stops reading its answer) before a connection is closed; 30 s. */
  idleTimeout?: number
  /** Ms a connection has to send a request's headers (and its whole request) before a 408 closes it; 10 s. */
  headersTimeout?: number
}

const COMMON_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' }

/**
 * Connections the port holds at once; more are closed as they arrive. The port shares the
 * process's file descriptors with the memcached port, and has no login.
 */
export const METRICS_MAX_CONNECTIONS = 32
/** Answers one connection may have unwritten (pipelined requests); one more closes it. */
export const METRICS_MAX_PIPELINED = 4
/**
 * How long a computed `/metrics` or `/stats.json` answer is served again. Reading the stats
 * takes the event loop the memcached port runs on (about 10 ms with 100,000 items): a flood
 * of requests costs at most one reading per route per interval.
 */
export const METRICS_REUSE_MS = 500

/** Serves the metrics, the status page and its JSON for one stats source. */
export class MetricsServer {
  private readonly http: http.Server
  /** Answers started and not yet written out, by connection. */
  private readonly unwritten = new WeakMap<net.Socket, number>()
  /** The last answer of each computed route, and when it was computed (performance.now()). */
  private readonly recent = new Map<string, { at: number; body: string }>()

  constructor(
    private readonly source: StatsSource,
    private readonly options: MetricsServerOptions,
  ) {
    // (timeouts are checked every second, not node's 30 s: a slow sender holds a slot)
    this.http = http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => this.serve(req, res))
    // a scraper is not a browser: keep idle keep-alive sockets from piling up
    this.http.keepAliveTimeout = 5_000
    this.http.headersTimeout = options.headersTimeout ?? 10_000
    this.http.requestTimeout = this.http.headersTimeout
    this.http.maxConnections = METRICS_MAX_CONNECTIONS
    // a client that stops reading its answer: no socket activity for 30 s closes it
    this.http.setTimeout(options.idleTimeout ?? 30_000)
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => {
        // say which port: ferrocached's startup error is otherwise about the memcached port
        reject(Object.assign(new Error(`metrics port ${this.options.host}:${this.options.port}: ${err.message}`), { code: err.code }))
      }
      this.http.once('error', failed)
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', failed)
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

  /** Answers one request; a throw here would end the process, memcached port and all. */
  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    try {
      this.handle(req, res)
    } catch (err) {
      this.options.logger.error({ err: (err as Error).message }, 'metrics request failed')
      req.socket.destroy()
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket
    // pipelined requests run as they are parsed, before earlier answers are read: bound them
    const unwritten = (this.unwritten.get(socket) ?? 0) + 1
    if (socket.destroyed || unwritten > METRICS_MAX_PIPELINED) {
      socket.destroy()
      return
    }
    this.unwritten.set(socket, unwritten)
    res.once('close', () => this.unwritten.set(socket, (this.unwritten.get(socket) ?? 1) - 1))
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' })
      res.end('method not allowed\n')
      return
    }
    const path = requestPath(req.url ?? '')
    try {
      if (path === null) {
        this.send(req, res, 400, 'text/plain; charset=utf-8', 'bad request target\n')
      } else if (path === '/metrics') {
        this.send(req, res, 200, EXPOSITION_CONTENT_TYPE, this.computed(path, () => metricsText(this.source)))
      } else if (path === '/stats.json') {
        this.send(req, res, 200, 'application/json; charset=utf-8', this.computed(path, () => JSON.stringify(statusReport(this.source))))
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

  /** The answer computed for `path` less than METRICS_REUSE_MS ago, else a new one. */
  private computed(path: string, compute: () => string): string {
    const now = performance.now()
    const last = this.recent.get(path)
    if (last !== undefined && now - last.at < METRICS_REUSE_MS) return last.body
    const body = compute()
    this.recent.set(path, { at: now, body })
    return body
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

/**
 * The path of a request target, percent-decoded, without its query: origin-form
 * (`/metrics?x`) as sent, so `//metrics` is not `/metrics`; absolute-form
 * (`http://host/metrics`) by its path. `null` when it has none or cannot be decoded.
 */
export function requestPath(target: string): string | null {
  let path = target
  if (!target.startsWith('/')) {
    try {
      path = new URL(target).pathname
    } catch {
      return null
    }
  }
  path = path.replace(/[?#].*$/s, '')
  try {
    return decodeURIComponent(path)
  } catch {
    return null
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1'
}
