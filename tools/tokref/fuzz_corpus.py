#!/usr/bin/env python3
"""Writes a large random corpus for the optional differential run
(tools/tokref/fuzz.sh): fragments of the committed corpus, contractions,
digits, whitespace runs and random code points from many Unicode blocks,
concatenated. U+0085 and U+FEFF are left out, as in the committed corpus.

Usage: fuzz_corpus.py <count> <seed> <out.jsonl>
"""
import os, random, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus
rng = random.Random(int(sys.argv[2]))
pool = corpus.FRAGMENTS + ["'S", "'LL", "'Re", "'ve", "'D", "'m", "''", "'x", "\t\n", " \r\n ", "   ", "\u00a0\n", "\u3000\u3000", "123456", "1234", "x1", "٣٤٥٦", "①②", "Ⅻ", "½¾", "ǅ", "ß", "İ", "ﬁ", "\u0301", "\u0308", "\u200d", "\ufe0f", "🏽", "👩‍💻", "ありがとう", "안녕", "漢字", "ñ", "Ω", "π", "∑", "→", "«", "»", "„", "—", "–", "…", "·", "•", "@@", "##", "$$", "^^", "~~", "``", "<<", ">>", "&&&", "|||", "\\n", "\\\\"]
def rand_cp():
    blocks = [(0x20,0x7e),(0xa0,0x2ff),(0x300,0x36f),(0x370,0x52f),(0x590,0x6ff),(0x900,0x97f),(0xe00,0xe7f),(0x1100,0x11ff),(0x2000,0x206f),(0x2100,0x23ff),(0x2500,0x27bf),(0x3000,0x30ff),(0x4e00,0x4fff),(0xac00,0xacff),(0xff00,0xffef),(0x1f300,0x1faff),(0x10000,0x1007f),(0x1d400,0x1d7ff),(0x20000,0x2001f)]
    a,b = rng.choice(blocks)
    c = rng.randint(a,b)
    if 0xd800 <= c <= 0xdfff: c = 0x41
    return chr(c)
out = []
for i in range(int(sys.argv[1])):
    k = rng.randint(1, 20)
    parts = []
    for _ in range(k):
        r = rng.random()
        if r < 0.6: parts.append(rng.choice(pool))
        elif r < 0.9: parts.append(''.join(rand_cp() for _ in range(rng.randint(1,4))))
        else: parts.append(rng.choice([" ", "\n", "\t", "  "]) * rng.randint(1,6))
    s = ''.join(parts)
    if '\u0085' in s or '\ufeff' in s: continue
    out.append(s)
with open(sys.argv[3], 'w', encoding='utf-8') as f:
    for s in out: f.write(corpus.dump(s)+'\n')
print(len(out))
