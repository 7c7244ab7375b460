// The lesson guides' Markdown as DOM nodes, built with createElement (never innerHTML): ATX
// headings, paragraphs, "-" and "1." lists (nested by indentation), indented and fenced code
// blocks, pipe tables, and inline `code`, **strong** and *emphasis*. That is all docs/lessons
// uses; anything else shows as the text it is.
import { el } from "./ui.js";

const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)/g;
const ITEM = /^(\s*)(-|\d+\.)\s+(.*)$/;

/** Text with inline marks as an array of nodes. */
export function inline(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) out.push(text.slice(last, match.index));
    const [token] = match;
    if (match[1]) out.push(el("code", { text: token.slice(1, -1) }));
    else if (match[2]) out.push(el("strong", {}, inline(token.slice(2, -2))));
    else out.push(el("em", {}, inline(token.slice(1, -1))));
    last = match.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const indentOf = (line) => line.length - line.trimStart().length;
const isBlank = (line) => line.trim() === "";

/** A list starting at lines[i] (its items at `indent`); returns [element, next index]. */
function list(lines, i, indent) {
  const ordered = /^\d+\./.test(lines[i].trim());
  const node = el(ordered ? "ol" : "ul");
  while (i < lines.length) {
    const m = lines[i].match(ITEM);
    if (!m || m[1].length !== indent) break;
    const text = [m[3]];
    const children = [];
    i += 1;
    while (i < lines.length && !isBlank(lines[i])) {
      const sub = lines[i].match(ITEM);
      if (sub && sub[1].length > indent) {
        const [nested, next] = list(lines, i, sub[1].length);
        children.push(nested);
        i = next;
      } else if (!sub && indentOf(lines[i]) > indent) {
        text.push(lines[i].trim());
        i += 1;
      } else break;
    }
    node.append(el("li", {}, inline(text.join(" ")), children));
    if (i < lines.length && isBlank(lines[i]) && (lines[i + 1] || "").match(ITEM)?.[1].length === indent) i += 1;
  }
  return [node, i];
}

function table(rows) {
  const cells = (row) => row.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
  const [head, , ...body] = rows;
  return el("table", { class: "data-table" },
    el("thead", {}, el("tr", {}, cells(head).map((c) => el("th", { scope: "col" }, inline(c))))),
    el("tbody", {}, body.map((row) => el("tr", {}, cells(row).map((c) => el("td", {}, inline(c)))))));
}

/** The whole document as a DocumentFragment. */
export function render(markdown) {
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  const out = document.createDocumentFragment();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) { i += 1; continue; }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      out.append(el(`h${heading[1].length}`, {}, inline(heading[2].trim())));
      i += 1;
    } else if (line.startsWith("```")) {
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith("```"); i += 1) code.push(lines[i]);
      out.append(el("pre", {}, el("code", { text: code.join("\n") })));
      i += 1;
    } else if (line.startsWith("    ")) {
      const code = [];
      while (i < lines.length && (lines[i].startsWith("    ") || isBlank(lines[i]))) code.push(lines[i++].slice(4));
      while (code.length && isBlank(code[code.length - 1])) code.pop();
      out.append(el("pre", {}, el("code", { text: code.join("\n") })));
    } else if (line.trimStart().startsWith("|")) {
      const rows = [];
      while (i < lines.length && lines[i].trimStart().startsWith("|")) rows.push(lines[i++]);
      out.append(table(rows));
    } else if (ITEM.test(line)) {
      const [node, next] = list(lines, i, indentOf(line));
      out.append(node);
      i = next;
    } else {
      const text = [];
      while (i < lines.length && !isBlank(lines[i]) && !/^(#{1,6}\s|```|\s*\||    )/.test(lines[i]) && !ITEM.test(lines[i])) {
        text.push(lines[i++].trim());
      }
      if (!text.length) text.push(lines[i++].trim()); // never stall on a line no rule takes
      out.append(el("p", {}, inline(text.join(" "))));
    }
  }
  return out;
}
