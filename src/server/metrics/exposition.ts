// Prometheus's text exposition format (version 0.0.4): metric families with HELP and TYPE,
// then one line per sample. Label values and HELP texts are escaped as the format requires.

/** The content type scrapers expect for this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** What a sample's value means over time: `counter` only goes up (until a reset). */
export type MetricType = 'counter' | 'gauge'

interface Family {
  type: MetricType
  help: string
  samples: string[]
}

/** Collects samples by metric family and renders them in the text format. */
export class Exposition {
  private readonly families = new Map<string, Family>()

  /**
   * Adds one sample. The first sample of a family fixes its type and HELP text; a
   * non-finite value (an unparsable stat) is skipped.
   */
  add(name: string, type: MetricType, help: string, value: number, labels: Record<string, string> = {}): void {
    if (!Number.isFinite(value)) return
    let family = this.families.get(name)
    if (family === undefined) {
      family = { type, help, samples: [] }
      this.families.set(name, family)
    }
    family.samples.push(`${name}${labelText(labels)} ${formatValue(value)}`)
  }

  /** The exposition text: each family's HELP and TYPE lines, then its samples. */
  render(): string {
    let out = ''
    for (const [name, f] of this.families) {
      out += `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${f.type}\n`
      for (const s of f.samples) out += `${s}\n`
    }
    return out
  }
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** Label values: backslash, double quote and newline are escaped. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP texts: backslash and newline are escaped. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? v.toFixed(0) : String(v)
}

/** Turns a stat name into a legal metric name part (`[a-zA-Z0-9_]`). */
export function metricName(stat: string): string {
  return stat.replace(/[^a-zA-Z0-9_]/g, '_')
}
