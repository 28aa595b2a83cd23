// Writing results into docs/benchmarks.md: one "## <heading>" section per benchmark, each
// replaced in place so suites run separately never overwrite each other's figures.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'

/** Replaces the body of "## <heading>" (or appends the section), leaving the rest alone. */
export function writeSection(file: string, heading: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`)
  const section = [`## ${heading}`, '', body.trimEnd(), '']
  let out: string
  if (start < 0) {
    out = text.trimEnd() + '\n\n' + section.join('\n')
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l))
    if (end < 0) end = lines.length
    out = [...lines.slice(0, start), ...section, ...lines.slice(end)].join('\n')
  }
  writeFileSync(file, out.endsWith('\n') ? out : out + '\n')
}

/** Date, core count, CPU model, memory and Node version: the line every result carries. */
export function machineLine(): string {
  const cpuInfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuInfo)?.[1] ?? cpus()[0]?.model ?? 'unknown CPU'
  let nproc = String(cpus().length)
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim()
  } catch {
    // nproc is coreutils; os.cpus() is the fallback
  }
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
  const gib = (totalmem() / 2 ** 30).toFixed(0)
  return `${when}; ${nproc} cores (nproc), ${model}, ${gib} GiB RAM; Node ${process.version}`
}

export function fmtOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)}M`
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(0)}k`
  return ops.toFixed(0)
}
