/**
 * The interface's words in the page's language, for the scripts.
 *
 * The server writes the translations of every message these scripts use into
 * <script type="application/json" id="script-messages"> (codedraft/i18n.py finds the messages
 * by the same `gettext` / `ngettext` calls `pybabel extract` looks for). Without that block (in
 * Node tests, or a page without it) the English source text is shown.
 *
 * Placeholders are written as in Python: "%(name)s".
 */

import { jsonBlock } from './page_data.js'

/** @typedef {{language: string, messages: Record<string, string>, plurals: Record<string, Record<string, string>>}} Catalogue */

/** @type {Catalogue | null} */
let loaded = null

/** @returns {Catalogue} */
function catalogue () {
  if (loaded) return loaded
  // Without the block, or with a broken one, the English text: better than no text.
  loaded = { language: 'en', messages: {}, plurals: {}, ...jsonBlock('script-messages') }
  return loaded
}

/**
 * @param {string} text
 * @param {Record<string, unknown>} values
 * @returns {string}
 */
function fill (text, values) {
  return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in values ? String(values[name]) : whole))
}

/**
 * @param {string} message the English text, also the key
 * @param {Record<string, unknown>} [values] placeholder values
 * @returns {string}
 */
export function gettext (message, values = {}) {
  const translated = catalogue().messages[message]
  return fill(translated || message, values)
}

/**
 * The form for `count` ("1 change", "2 changes"; in Polish "2 zmiany", "5 zmian"); `%(num)s` is
 * the count.
 *
 * @param {string} singular
 * @param {string} plural
 * @param {number} count
 * @param {Record<string, unknown>} [values]
 * @returns {string}
 */
export function ngettext (singular, plural, count, values = {}) {
  const { language, plurals } = catalogue()
  const forms = plurals[singular]
  let text = count === 1 ? singular : plural
  if (forms) {
    const category = new Intl.PluralRules(language).select(count)
    text = forms[category] || forms.other || text
  }
  return fill(text, { num: count, ...values })
}
