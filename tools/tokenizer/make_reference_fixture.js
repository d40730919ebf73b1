#!/usr/bin/env node
// Regenerates tests/data/tokenizers/reference_fixture.json: texts (written
// here or generated from a fixed seed), and the ids / decoded text that
// Hugging Face `tokenizers` produces for them with the GPT-2 and
// GPT-NeoX-20B tokenizer.json files and with variants of the GPT-2 file
// (other normalizers, pre-tokenizers, post-processors and added tokens).
//
// Development tool only: the build and the tests never run it. It needs
// the npm package `tokenizers` (Hugging Face's Rust library with Node
// bindings), installed outside the repository:
//
//   mkdir -p /tmp/tokref && (cd /tmp/tokref && npm install tokenizers@0.23.2)
//   NODE_PATH=/tmp/tokref/node_modules node tools/tokenizer/make_reference_fixture.js
//
// Run from the repository root. Texts given as bytes that are not valid
// UTF-8 are decoded by Node with U+FFFD replacement (WHATWG "maximal
// subpart"), which is what Blockserve's Encode does with such input.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const DATA = 'tests/data/tokenizers';
const OUT = path.join(DATA, 'reference_fixture.json');

// mulberry32: a small seeded PRNG, so the fixture is reproducible.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}

// Sentences written for this fixture (no external text).
const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  "It's a test: we'll see if they've got it, I'm sure you'd agree. DON'T SHOUT, it'S fine.",
  '  Two leading spaces, three trailing   ',
  'Tabs\tand\t\tnew\nlines\n\n\nand\r\nCRLF\r\n',
  'Numbers: 3, 33, 333, 3333, 1,234,567.89 and 2024-05-01T12:34:56Z.',
  'Ünïcödé wörds: Äpfel, Straße, façade, naïve, coöperate, résumé.',
  'Le cœur a ses raisons que la raison ne connaît point.',
  'El niño comió piñas y jalapeños en la mañana.',
  'Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός.',
  '我想在苹果公司工作，每天学习新的东西。',
  '日本語のテキストです。カタカナとひらがな、漢字。',
  '한국어 텍스트입니다. 안녕하세요!',
  'مرحبا بالعالم، هذا نص عربي.',
  'שלום עולם, זה טקסט בעברית.',
  'हिन्दी में कुछ पाठ, नमस्ते दुनिया।',
  'ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรคระหว่างคำ',
  'Tiếng Việt có dấu: Cửa Việt, người Việt Nam.',
  'កាន់តែពិសេសអាចខលចេញ',
  'Emoji: 🚀 😶‍🌫️ 👍🏽 🦙.cpp ✅ ❤️ 🇺🇳 👨‍👩‍👧‍👦',
  'Combining: e\u0301 a\u0308 o\u0302\u0323 \u1100\u1161\u11a8 A\u030a',
  'Compatibility: ﬁ ﬀ ½ ² ① Ⅻ ㎏ ｆｕｌｌｗｉｄｔｈ ℌ Ω K Å',
  'Spaces: a\u00a0b\u2000c\u3000d\u2028e\u2029f\u0085g\u1680h\u202fi\u205fj',
  'Code: for (int i = 0; i < n; ++i) { sum += x[i] * y[i]; }  // dot',
  '    def f(x):\n        return x ** 2\n\n\n    print(f(3))\n',
  '<|endoftext|>Special tokens inside<|endoftext|> text <|padding|>.',
  'Runs of spaces:' + ' '.repeat(30) + 'x' + ' '.repeat(24) + 'y  z',
  "Apostrophes: ’s 's 'S 'll 'LL 'Re 're 've 'VE 'm 'M 'd 'D ''s ſ 'ſ",
  'Mixed123abc ４５６ ٣٤٥ १२३ x²y³ 3.14159e-10',
  'Punctuation!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]]',
  'URL https://example.com/a/b?c=d&e=f#g and e-mail someone@example.org',
  '\u0000\u0001\u001f\u007f control characters \ufeff BOM \u200b ZWSP',
];

// Random text from a weighted alphabet that stresses the split rules.
const ALPHABET = [
  [30, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'],
  [8, '0123456789'], [25, ' '], [4, '\t\n\r\u000b\u000c'], [3, "'"],
  [3, 'sStTdDmMlLrReEvV'], [6, '.,;:!?-_()[]{}<>|/\\"#$%&*+=@^`~'],
  [3, '\u00a0\u2000\u2009\u200a\u3000\u0085\u2028\u2029\u1680\u202f\u205f\u180e\ufeff'],
  [4, 'éèàçñüöäßÄÖÜœøåÆ'], [4, '\u0301\u0300\u0308\u0327\u030a\u0323\u0302'],
  [4, 'ěščřžýáíúůйцукенгшщзхъфывапролджэячсмитьбюΑαΒβΓγ'],
  [4, '我想在工作天中文字日本語のテキストです한국어텍스트'],
  [2, '\u1100\u1161\u11a8\uac00'], [3, '😀😁🚀🦙✅👍🏽\u200d\u200c\ufe0f🌫'],
  [2, '½²³¼⅓①Ⅻ٣۴०१๒'], [2, 'ſﬁﬀK\u212aΩ\u2126Å\u212b'],
  [2, '\u0e01\u0e32\u0e33\u17a2\u17b6\u0915\u093f\u094d'],
];
const PIECES = ['<|endoftext|>', '<|padding|>', '<mask>', ' <mask> ', '[DAY]', 'é',
  'e\u0301', 'ony', 'Tony', ' ony ', '  \t', '\t<mask>\t', 'Ωmega', '\u2126mega', 'hello',
  '<sep>', ' <sep>', ' x ', ' x  x ', 'ᄀ', '\u1100\u1161', "'S", "'LL", '123456', '\r\n',
  ' \r\n\r\n  ', '  ', '   '];

function randomText(r, length) {
  const total = ALPHABET.reduce((s, [w]) => s + w, 0);
  let out = '';
  for (let i = 0; i < length; ++i) {
    const x = r.next();
    if (x < 0.03) { out += r.pick(PIECES); continue; }
    if (x < 0.05) { out += ' '.repeat(r.int(2, 40)); continue; }
    let w = r.next() * total;
    let chars = ALPHABET[0][1];
    for (const [weight, set] of ALPHABET) {
      if ((w -= weight) < 0) { chars = set; break; }
    }
    out += r.pick(Array.from(chars));
  }
  return out;
}

function randomInvalidBytes(r) {
  const bytes = Array.from(Buffer.from(randomText(r, r.int(1, 25)), 'utf8'));
  const count = r.int(1, 3);
  for (let i = 0; i < count && bytes.length; ++i) {
    const at = r.int(0, bytes.length - 1);
    const op = r.next();
    if (op < 0.4) bytes[at] = r.int(0, 255);
    else if (op < 0.7) bytes.splice(at, 1);
    else bytes.splice(at, 0, r.pick([0x80, 0xbf, 0xc0, 0xc1, 0xc3, 0xe0, 0xe2, 0xed, 0xf0, 0xf4, 0xf5, 0xff]));
  }
  return Buffer.from(bytes);
}

function proseText(r, bytes) {
  const words = ['the', 'a', 'tokenizer', 'model', 'block', 'context', 'decoder', 'is', 'was',
    "isn't", "we'll", 'fast', 'Blockserve', 'streams', 'text', 'to', 'clients', 'and', 'of',
    'in', 'on', 'GPU', 'CPU', '2024', '3.5', 'e.g.', '(see', 'below)', 'naïve', 'café',
    'über', 'Москва', '東京', '—', '“quoted”', 'it’s'];
  let out = '';
  while (out.length < bytes) {
    const n = r.int(4, 18);
    const sentence = [];
    for (let i = 0; i < n; ++i) sentence.push(r.pick(words));
    let s = sentence.join(' ');
    s = s[0].toUpperCase() + s.slice(1) + r.pick(['.', '.', '!', '?', ':', ';']);
    out += s + r.pick([' ', ' ', ' ', '  ', '\n', '\n\n', '\t']);
  }
  return out;
}

// HF assigns added-token ids itself (the vocabulary's id, else the next id
// after the vocabulary and earlier added tokens); the fixture uses those.
function assignIds(added, vocab) {
  const size = Object.keys(vocab).length;
  let max = -1;
  return added.map((t) => {
    let id;
    if (Object.prototype.hasOwnProperty.call(vocab, t.content)) id = vocab[t.content];
    else if (max < 0) id = size;
    else id = max >= size ? max + 1 : size;
    max = Math.max(max, id);
    return { id, ...t };
  });
}

function token(content, options = {}) {
  const special = !!options.special;
  return {
    content, single_word: !!options.single_word, lstrip: !!options.lstrip,
    rstrip: !!options.rstrip,
    normalized: options.normalized === undefined ? !special : options.normalized, special,
  };
}

const ADDED = [
  token('<|endoftext|>', { special: true, normalized: false }),
  token('<mask>', { special: true, single_word: true, lstrip: true, rstrip: true, normalized: false }),
  token('[DAY]', { rstrip: true, normalized: false }),
  token('é', { normalized: true }),
  token('ony', { single_word: true }),
  token('  \t', { normalized: false, lstrip: true }),
  token('Ωmega'),
  token('hello'),
  token('<sep>', { special: true, lstrip: true, normalized: true }),
  token(' x ', { rstrip: true, normalized: true }),
  token('ᄀ', { normalized: true }),
];

const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const CL100K_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = CL100K_REGEX.replace('\\p{N}{1,3}', '\\p{N}');
const byteLevel = (addPrefixSpace, useRegex) => ({
  type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: useRegex });
const split = (regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
const TEMPLATE = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
    { SpecialToken: { id: '<mask>', type_id: 0 } }],
  pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: {
    '<|endoftext|>': { id: '<|endoftext|>', ids: [50256], tokens: ['<|endoftext|>'] },
    '<mask>': { id: '<mask>', ids: [50257], tokens: ['<mask>'] },
  },
};

// Patches of the GPT-2 tokenizer.json: top-level fields are replaced, and
// the fields under "model" are replaced one by one.
function variants(vocab) {
  const added = assignIds(ADDED, vocab);
  return [
    { name: 'gpt2-added-nfc', patch: { normalizer: { type: 'NFC' }, added_tokens: added } },
    { name: 'gpt2-added-nfkc-nfd', patch: {
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'NFD' }] }, added_tokens: added } },
    { name: 'gpt2-prefix-space-nfkd', patch: {
      normalizer: { type: 'NFKD' }, pre_tokenizer: byteLevel(true, true), added_tokens: added } },
    { name: 'gpt2-cl100k-template', patch: {
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split(CL100K_REGEX), byteLevel(false, false)] },
      post_processor: { type: 'Sequence', processors: [byteLevel(false, true), TEMPLATE] },
      added_tokens: added, model: { ignore_merges: true } } },
    { name: 'gpt2-qwen2-nfc', patch: {
      normalizer: { type: 'NFC' },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split(QWEN2_REGEX), byteLevel(false, false)] },
      added_tokens: added } },
    { name: 'gpt2-digits-roberta', patch: {
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Digits', individual_digits: true }, split(GPT2_REGEX), byteLevel(true, false)] },
      post_processor: { type: 'RobertaProcessing', sep: ['<mask>', 50257], cls: ['<|endoftext|>', 50256],
        trim_offsets: true, add_prefix_space: false },
      added_tokens: added } },
  ];
}

function applyPatch(json, patch) {
  const out = JSON.parse(JSON.stringify(json));
  for (const [key, value] of Object.entries(patch)) {
    if (key === 'model') Object.assign(out.model, value);
    else out[key] = value;
  }
  return out;
}

async function main() {
  const r = rng(20240601);
  const texts = [];  // Buffers
  for (const s of SENTENCES) texts.push(Buffer.from(s, 'utf8'));
  const fuzzStart = texts.length;
  for (let i = 0; i < 110; ++i) texts.push(Buffer.from(randomText(r, r.int(0, 60)), 'utf8'));
  for (let i = 0; i < 30; ++i) texts.push(randomInvalidBytes(r));
  const fuzzEnd = texts.length;
  texts.push(Buffer.from(proseText(r, 6000), 'utf8'));
  texts.push(Buffer.from(randomText(r, 3000), 'utf8'));
  texts.push(Buffer.from('x'.repeat(150) + 'abcab'.repeat(300) + ' ' + '7'.repeat(500), 'utf8'));

  const entries = texts.map((b) => {
    const s = b.toString('utf8');
    return Buffer.from(s, 'utf8').equals(b) ? { text: s } : { hex: b.toString('hex') };
  });
  const strings = texts.map((b) => b.toString('utf8'));

  const encodeAll = async (tok, indices, addSpecial) => {
    const out = [];
    for (const i of indices) {
      const enc = await tok.encode(strings[i], null, { addSpecialTokens: addSpecial });
      out.push(enc.getIds());
    }
    return out;
  };
  const range = (a, b) => Array.from({ length: b - a }, (_, k) => a + k);
  const all = range(0, texts.length);

  const tokenizers = [];
  const decodes = [];
  const gpt2Json = JSON.parse(fs.readFileSync(path.join(DATA, 'gpt2/tokenizer.json'), 'utf8'));
  for (const name of ['gpt2', 'gpt-neox-20b']) {
    const tok = Tokenizer.fromFile(path.join(DATA, name, 'tokenizer.json'));
    tokenizers.push({ name, base: name, patch: null, texts: all, encode: await encodeAll(tok, all, false) });
    const size = tok.getVocabSize(true);
    const added = JSON.parse(fs.readFileSync(path.join(DATA, name, 'tokenizer.json'), 'utf8'))
      .added_tokens.map((t) => t.id);
    for (let i = 0; i < 60; ++i) {
      const ids = [];
      const n = r.int(0, 16);
      for (let k = 0; k < n; ++k) {
        const x = r.next();
        ids.push(x < 0.5 ? r.int(0, 300) : x < 0.6 ? r.pick(added) : r.int(0, size - 1));
      }
      const skip = i % 2 === 1;
      decodes.push({ tokenizer: name, ids, skip_special: skip, text: await tok.decode(ids, skip) });
    }
  }
  const fuzz = range(0, fuzzEnd);
  for (const v of variants(gpt2Json.model.vocab)) {
    const tok = Tokenizer.fromString(JSON.stringify(applyPatch(gpt2Json, v.patch)));
    const entry = { name: v.name, base: 'gpt2', patch: v.patch, texts: fuzz,
      encode: await encodeAll(tok, fuzz, false) };
    if (v.patch.post_processor) {
      entry.special_texts = range(fuzzStart, fuzzStart + 30);
      entry.encode_special = await encodeAll(tok, entry.special_texts, true);
    }
    tokenizers.push(entry);
  }
  const fixture = {
    about: 'Reference tokenizations by Hugging Face tokenizers (npm package tokenizers@0.23.2); ' +
      'regenerate with tools/tokenizer/make_reference_fixture.js. texts[i] is {text} or, for ' +
      'bytes that are not valid UTF-8, {hex}. Each tokenizer is tests/data/tokenizers/<base>/' +
      'tokenizer.json with `patch` applied (top-level fields replaced, fields under "model" ' +
      'replaced one by one); encode[k] holds the ids of texts[texts[k]] without special tokens, ' +
      'encode_special[k] those of texts[special_texts[k]] with them.',
    texts: entries,
    tokenizers,
    decode: decodes,
  };
  // One entry per line keeps the file readable and its diffs small.
  const lines = ['{'];
  lines.push(`"about": ${JSON.stringify(fixture.about)},`);
  lines.push('"texts": [');
  lines.push(entries.map((e) => JSON.stringify(e)).join(',\n'));
  lines.push('],');
  lines.push('"tokenizers": [');
  lines.push(tokenizers.map((t) => {
    const head = JSON.stringify({ name: t.name, base: t.base, patch: t.patch, texts: t.texts,
      special_texts: t.special_texts });
    const enc = t.encode.map((ids) => JSON.stringify(ids)).join(',\n');
    const special = t.encode_special
      ? `,\n"encode_special": [\n${t.encode_special.map((ids) => JSON.stringify(ids)).join(',\n')}\n]`
      : '';
    return `${head.slice(0, -1)},\n"encode": [\n${enc}\n]${special}}`;
  }).join(',\n'));
  lines.push('],');
  lines.push('"decode": [');
  lines.push(decodes.map((d) => JSON.stringify(d)).join(',\n'));
  lines.push(']');
  lines.push('}');
  fs.writeFileSync(OUT, lines.join('\n') + '\n');
  console.log(`wrote ${OUT}: ${texts.length} texts, ${tokenizers.length} tokenizers, ${decodes.length} decodes`);
}

main().catch((e) => { console.error(e); process.exit(1); });
