import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { buildAssets } from '../../scripts/build-assets.mjs'

test('the bundles build, with exactly one copy of yjs, and stay small enough', async () => {
  const outdir = await mkdtemp(path.join(os.tmpdir(), 'codedraft-dist-'))
  try {
    const { outputs, ms } = await buildAssets({ outdir })
    assert.equal(outputs.editor.yjsCopies.length, 1, `yjs copies: ${outputs.editor.yjsCopies}`)
    assert.equal(outputs.app.yjsCopies.length, 0)
    // The HTML/CSS/JS parsers that markdown() would drag in cost ~180 KiB; catch their return.
    assert.ok(outputs.editor.bytes < 560 * 1024, `editor.js is ${outputs.editor.bytes} bytes`)
    assert.ok(outputs.app.bytes < 4 * 1024, `app.js is ${outputs.app.bytes} bytes`)
    assert.ok(ms < 20000, `build took ${ms} ms`)
    const editor = await readFile(path.join(outdir, 'editor.js'), 'utf8')
    assert.match(editor, /sourceMappingURL=editor\.js\.map/)
    // Strict CSP: no eval or string-compiled functions in what we ship.
    assert.doesNotMatch(editor, /\beval\(|new Function\(/)
  } finally {
    await rm(outdir, { recursive: true, force: true })
  }
})
