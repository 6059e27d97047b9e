// bench_tokenize.mjs: the JavaScript side of bench/bench_tokenize.sh.
//   node bench/bench_tokenize.mjs brown CORPUS_DIR OUT_DIR
//       strips the Brown corpus's "word/tag" tokens to words and writes
//       OUT_DIR/brown_all.txt, brown_train.txt (9 files in 10) and
//       brown_heldout.txt (every 10th file)
//   node bench/bench_tokenize.mjs truncate GPT2_DIR N OUT_DIR
//       GPT-2's vocabulary cut to its first N tokens (bytes + first N-256
//       merges): GPT-2's tokenizer at the size of a trained one
//   node bench/bench_tokenize.mjs speed TEXT LMC GPT2_DIR
//       single-threaded encode speed of lmc, tiktoken (WASM) and js-tiktoken
//       on the same text in the same run (best of 3 each; the same tokens)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const req = createRequire(path.join(root, 'tests', 'node', 'package.json'));

function brown(dir, out) {
    const files = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
    if (!files.length) throw new Error(`${dir}: no Brown corpus files (ca01 ...)`);
    const all = [], train = [], held = [];
    files.forEach((f, i) => {
        const raw = fs.readFileSync(path.join(dir, f), 'utf8');
        // "The/at Fulton/np-tl" -> "The Fulton": drop the last /tag of each token
        const text = raw.split('\n').map((line) => line.trim().split(/\s+/).filter(Boolean)
            .map((tok) => tok.replace(/\/[^/]*$/, '')).join(' ')).filter(Boolean).join('\n') + '\n';
        all.push(text);
        (i % 10 === 9 ? held : train).push(text);
    });
    fs.writeFileSync(path.join(out, 'brown_all.txt'), all.join('\n'));
    fs.writeFileSync(path.join(out, 'brown_train.txt'), train.join('\n'));
    fs.writeFileSync(path.join(out, 'brown_heldout.txt'), held.join('\n'));
    console.log(`brown: ${files.length} files, ${(Buffer.byteLength(all.join('\n')) / 1e6).toFixed(2)} MB of text`);
}

function truncate(dir, n, out) {
    const enc = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
    const lines = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n');
    const keep = Number(n) - 256; // GPT-2's merge i makes token 256 + i
    const small = Object.fromEntries(Object.entries(enc).filter(([, id]) => id < 256 + keep));
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'encoder.json'), JSON.stringify(small));
    fs.writeFileSync(path.join(out, 'vocab.bpe'), lines.slice(0, keep + 1).join('\n') + '\n');
}

function best(fn, reps = 3) {
    let t = Infinity, out;
    for (let i = 0; i < reps; i++) {
        const t0 = process.hrtime.bigint();
        out = fn();
        t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return { t, out };
}

function speed(file, lmc, gpt2) {
    const text = fs.readFileSync(file, 'utf8');
    const mb = Buffer.byteLength(text) / 1e6;
    const r = spawnSync(lmc, ['tokenizer', 'eval', '--tokenizer', gpt2, '--input', file, '--repeat', '3']);
    if (r.status !== 0) throw new Error(`lmc tokenizer eval failed: ${r.stderr}`);
    const m = /tokens (\d+) .*encode_seconds ([\d.]+)/.exec(r.stdout.toString());
    const lmcTokens = Number(m[1]), lmcT = Number(m[2]);
    const { get_encoding } = req('tiktoken');
    const wasm = get_encoding('gpt2');
    const w = best(() => wasm.encode_ordinary(text));
    wasm.free();
    const { getEncoding } = req('js-tiktoken');
    const js = getEncoding('gpt2');
    const j = best(() => js.encode(text, [], []), 2);
    const rows = [['lmc (C)', lmcT, lmcTokens], ['tiktoken (WASM)', w.t, w.out.length], ['js-tiktoken', j.t, j.out.length]];
    console.log(`encode ${mb.toFixed(2)} MB of English text with GPT-2's vocabulary, one thread, best of 3:`);
    for (const [name, t, n] of rows)
        console.log(`  ${name.padEnd(16)} ${(mb / t).toFixed(2).padStart(8)} MB/s  ${(t * 1e3).toFixed(0).padStart(6)} ms  ${n} tokens`);
    console.log(`  lmc / tiktoken    ${(w.t / lmcT).toFixed(1)}x`);
    console.log(`  lmc / js-tiktoken ${(j.t / lmcT).toFixed(1)}x`);
    if (lmcTokens !== w.out.length || lmcTokens !== j.out.length) {
        console.error('token counts differ: the encoders do not agree on this text');
        process.exit(1);
    }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'brown') brown(...args);
else if (cmd === 'speed') speed(...args);
else if (cmd === 'truncate') truncate(...args);
else {
    console.error('usage: bench_tokenize.mjs brown CORPUS_DIR OUT_DIR | truncate GPT2_DIR N OUT | speed TEXT LMC GPT2_DIR');
    process.exit(2);
}
