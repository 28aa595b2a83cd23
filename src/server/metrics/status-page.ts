// The status page served at `/` of the metrics port: one static HTML document with inline
// style and script (no build step, no external assets) that reads /stats.json every
// second. Data only ever reaches the page through textContent, never as HTML; the
// Content-Security-Policy allows just these inline blocks (by hash) and same-origin fetches.
import { createHash } from 'node:crypto'

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.sub { color: #666; margin-bottom: 1rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .6rem; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6rem .8rem; }
.card .label { color: #666; font-size: .8rem; } .card .value { font-size: 1.25rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; background: #fff; } th, td { border: 1px solid #ddd; padding: .25rem .6rem; }
td { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f0f0f0; font-weight: 600; }
td.name { text-align: left; font-family: ui-monospace, monospace; }
#state.error { color: #b00020; } [hidden] { display: none; }
`

const SCRIPT = `
'use strict'
function el(id) { return document.getElementById(id) }
function count(v) { return v === undefined ? '\\u2013' : String(v).replace(/\\B(?=(\\d{3})+(?!\\d))/g, ',') }
function bytes(v) {
  if (v === undefined) return '\\u2013'
  var n = Number(v), units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i]
}
function ratio(hits, misses) {
  var h = Number(hits), m = Number(misses)
  return h + m === 0 ? '\\u2013' : (100 * h / (h + m)).toFixed(1) + '%'
}
function duration(secs) {
  var s = Number(secs), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60)
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's'
}
function unixTime(secs) { return Number(secs) > 0 ? new Date(Number(secs) * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z') : 'never' }
var FORMATS = {
  bytes: bytes, duration: duration, time: unixTime, text: String,
  ms: function (v) { return Number(v) < 0 ? '\\u2013' : count(v) + ' ms' },
  flag: function (v) { return v === '1' ? 'yes' : 'no' },
}
// Fills every element whose data-stat names a line of the report (text only).
function fill(root, report) {
  var nodes = root.querySelectorAll('[data-stat]')
  for (var i = 0; i < nodes.length; i++) {
    var node = nodes[i], name = node.getAttribute('data-stat'), kind = node.getAttribute('data-format')
    var v = report.stats[name]
    if (v === undefined) v = report.settings[name]
    node.title = v === undefined ? '' : String(v)
    // a card for a line this server does not have (a primary has no link to a primary) is hidden
    if (node.hasAttribute('data-optional')) node.parentElement.hidden = v === undefined
    node.textContent = v === undefined ? '\\u2013' : (FORMATS[kind] || count)(v)
  }
}
function cell(row, text, exact, stat, cls) {
  var td = document.createElement('td')
  td.textContent = text
  if (exact !== undefined) td.title = String(exact)
  if (stat) td.setAttribute('data-stat', stat)
  if (cls) td.className = cls
  row.appendChild(td)
}
// slab pages are 1 MiB, or the largest item size when that is larger (the engine's rule)
function slabRows(classes, pageSize) {
  var body = el('slabs')
  body.textContent = ''
  for (var i = 0; i < classes.length; i++) {
    var c = classes[i], s = c.slabs, it = c.items, row = document.createElement('tr'), p = 'slab.' + c.id + '.'
    row.setAttribute('data-class', String(c.id))
    var size = Number(s.chunk_size || 0), allocated = Number(s.total_pages || 0) * pageSize
    cell(row, String(c.id), c.id, p + 'id', 'name')
    cell(row, bytes(s.chunk_size), s.chunk_size, p + 'chunk_size')
    cell(row, count(s.total_pages), s.total_pages, p + 'total_pages')
    cell(row, bytes(allocated), allocated, p + 'allocated')
    cell(row, bytes(Number(s.used_chunks || 0) * size), Number(s.used_chunks || 0) * size, p + 'used')
    cell(row, bytes(it.mem_requested), it.mem_requested, p + 'mem_requested')
    cell(row, count(it.number === undefined ? 0 : it.number), it.number === undefined ? 0 : it.number, p + 'number')
    cell(row, count(it.evicted === undefined ? 0 : it.evicted), it.evicted === undefined ? 0 : it.evicted, p + 'evicted')
    body.appendChild(row)
  }
  el('no-slabs').hidden = classes.length > 0
}
function keyValues(tbody, lines) {
  tbody.textContent = ''
  var names = Object.keys(lines)
  for (var i = 0; i < names.length; i++) {
    var row = document.createElement('tr')
    row.setAttribute('data-line', names[i])
    cell(row, names[i], undefined, undefined, 'name')
    cell(row, String(lines[names[i]]), undefined, 'line.' + names[i], 'name')
    tbody.appendChild(row)
  }
}
function render(report) {
  fill(document, report)
  var hit = el('hit-ratio')
  hit.textContent = ratio(report.stats.get_hits, report.stats.get_misses)
  slabRows(report.slabClasses, Math.max(1048576, Number(report.settings.item_size_max || 0)))
  el('persistence').hidden = report.persistence === null
  if (report.persistence !== null) keyValues(el('persistence-lines'), report.persistence)
  el('replication').hidden = report.replication === null
  if (report.replication !== null) keyValues(el('replication-lines'), report.replication)
  el('state').className = ''
  el('state').textContent = 'updated ' + new Date(report.readAt).toISOString()
  document.body.setAttribute('data-read-at', String(report.readAt))
}
function refresh() {
  fetch('stats.json', { cache: 'no-store' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json() })
    .then(render)
    .catch(function (e) { el('state').className = 'error'; el('state').textContent = 'cannot read the stats: ' + e.message })
    .then(function () { setTimeout(refresh, 1000) })
}
refresh()
`

const BODY = `
<h1>ferrocached</h1>
<div class="sub">memcached protocol <span data-stat="version" data-format="text"></span> · pid <span data-stat="pid" data-format="text"></span> · up <span data-stat="uptime" data-format="duration"></span> · <span id="state">loading…</span></div>

<h2>Cache</h2>
<div class="cards">
  <div class="card"><div class="label">hit ratio (get)</div><div class="value" id="hit-ratio">–</div></div>
  <div class="card"><div class="label">get hits</div><div class="value" data-stat="get_hits"></div></div>
  <div class="card"><div class="label">get misses</div><div class="value" data-stat="get_misses"></div></div>
  <div class="card"><div class="label">items</div><div class="value" data-stat="curr_items"></div></div>
  <div class="card"><div class="label">memory used</div><div class="value" data-stat="bytes" data-format="bytes"></div></div>
  <div class="card"><div class="label">memory limit</div><div class="value" data-stat="limit_maxbytes" data-format="bytes"></div></div>
  <div class="card"><div class="label">evictions</div><div class="value" data-stat="evictions"></div></div>
  <div class="card"><div class="label">reclaimed (expired)</div><div class="value" data-stat="reclaimed"></div></div>
</div>

<h2>Connections</h2>
<div class="cards">
  <div class="card"><div class="label">open</div><div class="value" data-stat="curr_connections"></div></div>
  <div class="card"><div class="label">limit</div><div class="value" data-stat="max_connections"></div></div>
  <div class="card"><div class="label">since start</div><div class="value" data-stat="total_connections"></div></div>
  <div class="card"><div class="label">refused (limit)</div><div class="value" data-stat="rejected_connections"></div></div>
  <div class="card"><div class="label">bytes read</div><div class="value" data-stat="bytes_read" data-format="bytes"></div></div>
  <div class="card"><div class="label">bytes written</div><div class="value" data-stat="bytes_written" data-format="bytes"></div></div>
</div>

<h2>Memory by slab class</h2>
<table>
  <thead><tr><th>class</th><th>chunk size</th><th>pages</th><th>allocated</th><th>in use</th><th>requested</th><th>items</th><th>evicted</th></tr></thead>
  <tbody id="slabs"></tbody>
</table>
<p id="no-slabs" hidden>No slab class has memory yet.</p>

<section id="persistence" hidden>
  <h2>Snapshots</h2>
  <div class="cards">
    <div class="card"><div class="label">last snapshot</div><div class="value" data-stat="rdb_last_save_time" data-format="time"></div></div>
    <div class="card"><div class="label">last status</div><div class="value" data-stat="rdb_last_bgsave_status" data-format="text"></div></div>
    <div class="card"><div class="label">changes since</div><div class="value" data-stat="rdb_changes_since_last_save"></div></div>
    <div class="card"><div class="label">writing now</div><div class="value" data-stat="rdb_bgsave_in_progress" data-format="flag"></div></div>
  </div>
  <details><summary>every persistence line of stats</summary><table><tbody id="persistence-lines"></tbody></table></details>
</section>

<section id="replication" hidden>
  <h2>Replication</h2>
  <div class="cards">
    <div class="card"><div class="label">role</div><div class="value" data-stat="role" data-format="text"></div></div>
    <div class="card"><div class="label">replicas connected</div><div class="value" data-stat="connected_slaves" data-optional></div></div>
    <div class="card"><div class="label">stream offset</div><div class="value" data-stat="master_repl_offset" data-optional></div></div>
    <div class="card"><div class="label">link to primary</div><div class="value" data-stat="master_link_status" data-format="text" data-optional></div></div>
    <div class="card"><div class="label">lag behind primary</div><div class="value" data-stat="repl_lag_ms" data-format="ms" data-optional></div></div>
  </div>
  <details><summary>every replication line of stats</summary><table><tbody id="replication-lines"></tbody></table></details>
</section>
`

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

/** The page's HTML. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ferrocached status</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`

/** Allows the inline style and script above (by hash), same-origin fetches and nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')
