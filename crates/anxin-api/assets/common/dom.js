// Building DOM nodes. Server text only ever goes in through text nodes, never as HTML.

/**
 * h('div', { class: 'x', 'data-id': 3, onclick: fn }, child, [more], 'text'): attributes
 * that are null, undefined or false are left out, true is an empty attribute, `on…`
 * functions become listeners; children may be nodes, text or nested arrays.
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/** Runs `start` once the document is parsed (modules usually run after that already). */
export function whenReady(start) {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
