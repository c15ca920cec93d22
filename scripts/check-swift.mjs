#!/usr/bin/env node
// Syntax check of Swift sources with tree-sitter + tree-sitter-swift (there is
// no Swift compiler on the Linux build machines). Usually run through
// scripts/check-swift.sh, which adds a self-test and the C header check.
//
//   node scripts/check-swift.mjs FILE_OR_DIR...
//
// tree-sitter and tree-sitter-swift are loaded from build/tools/node_modules
// (scripts/install-tools.sh), or from $REPERE_NODE_TOOLS/node_modules.
//
// Directories are searched recursively for *.swift (skipping .build/, build/,
// DerivedData/, Pods/, node_modules/, .git/). Every ERROR or MISSING node is
// reported as `file:line:col: ...`; the exit status is 1 if there is any, 2 on
// usage errors or if no Swift file was found.
//
// Conditional compilation: tree-sitter-swift 0.7.1 misparses `#if` blocks in
// some positions (e.g. uniffi's generated `#if swift(>=5.8)
// @_documentation(visibility: private) #endif` before a declaration), so the
// `#if`/`#elseif`/`#else`/`#endif` lines are resolved here first. Directive
// lines and inactive lines are replaced by blank lines (line numbers are kept).
//   * Groups whose conditions are only Swift/compiler version tests
//     (`swift(>=5.8)`, `compiler(<6)`) are resolved statically, assuming a
//     recent Swift: `>=` is true, `<` is false. Their inactive branches are not
//     parsed (Swift does not parse them either: they may hold newer syntax).
//   * Every other condition (`canImport(UIKit)`, `os(iOS)`, `DEBUG`,
//     `targetEnvironment(simulator)`, ...) is unknown. Swift requires every
//     branch of such a group to be syntactically valid, so the file is parsed
//     once per branch: pass 0 takes the first branch of each group (unknown
//     conditions count as true), pass k takes branch k (or the last one of
//     groups with fewer branches). Errors of all passes are reported (once).
//     A group without `#else` is also tried with no branch active.
//
// Other false positives of tree-sitter-swift 0.7.1 (valid Swift it rejects)
// are rewritten before parsing, see rewriteFalsePositives below; what is not
// rewritten is listed there too. Found by running this checker on uniffi
// generated bindings (element-hq/matrix-rust-components-swift, 1.8 MB),
// apple/swift-async-algorithms and a SwiftUI app (Dimillian/IceCubesApp), and
// on hand-written samples of async/await, actors, AsyncStream, SwiftUI views
// with @State/@StateObject/@Published/@Binding/@Environment, @Observable,
// protocols with (primary) associated types, enums with associated values,
// trailing and multiple trailing closures, result builders, property wrappers,
// ~Copyable, parameter packs, regex literals, if/switch expressions: all
// parsed fine apart from the constructs listed.
//
// Known limits: this is a parser, not a type checker (unknown names, types and
// members are not errors). tree-sitter recovers from errors, so one mistake
// may be reported at a few places, sometimes as one ERROR spanning a whole
// declaration (reported at its start). A misspelled keyword that still reads
// as an expression (e.g. `fucn f()`) is reported at the next token.

import { createRequire } from 'node:module';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeTools = process.env.REPERE_NODE_TOOLS || path.join(here, '..', 'build', 'tools');
if (!existsSync(path.join(nodeTools, 'node_modules', 'tree-sitter-swift'))) {
  console.error(`check-swift: tree-sitter-swift not found under ${nodeTools}/node_modules; run scripts/install-tools.sh`);
  process.exit(2);
}
const require = createRequire(path.join(nodeTools, 'package.json'));
const Parser = require('tree-sitter');
const Swift = require('tree-sitter-swift');

// ---------------------------------------------------------------------------
// #if resolution

const DIRECTIVE = /^\s*#(if|elseif|else|endif)\b(.*)$/;

function stripComment(s) {
  const i = s.indexOf('//');
  return (i >= 0 ? s.slice(0, i) : s).replace(/\/\*.*?\*\//g, '').trim();
}

// Platform condition functions Swift accepts in `#if`.
const CONDITION_FUNCTIONS = new Set([
  'swift', 'compiler', 'canImport', 'os', 'arch', 'targetEnvironment', 'hasFeature',
  'hasAttribute', '_endian', '_pointerBitWidth', '_runtime', '_hasAtomicBitWidth',
]);

// Evaluates a condition in three-valued logic: true, false or null (unknown).
// Only swift()/compiler() version tests and the literals true/false are known.
// Returns { value, error }: error describes a malformed condition.
function evalCondition(src) {
  const toks = src.match(/&&|\|\||!|\(|\)|[A-Za-z_][A-Za-z0-9_]*\s*\([^()]*\)|[A-Za-z_][A-Za-z0-9_]*|\S+/g) || [];
  let pos = 0;
  let error = toks.length ? null : 'empty condition';
  const fail = (msg) => { error = error || msg; return null; };
  const peek = () => toks[pos];
  const next = () => toks[pos++];
  const or = () => {
    let v = and();
    while (peek() === '||') { next(); const r = and(); v = (v === true || r === true) ? true : (v === false && r === false) ? false : null; }
    return v;
  };
  const and = () => {
    let v = unary();
    while (peek() === '&&') { next(); const r = unary(); v = (v === false || r === false) ? false : (v === true && r === true) ? true : null; }
    return v;
  };
  const unary = () => {
    if (peek() === '!') { next(); const v = unary(); return v === null ? null : !v; }
    if (peek() === '(') {
      next();
      const v = or();
      if (peek() !== ')') return fail("expected ')'");
      next();
      return v;
    }
    const t = next();
    if (t === undefined) return fail('unexpected end of condition');
    if (t === 'true') return true;
    if (t === 'false') return false;
    const call = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)$/.exec(t);
    if (call) {
      const [, name, arg] = call;
      if (!CONDITION_FUNCTIONS.has(name)) return fail(`unknown platform condition ${name}(...)`);
      if (name === 'swift' || name === 'compiler') {
        const m = /^\s*(>=|<)\s*\d+(\.\d+)*\s*$/.exec(arg);
        return m ? m[1] === '>=' : fail(`malformed ${name}(${arg})`);
      }
      if (!/^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*_version\s*:\s*[\d.]+)?\s*$/.test(arg)) return fail(`malformed ${name}(${arg})`);
      return null;
    }
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(t)) return null; // a compilation flag (DEBUG, ...)
    return fail(`unexpected '${t}'`);
  };
  const value = or();
  if (pos !== toks.length) fail(`unexpected '${toks[pos]}'`);
  return { value: error ? null : value, error };
}

// Parses the directive structure. Returns { groups, error } where each group is
// { branches: [{ line, value }], endLine, hasElse, static, staticChoice,
// choices }, value being the three-valued condition (#else: true).
function scanDirectives(lines) {
  const groups = [];
  const stack = [];
  let inMultilineString = false;
  for (let i = 0; i < lines.length; i++) {
    // Lines inside a multi-line string literal ("""...""") are not directives.
    const wasInString = inMultilineString;
    if (((lines[i].match(/"""/g) || []).length) % 2 === 1) inMultilineString = !inMultilineString;
    if (wasInString) continue;
    const m = DIRECTIVE.exec(lines[i]);
    if (!m) continue;
    const [, kw, rest] = m;
    const cond = stripComment(rest);
    if (kw === 'if') {
      const c = evalCondition(cond);
      if (c.error) return { error: { line: i, msg: `#if ${cond}: ${c.error}` } };
      const g = { branches: [{ line: i, value: c.value }], endLine: -1, hasElse: false };
      groups.push(g);
      stack.push(g);
    } else {
      const g = stack[stack.length - 1];
      if (!g) return { error: { line: i, msg: `#${kw} without #if` } };
      if (kw === 'endif') { g.endLine = i; stack.pop(); continue; }
      if (g.hasElse) return { error: { line: i, msg: `#${kw} after #else` } };
      let value = true;
      if (kw === 'else') {
        if (cond) return { error: { line: i, msg: `unexpected text after #else: ${cond}` } };
        g.hasElse = true;
      } else {
        const c = evalCondition(cond);
        if (c.error) return { error: { line: i, msg: `#elseif ${cond}: ${c.error}` } };
        value = c.value;
      }
      g.branches.push({ line: i, value });
    }
  }
  if (stack.length) return { error: { line: stack[stack.length - 1].branches[0].line, msg: '#if without #endif' } };
  for (const g of groups) {
    // Static (resolved once) if every condition is known, i.e. only
    // swift()/compiler() tests, true or false.
    g.static = g.branches.every((b) => b.value !== null);
    if (g.static) {
      const k = g.branches.findIndex((b) => b.value === true);
      g.staticChoice = k; // -1: no branch active
    }
    // Choices to try for non-static groups: each branch, plus "none" without #else.
    g.choices = g.static ? 1 : g.branches.length + (g.hasElse ? 0 : 1);
  }
  return { groups };
}

// Text of pass `pass`: inactive and directive lines blanked.
function resolvePass(lines, groups, pass) {
  const active = new Array(lines.length).fill(true);
  for (const g of groups) {
    let choice;
    if (g.static) choice = g.staticChoice;
    else {
      choice = Math.min(pass, g.choices - 1);
      if (choice >= g.branches.length) choice = -1; // the implicit empty #else
    }
    const bounds = g.branches.map((b) => b.line).concat([g.endLine]);
    for (let b = 0; b < g.branches.length; b++) {
      active[bounds[b]] = false; // the directive line itself
      if (b !== choice) for (let i = bounds[b] + 1; i < bounds[b + 1]; i++) active[i] = false;
    }
    active[g.endLine] = false;
  }
  return lines.map((l, i) => (active[i] ? l : '')).join('\n');
}

// ---------------------------------------------------------------------------
// Valid Swift that tree-sitter-swift 0.7.1 rejects (false positives), rewritten
// to an equivalent form it accepts. Each rewrite keeps line and column numbers
// (same length, no newline touched) and only matches text that is valid Swift
// where it stands, so it cannot hide an error:
//   nonisolated(unsafe)        -> blanked               (SE-0412; the grammar
//   nonisolated(nonsending)       knows no nonisolated on local variables)
//   throws(T)                  -> throws                (typed throws, SE-0413;
//                                 only if T is a plain type: A.B, G<A, B>?,
//                                 any P & Q; may span lines)
//   -> sending Type            -> -> Type               (SE-0430, result only)
//   do throws(E) {             -> do {                  (typed throws)
//   consume x (after = ( , return switch) -> x          (SE-0366 operator)
//   await X                    -> X                     (the grammar rejects
//                                 `if await x.isEmpty {`, `while let x = try
//                                 await it.next() {`; `await` is a prefix
//                                 operator: removing it keeps the syntax valid
//                                 or invalid. Kept in `for [try] await`.)
//   ()  as an expression       -> 00                    (the empty tuple is not
//                                 an expression for the grammar: `{ () }`, which
//                                 uniffi generates, `return ()`, `.success(())`,
//                                 `case .a: ()`). Only a `()` after ( , = [ { :
//                                 return / in and before ) , ] } ; // or the end
//                                 of the line; a Void type in such a place
//                                 (`typealias V = ()`, `func f(_ x: ())`) is
//                                 then reported: write `Void` there.)
//   #error("…") / #warning("…") alone on a line -> blanked (reached when an
//                                 `#else` branch is checked, see above)
// Not rewritten, hence reported as errors (seen in apple/swift-async-algorithms;
// and IceCubesApp; rewrite the Swift or extend this with care; none is common
// in app code or uniffi output):
//   * parameter types `isolation: isolated (any Actor)? = #isolation` and
//     `_ x: consuming sending T` (a blind rewrite of `sending`/`isolated`
//     after `:` could hide an error);
//   * a protocol composition continued on the next line by a leading `&`
//     (`typealias C = A\n    & B`): keep it on one line;
//   * a function type with an attribute used as a value:
//     `(@Sendable (X) -> Void).self`;
//   * a variable named `final`; a body-less `@_silgen_name` function.

const spaces = (n) => ' '.repeat(n);
const blank = (s) => s.replace(/[^\n]/g, ' '); // keeps newlines

// True if `src` is a type in this small grammar (enough for thrown types):
//   type   := ('any' | 'some')? simple ('&' simple)*
//   simple := IDENT ('.' IDENT)* ('<' type (',' type)* '>')? '?'*
function isSimpleTypeSyntax(src) {
  const toks = src.match(/[A-Za-z_][A-Za-z0-9_]*|\S/g) || [];
  let pos = 0;
  const ident = () => /^[A-Za-z_]/.test(toks[pos] || '') && ++pos;
  const simple = () => {
    if (!ident()) return false;
    while (toks[pos] === '.') { pos++; if (!ident()) return false; }
    if (toks[pos] === '<') {
      pos++;
      if (!type()) return false;
      while (toks[pos] === ',') { pos++; if (!type()) return false; }
      if (toks[pos++] !== '>') return false;
    }
    while (toks[pos] === '?') pos++;
    return true;
  };
  const type = () => {
    if (toks[pos] === 'any' || toks[pos] === 'some') pos++;
    if (!simple()) return false;
    while (toks[pos] === '&') { pos++; if (!simple()) return false; }
    return true;
  };
  return type() && pos === toks.length;
}

// `throws(T)` -> `throws` + blanks, when T is a type; `do throws(T) {` and
// `do throws {` -> `do` + blanks.
function rewriteTypedThrows(text) {
  return text
    .replace(/\bthrows\(([^()]*)\)/g, (m, t) => (isSimpleTypeSyntax(t) ? 'throws' + blank(m.slice(6)) : m))
    .replace(/\bdo([ \t]+)(throws[ \t\n]*)(?=\{)/g, (_m, a, t) => 'do' + a + blank(t));
}

function rewriteFalsePositives(text) {
  return rewriteTypedThrows(text)
    .replace(/\bnonisolated\((?:unsafe|nonsending)\)/g, (m) => spaces(m.length))
    .replace(/(?<=(?:[=(,]|\breturn|\bswitch)[ \t]*)consume([ \t]+)(?=[A-Za-z_])/g, (m) => spaces(m.length))
    .replace(/->([ \t]*)sending([ \t]+)(?=[A-Za-z_(\[])/g, (_m, a, b) => '->' + a + spaces(7) + b)
    .replace(/(?<!\bfor[ \t]+(?:try[ \t]+)?)\bawait\b(?=[ \t]*[^ \t\n])/g, spaces(5))
    .replace(/(?<=(?:[(,=\[{:]|\breturn|\bin)[ \t]*)\(\)(?=[ \t]*(?:[),\]};]|\/\/|$))/gm, '00')
    .replace(/^([ \t]*)#(error|warning)([ \t]*\([ \t]*"[^"\\]*"[ \t]*\)[ \t]*)$/gm, (m) => spaces(m.length));
}

// ---------------------------------------------------------------------------
// parsing and reporting

const parser = new Parser();
parser.setLanguage(Swift);

function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function positionOf(starts, index) {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (starts[mid] <= index) lo = mid; else hi = mid - 1; }
  return { line: lo + 1, col: index - starts[lo] + 1 };
}

function snippet(text, start, end) {
  let s = text.slice(start, Math.min(end, start + 60)).replace(/\s+/g, ' ').trim();
  if (end - start > 60) s += '…';
  return s;
}

// Collects outermost ERROR nodes and all MISSING nodes. A MISSING token can be
// hidden (e.g. inside simple_identifier, not visible to the cursor): a node that
// has an error but none was found among its visible descendants is reported
// itself.
function collectErrors(text) {
  const tree = parser.parse(text, undefined, { bufferSize: Math.max(64 * 1024, text.length * 2 + 1024) });
  const out = [];
  if (!tree.rootNode.hasError) return out;
  const starts = lineStarts(text);
  const cursor = tree.walk();
  const report = (node, msg) => out.push({ ...positionOf(starts, node.startIndex), msg });
  // Returns the number of errors reported in the current node's subtree.
  const visit = () => {
    const node = cursor.currentNode;
    if (node.isMissing) { report(node, `missing ${node.type}`); return 1; }
    if (node.type === 'ERROR') {
      // Do not report errors nested in this one.
      report(node, `syntax error near: ${snippet(text, node.startIndex, node.endIndex)}`);
      return 1;
    }
    if (!node.hasError) return 0;
    let n = 0;
    if (cursor.gotoFirstChild()) {
      do n += visit(); while (cursor.gotoNextSibling());
      cursor.gotoParent();
    }
    if (n === 0) {
      report(node, node.startIndex === node.endIndex
        ? `missing ${node.type}`
        : `syntax error in ${node.type}: ${snippet(text, node.startIndex, node.endIndex)}`);
      n = 1;
    }
    return n;
  };
  visit();
  return out;
}

function checkFile(file) {
  const text = readFileSync(file, 'utf8').replace(/\r\n?/g, '\n');
  const lines = text.split('\n');
  const { groups, error } = scanDirectives(lines);
  if (error) return [{ line: error.line + 1, col: 1, msg: error.msg }];
  const passes = Math.max(1, ...groups.map((g) => g.choices));
  const seen = new Map();
  for (let pass = 0; pass < passes; pass++) {
    for (const e of collectErrors(rewriteFalsePositives(resolvePass(lines, groups, pass)))) {
      const key = `${e.line}:${e.col}`;
      if (!seen.has(key)) seen.set(key, passes > 1 && pass > 0 ? { ...e, msg: `${e.msg} (with #if branch ${pass})` } : e);
    }
  }
  return [...seen.values()].sort((a, b) => a.line - b.line || a.col - b.col);
}

// ---------------------------------------------------------------------------

const SKIP_DIRS = new Set(['.build', 'build', 'DerivedData', 'Pods', 'node_modules', '.git']);

function findSwift(p, acc) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const e of readdirSync(p).sort()) {
      const child = path.join(p, e);
      if (statSync(child).isDirectory()) { if (!SKIP_DIRS.has(e)) findSwift(child, acc); }
      else if (e.endsWith('.swift')) acc.push(child);
    }
  } else acc.push(p); // explicit file arguments are checked whatever their name
  return acc;
}

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('-h') || args.includes('--help')) {
  console.error('usage: check-swift.mjs FILE_OR_DIR...');
  process.exit(2);
}
const files = [];
for (const a of args) {
  if (!existsSync(a)) { console.error(`check-swift: no such file or directory: ${a}`); process.exit(2); }
  findSwift(a, files);
}
if (files.length === 0) {
  console.error(`check-swift: no .swift files in ${args.join(' ')}`);
  process.exit(2);
}
let bad = 0, total = 0;
for (const f of files) {
  const errs = checkFile(f);
  total += errs.length;
  if (errs.length) bad++;
  for (const e of errs) console.log(`${f}:${e.line}:${e.col}: ${e.msg}`);
}
console.log(`check-swift: ${files.length} file(s), ${bad} with errors, ${total} error(s)`);
process.exit(bad ? 1 : 0);
