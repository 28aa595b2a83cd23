// Prints memcached's transcript of corpus sessions, for writing and reviewing fixtures:
//   npx tsx __test__/helpers/show-transcript.ts __test__/fixtures/differential/text-get.session
import { readFileSync } from 'node:fs'
import { parseSession } from './corpus'
import { replay } from './replay'
import { startMemcached } from './servers'

async function main(): Promise<void> {
  const mc = await startMemcached()
  try {
    for (const file of process.argv.slice(2)) {
      console.log(`== ${file}`)
      for (const line of (await replay(mc.port, parseSession(readFileSync(file, 'utf8')))).transcript) console.log(line)
    }
  } finally {
    await mc.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
