// test_gguf.mjs: lmc's GGUF files in llama.cpp's ecosystem. Trains a tiny
// GPT-2 and a tiny Llama (GQA, untied) on GPT-2's tokenizer, exports each as
// f32, f16, bf16 and q8_0, and checks, against node-llama-cpp's prebuilt
// llama.cpp (CPU, no download, no build):
//  - it loads the f32 exports and tokenizes varied text to the ids of
//    `lmc encode` (and of `lmc encode --tokenizer x.gguf`);
//  - its greedy continuation equals `lmc generate --temperature 0` token for
//    token, and the chosen tokens' log-probabilities agree within 1e-2
//    (measured up to 2e-3: ggml's CPU GELU reads an fp16 table);
//  - for q8_0 the first tokens agree and llama.cpp's log-probabilities stay
//    within 0.08 of lmc's int8 path (both quantize: llama.cpp q8_0 weights
//    and q8_0 activations in its dot products, lmc the same q8_0 values
//    re-quantized per row with fp32 activations; measured up to 1.6e-2);
//  - @huggingface/gguf reads every export's metadata and tensor list
//    (names, shapes, types, offsets, parameter count);
//  - `lmc serve --model x.gguf` (no --tokenizer) answers a completion.
// Usage: LMC=build/lmc node tests/node/test_gguf.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import * as L from './lib_server.mjs';

const { check, llamaGreedy, lmcGreedy } = L;

const dir = L.tmpdir();
const TYPES = ['f32', 'f16', 'bf16', 'q8_0'];
const TEXTS = [
  'The cat sat on the red door.',
  "Hello world, it's 12:30 and I'll say: we've won! They'd've known.",
  '  leading spaces,\ttabs\t\tand\n\nnewlines   \n  trailing   ',
  'Numbers 1 22 333 4444 55555 3.14159 1e-9 0x1F -7',
  'Accents: café naïve résumé Ångström; CJK: 你好世界; emoji: 🦙🚀 ok',
  'def f(x):\n    return {"a": [1, 2], \'b\': x ** 2}  # comment\n',
  'text with <|endoftext|> inside stays ordinary text',
  '----====....!!!???\'\'\'```""" ...',
];

function ids(text) {
  return text.trim().split(/\s+/).filter((x) => x).map(Number);
}

async function encode(tok, text) {
  const r = await new Promise((resolve, reject) => {
    const p = spawn(L.LMC, ['encode', '--tokenizer', tok], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
    p.stdin.end(text);
  });
  return ids(r);
}

// GPT-2 and Llama trained in parallel on the same tiny corpus (one thread each).
async function trainBoth() {
  const shard = path.join(dir, 'train.bin');
  L.writeShard(shard, L.corpus(1500));
  const common = ['--vocab', '50257', '--max-seq', '256', '--batch', '4', '--seq', '64', '--steps', '30', '--lr',
                  '1e-2', '--warmup', '5', '--data', shard, '--quiet', '--threads', '1'];
  const gpt2 = path.join(dir, 'gpt2.safetensors'), llama = path.join(dir, 'llama.safetensors');
  const llamaCfg = path.join(dir, 'llama.json'); // untied head, GQA 4:2
  fs.writeFileSync(llamaCfg, JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 160,
    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 50257,
    max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false }));
  await Promise.all([
    L.run(['train', '--model', 'd6', '--layers', '2', '--dim', '64', '--heads', '4', ...common, '--save', gpt2]),
    L.run(['train', '--model', llamaCfg, ...common, '--save', llama]),
  ]);
  return { gpt2, llama };
}

const t0 = Date.now();
const models = await trainBoth();
const files = {};
for (const [name, src] of Object.entries(models))
  for (const type of TYPES) {
    const out = path.join(dir, `${name}-${type}.gguf`);
    await L.run(['export', '--model', src, '--tokenizer', L.TOK, '--type', type, '--out', out]);
    files[`${name}-${type}`] = out;
  }
console.log(`trained and exported in ${Date.now() - t0} ms`);

// prebuilt CPU binaries shipped in the npm package: never build, never download
const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
                               progressLogs: false, logLevel: LlamaLogLevel.error });
const loaded = {};
async function model(key) {
  if (!loaded[key]) loaded[key] = await llama.loadModel({ modelPath: files[key] });
  return loaded[key];
}

for (const name of ['gpt2', 'llama']) {
  await check(`${name}: llama.cpp tokenizes as lmc encode`, async () => {
    const m = await model(`${name}-f32`);
    for (const text of [...TEXTS, L.corpus(40, 7)]) {
      const want = await encode(L.TOK, text);
      assert.deepEqual(await encode(files[`${name}-f32`], text), want, `lmc encode --tokenizer x.gguf: ${text}`);
      assert.deepEqual(Array.from(m.tokenize(text)), want, `llama.cpp: ${JSON.stringify(text)}`);
    }
  });

  await check(`${name} f32: llama.cpp's greedy continuation = lmc generate --temperature 0`, async () => {
    const m = await model(`${name}-f32`);
    for (const text of ['The cat', 'My friend walked to', 'A little bird']) {
      const prompt = await encode(L.TOK, text);
      const want = await llamaGreedy(m, prompt, 24);
      const { stdout } = await L.run(['generate', '--model', files[`${name}-f32`], '--prompt-ids', prompt.join(' '),
                                      '--max-tokens', '24', '--temperature', '0', '--quiet', '--threads', '1']);
      assert.deepEqual(ids(stdout), want.map((x) => x.id), `prompt '${text}'`);
      const lp = await lmcGreedy(files[`${name}-f32`], prompt, 24);
      assert.deepEqual(lp.map((x) => x.id), want.map((x) => x.id));
      const worst = Math.max(...lp.map((x, i) => Math.abs(x.logprob - want[i].logprob)));
      assert.ok(worst < 1e-2, `log-probabilities differ by ${worst}`);
      // the text path agrees too: the GGUF's own tokenizer, no --tokenizer
      const text2 = await L.run(['generate', '--model', files[`${name}-f32`], '--prompt', text, '--max-tokens', '24',
                                 '--temperature', '0', '--quiet', '--threads', '1', '--ignore-eos']);
      assert.equal(text2.stdout.replace(/\n$/, ''), m.detokenize(want.map((x) => x.id)));
    }
  });

  await check(`${name} q8_0: first tokens agree, log-probabilities within 0.08 of lmc's int8 path`, async () => {
    const m = await model(`${name}-q8_0`);
    let worst = 0, agreed = 0;
    for (const text of ['The cat', 'The old man', 'Our neighbor opened']) {
      const prompt = await encode(L.TOK, text);
      const want = await llamaGreedy(m, prompt, 16);
      const got = await lmcGreedy(files[`${name}-q8_0`], prompt, 16); // q8_0 file: int8 weights by default
      assert.deepEqual(got.slice(0, 4).map((x) => x.id), want.slice(0, 4).map((x) => x.id), `prompt '${text}'`);
      for (let i = 0; i < got.length && got[i].id === want[i].id; i++, agreed++)
        worst = Math.max(worst, Math.abs(got[i].logprob - want[i].logprob));
    }
    console.log(`     ${agreed} of 48 tokens agree; largest log-probability difference ${worst.toExponential(2)}`);
    assert.ok(worst < 0.08, `log-probabilities differ by ${worst}`);
  });
}

await check('@huggingface/gguf reads every export', async () => {
  for (const [key, file] of Object.entries(files)) {
    const [name, type] = key.split('-');
    const r = await gguf(file, { allowLocalFile: true, computeParametersCount: true });
    const md = r.metadata;
    const arch = name === 'gpt2' ? 'gpt2' : 'llama';
    assert.equal(md.version, 3);
    assert.equal(md['general.architecture'], arch);
    assert.equal(md['general.file_type'], { f32: 0, f16: 1, q8_0: 7, bf16: 32 }[type]);
    assert.equal(md[`${arch}.block_count`], 2);
    assert.equal(md[`${arch}.embedding_length`], 64);
    assert.equal(md[`${arch}.context_length`], 256);
    assert.equal(md[`${arch}.attention.head_count`], 4);
    assert.equal(md[`${arch}.attention.head_count_kv`], name === 'gpt2' ? 4 : 2);
    assert.equal(md['tokenizer.ggml.model'], 'gpt2');
    assert.equal(md['tokenizer.ggml.pre'], 'gpt-2');
    assert.equal(md['tokenizer.ggml.tokens'].length, 50257);
    assert.equal(md['tokenizer.ggml.token_type'].length, 50257);
    assert.equal(md['tokenizer.ggml.merges'].length, 50000);
    assert.equal(md['tokenizer.ggml.eos_token_id'], 50256);
    assert.equal(md['tokenizer.ggml.add_bos_token'], false);
    const names = r.tensorInfos.map((t) => t.name);
    assert.equal(names.length, new Set(names).size);
    const want = name === 'gpt2' ? 4 + 12 * 2 : 2 + 1 + 9 * 2; // gpt2 tied: no output.weight
    assert.equal(names.length, want, names.join(' '));
    const byName = Object.fromEntries(r.tensorInfos.map((t) => [t.name, t]));
    const emb = byName['token_embd.weight'];
    assert.deepEqual(emb.shape, [64n, 50257n]);
    const dtype = { f32: 0, f16: 1, bf16: 30, q8_0: 8 }[type];
    assert.equal(emb.dtype, dtype);
    assert.equal(byName['blk.1.attn_norm.weight'].dtype, 0); // norms stay f32
    if (name === 'llama') {
      assert.deepEqual(byName['blk.0.attn_k.weight'].shape, [64n, 32n]);
      assert.deepEqual(byName['blk.0.ffn_gate.weight'].shape, [64n, 160n]);
      assert.equal(byName['blk.0.ffn_down.weight'].dtype, type === 'q8_0' ? 8 : dtype); // 160 = 5 blocks
    } else {
      assert.deepEqual(byName['blk.0.attn_qkv.weight'].shape, [64n, 192n]);
      assert.equal(byName['position_embd.weight'].dtype, 0);
    }
    for (const t of r.tensorInfos) assert.equal(Number(t.offset) % 32, 0, t.name);
    assert.equal(Number(r.tensorDataOffset) % 32, 0);
    const params = name === 'gpt2' ? 50257 * 64 + 256 * 64 + 2 * 64 + 2 * (4 * 64 + 64 * 192 + 192 + 64 * 64 + 64 +
                   2 * 64 * 256 + 256 + 64) : 2 * 50257 * 64 + 64 + 2 * (2 * 64 + 64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 160);
    assert.equal(r.parameterCount, params);
  }
});

await check('lmc serve --model x.gguf needs no --tokenizer', async () => {
  const proc = spawn(L.LMC, ['serve', '--model', files['gpt2-q8_0'], '--port', '0', '--threads', '1'],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${log}`)), 20000);
      proc.stderr.on('data', (d) => {
        log += d;
        const m = /listening on port (\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      proc.on('exit', () => reject(new Error(`exited: ${log}`)));
    });
    assert.match(log, /'gpt2-q8_0' \(gpt2, 2 layers, int8 weights/);
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt2-q8_0', prompt: 'The cat', max_tokens: 8, temperature: 0 }),
    });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.ok(j.choices[0].text.length > 0);
  } finally {
    proc.kill('SIGTERM');
  }
});

for (const m of Object.values(loaded)) await m.dispose();
await llama.dispose();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${L.failures()} failures (${Date.now() - t0} ms)`);
process.exit(L.failures() ? 1 : 0);
