/**
 * Build the browser bundles with esbuild's JS API.
 *
 *   node scripts/build-assets.mjs            -> static/dist/{editor,app}.js + .map, minified
 *   node scripts/build-assets.mjs --outdir D -> the same into D (the tests build into a temp dir)
 *
 * The bundles are IIFEs (load them with <script src=... defer>), so no inline script or
 * import map is needed under a strict CSP. The build fails if more than one copy of yjs would
 * end up in a bundle: two copies break Yjs's type checks ("Yjs was already imported").
 */
import * as esbuild from 'esbuild'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The bundles: output name -> entry source. */
export const ENTRIES = Object.freeze({
  editor: 'static/src/editor.js',
  app: 'static/src/app.js',
  exports: 'static/src/exports.js',
  feedback: 'static/src/feedback.js',
  redline: 'static/src/redline.js',
  importer: 'static/src/importer.js'
})

/**
 * The distinct yjs package directories that a bundle took modules from.
 *
 * @param {import('esbuild').Metafile} metafile
 * @param {string} output the output file's path as esbuild names it in the metafile
 * @returns {string[]}
 */
export function yjsCopies (metafile, output) {
  const inputs = Object.keys(metafile.outputs[output]?.inputs ?? {})
  const dirs = new Set()
  for (const input of inputs) {
    const match = /^(.*node_modules\/yjs)\//.exec(input.replaceAll('\\', '/'))
    if (match) dirs.add(match[1])
  }
  return [...dirs]
}

/**
 * Bundle every entry into outdir.
 *
 * @param {{outdir?: string, minify?: boolean}} [options]
 * @returns {Promise<{outputs: Record<string, {bytes: number, yjsCopies: string[]}>, ms: number}>}
 * @throws {Error} when esbuild fails or a bundle holds more than one copy of yjs.
 */
export async function buildAssets ({ outdir = path.join(projectRoot, 'static', 'dist'), minify = true } = {}) {
  const started = performance.now()
  const result = await esbuild.build({
    absWorkingDir: projectRoot,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, path.join(projectRoot, src)])),
    outdir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' }
  })
  /** @type {Record<string, {bytes: number, yjsCopies: string[]}>} */
  const outputs = {}
  for (const name of Object.keys(ENTRIES)) {
    const file = path.join(outdir, `${name}.js`)
    const key = path.relative(projectRoot, file).replaceAll('\\', '/')
    const copies = yjsCopies(result.metafile, key)
    if (copies.length > 1) throw new Error(`${name}.js bundles ${copies.length} copies of yjs: ${copies.join(', ')}`)
    outputs[name] = { bytes: (await stat(file)).size, yjsCopies: copies }
  }
  return { outputs, ms: Math.round(performance.now() - started) }
}

/** @param {string[]} argv */
function parseArgs (argv) {
  const options = {}
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--outdir') options.outdir = path.resolve(argv[++i])
    else if (argv[i] === '--no-minify') options.minify = false
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  return options
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { outputs, ms } = await buildAssets(parseArgs(process.argv.slice(2)))
    for (const [name, { bytes }] of Object.entries(outputs)) {
      console.log(`${name}.js  ${(bytes / 1024).toFixed(1)} KiB`)
    }
    console.log(`built in ${ms} ms`)
  } catch (err) {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  }
}
