/**
 * Data the server writes into the page for the scripts, as <script type="application/json"
 * id="..."> blocks (rendered with Jinja's `tojson`, so nothing in them can end the element).
 */

/**
 * @param {string} id the block's id
 * @param {Document | null} [doc] the page (default: this page; none in Node tests)
 * @returns {any} the block's JSON; null without the block, or with a broken one (the script then
 *   does what it does without it)
 */
export function jsonBlock (id, doc = typeof document !== 'undefined' ? document : null) {
  const block = doc ? doc.getElementById(id) : null
  if (!block || !block.textContent) return null
  try {
    return JSON.parse(block.textContent)
  } catch {
    return null
  }
}
