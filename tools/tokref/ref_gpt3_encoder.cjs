// Expected GPT-2 ids from the gpt-3-encoder npm package (OpenAI's GPT-2
// encoder ported to JavaScript). Reads a corpus of JSON strings, one per line,
// and writes a header line then one JSON array of ids per string.
// Usage: node ref_gpt3_encoder.cjs <npm node_modules> <strings.jsonl> <out.jsonl>
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const [modsArg, stringsPath, outPath] = process.argv.slice(2);
const mods = path.resolve(modsArg);
const enc = require(path.join(mods, 'gpt-3-encoder'));
const version = JSON.parse(fs.readFileSync(path.join(mods, 'gpt-3-encoder', 'package.json'))).version;

const raw = fs.readFileSync(stringsPath);
const lines = raw.toString('utf8').split('\n').filter((l) => l.length > 0);
const out = [JSON.stringify({
  reference: `gpt-3-encoder@${version}`,
  strings: path.basename(stringsPath),
  sha256: crypto.createHash('sha256').update(raw).digest('hex'),
})];
for (const line of lines) {
  out.push(JSON.stringify(enc.encode(JSON.parse(line))));
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
console.log(`gpt-3-encoder: ${lines.length} strings -> ${outPath}`);
