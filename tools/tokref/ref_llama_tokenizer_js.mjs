// Expected Llama-2 ids from the llama-tokenizer-js npm package (a JavaScript
// SentencePiece-BPE encoder with the Llama-2 vocabulary built in). Ids are
// without BOS, with the dummy-prefix space, like tokenizer.Encode.
// Usage: node ref_llama_tokenizer_js.mjs <npm node_modules> <strings.jsonl> <out.jsonl>
import fs from 'fs';
import path from 'path';
import crypto from 'crypto';
import { pathToFileURL } from 'url';

const [modsArg, stringsPath, outPath] = process.argv.slice(2);
const mods = path.resolve(modsArg);
const pkgDir = path.join(mods, 'llama-tokenizer-js');
const { default: llamaTokenizer } = await import(pathToFileURL(path.join(pkgDir, 'llama-tokenizer.js')).href);
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'))).version;

const raw = fs.readFileSync(stringsPath);
const lines = raw.toString('utf8').split('\n').filter((l) => l.length > 0);
const out = [JSON.stringify({
  reference: `llama-tokenizer-js@${version}`,
  strings: path.basename(stringsPath),
  sha256: crypto.createHash('sha256').update(raw).digest('hex'),
})];
for (const line of lines) {
  // encode(prompt, add_bos_token, add_preceding_space)
  out.push(JSON.stringify(llamaTokenizer.encode(JSON.parse(line), false, true)));
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
console.log(`llama-tokenizer-js: ${lines.length} strings -> ${outPath}`);
