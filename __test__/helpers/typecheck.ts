// Type-checks TypeScript consumer projects as `tsc --noEmit` would, in this process, one
// program per compiler configuration: what a user's compiler says about our shipped .d.ts
// under their settings. skipLibCheck is off, so every .d.ts the program loads is checked
// (ours and our dependencies'), except TypeScript's own lib files and @types/node: those are
// the consumer's choice, their maintainers check them, and checking them costs ~5 s of CPU
// per configuration. Parsed files are shared between configurations whose parse-affecting
// settings match (as TypeScript's language service shares them), so a matrix of a handful
// of configurations takes seconds, not a tsc start-up and full check each.
import { dirname, join } from 'node:path'
import type * as TS from 'typescript'

export interface ConsumerConfig {
  /** A name for failure messages. */
  name: string
  /** Root files, relative to the project directory. */
  files: string[]
  /** tsconfig.json's compilerOptions, as written there (strings, not enums). */
  compilerOptions: Record<string, unknown>
}

export interface ConsumerResult {
  /** The formatted errors ('' when it compiles). */
  errors: string
  /** The .d.ts files the program loaded from node_modules/<pkg>/ (0: it never found the types). */
  packageFiles: number
}

/** Each configuration's result, by name. `pkg`: the package under test. */
export function typecheck(ts: typeof TS, projectDir: string, pkg: string, configs: ConsumerConfig[]): Map<string, ConsumerResult> {
  const registry = ts.createDocumentRegistry()
  const parsed = new Map<string, TS.SourceFile>()
  const results = new Map<string, ConsumerResult>()
  for (const config of configs) {
    const converted = ts.convertCompilerOptionsFromJson({ ...config.compilerOptions, noEmit: true, skipLibCheck: false }, projectDir)
    if (converted.errors.length > 0) throw new Error(`${config.name}: ${ts.flattenDiagnosticMessageText(converted.errors[0]?.messageText, '\n')}`)
    const options = converted.options
    const host = ts.createCompilerHost(options)
    const settingsKey = registry.getKeyForCompilationSettings(options)
    const read = host.getSourceFile.bind(host)
    host.getSourceFile = (fileName, languageVersion, onError, shouldCreateNewSourceFile) => {
      const format = typeof languageVersion === 'object' ? languageVersion.impliedNodeFormat : undefined
      const key = `${settingsKey}|${format}|${fileName}`
      let file = parsed.get(key)
      if (file === undefined || shouldCreateNewSourceFile === true) {
        file = read(fileName, languageVersion, onError, shouldCreateNewSourceFile)
        if (file !== undefined) parsed.set(key, file)
      }
      return file
    }
    const program = ts.createProgram(config.files.map((f) => join(projectDir, f)), options, host)
    // TypeScript names files with '/' on every platform.
    const libDir = `${dirname(ts.getDefaultLibFilePath(options)).replaceAll('\\', '/')}/`
    const diagnostics: TS.Diagnostic[] = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]
    let packageFiles = 0
    for (const file of program.getSourceFiles()) {
      if (file.fileName.includes(`/node_modules/${pkg}/`)) packageFiles++
      if (file.fileName.includes('/node_modules/@types/node/') || file.fileName.startsWith(libDir)) continue
      diagnostics.push(...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file))
    }
    const text = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => projectDir,
      getNewLine: () => '\n',
    })
    results.set(config.name, { errors: text, packageFiles })
  }
  return results
}
