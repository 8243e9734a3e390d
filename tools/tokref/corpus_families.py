#!/usr/bin/env python3
"""Writes the corpus of the real model-family tokenizers (Llama 3.1, Qwen3,
Gemma 3): tokenizer/testdata/strings_families.jsonl.

A corpus of its own, so that adding to it regenerates only the fixtures of
ref_hf_families.py (Hugging Face tokenizers alone) and not those of
strings.jsonl, which need llama.cpp. Unlike strings.jsonl it holds the text
of special and added tokens: Hugging Face parses those, and the families'
fixtures record how. Deterministic: no randomness, no network.

Usage: python3 tools/tokref/corpus_families.py [repo-root]
"""
import json
import os
import sys

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "func main() {\n\tfmt.Println(\"hello, \u4e16\u754c\")\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body><table><tr><td>1</td><th>x</th></tr></table></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "$ ls -la | grep '^d' | awk '{print $9}' > dirs.txt 2>&1",
    "x := []int{1,2,3}; y = x[1:]; z != nil && a || b",
    "    indented\n\t\ttabbed\n  \t mixed\n",
    "if (a===b) { return a>=b ? a<<2 : b>>>1; } // comment /* block */",
    "class Foo(Bar):\n    \"\"\"Docstring.\"\"\"\n    __slots__ = ('a', '_b')\n",
    "https://example.com/a/b?c=d&e=f#g user@host.org C:\\Windows\\System32",
    "0x1F 0b1010 1e-9 3.14159 -42 +7 1_000_000",
]

SCRIPTS = [
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 co\u00f6perate \u00e0 la fa\u00e7ade, \u00c5ngstr\u00f6m, Stra\u00dfe, \u0141\u00f3d\u017a, \u0159e\u0161en\u00ed",
    "Cafe\u0301 nai\u0308ve A\u030angstro\u0308m (combining marks, not NFC)",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af (Hangul jamo) \ud55c\uad6d\uc5b4 \ubb38\uc7a5",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430? \u0401\u0436\u0438\u043a \u0432 \u0442\u0443\u043c\u0430\u043d\u0435.",
    "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5! \u0391\u0392\u0393\u0394 \u03b1\u03b2\u03b3\u03b4 \u1f00\u1f10\u1f30",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f \u0661\u0662\u0663\u0664\u0665",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd! \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902? \u0967\u0968\u0969",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002\u6211\u4eec\u53bb\u516c\u56ed\u5427\u3002",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3001\u6f22\u5b57\u3002\uff8a\uff9d\uff76\uff78",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u0532\u0561\u0580\u0565\u0582 \u12a0\u121b\u122d\u129b \u1019\u1004\u103a\u1039\u1002\u101c\u102c",
    "\U00020000\U0002a6d6 \U0001d400\U0001d401 \U00010400 (astral letters)",
    "Mixed: English, \u0420\u0443\u0441\u0441\u043a\u0438\u0439, \u4e2d\u6587, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, \u05e2\u05d1\u05e8\u05d9\u05ea in one line.",
    "\ufb01ne \ufb02ow \u2460\u2461\u2462 \u00bd \u00b2 \u2167 \uff21\uff22\uff23 \u2126 \u212b",
]

EMOJI = [
    "I love it \U0001f600\U0001f602\U0001f923!",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, \U0001f469\U0001f3fd\u200d\U0001f4bb coder, \U0001f3f3\ufe0f\u200d\U0001f308 flag",
    "Flags: \U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea \U0001f1fa\U0001f1e6 \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "\u2764\ufe0f \u270c\U0001f3fb \U0001f44d\U0001f3ff \u263a \u2b50\ufe0f1\ufe0f\u20e3 #\ufe0f\u20e3",
    "\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600",
]

WHITESPACE = [
    " ",
    "  ",
    "   leading",
    "trailing   ",
    "trailing\n",
    "a  b   c    d     e",
    "tab\tsep\t\tdouble\t\t\ttriple",
    "\t\tleading tabs",
    "line1\nline2\n\nline4\n\n\nline7",
    "windows\r\nline\r\n\r\nends",
    "mixed \t \n \r\n\t  end",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nmany newlines",
    " " * 40 + "forty spaces",
    "word \n  word\n\tword \t\n",
    "\u00a0non-breaking\u00a0space \u2003em space \u3000ideographic",
    "\u2028line sep\u2029para sep\u000bvt\u000cff",
    "\n",
    "\t",
    "a\n",
    " \n ",
]

CONTRACTIONS = [
    "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "'Re 'rE 'Ve 'lL 'Ll",
    "It's, don't, we're, they've, I'm, you'll, she'd.",
    "IT'S DON'T WE'RE THEY'VE I'M YOU'LL SHE'D",
    "x's y'T z'Re w'vE",
    "rock 'n' roll '90s y'all o'clock",
    "''''s 'll' ''d",
    "it\u2019s don\u2019t (curly apostrophes)",
    "'s's's 'ss 'tt",
]

DIGITS = [
    "1",
    "12",
    "123",
    "1234",
    "12345",
    "1234567",
    "12345678901234567890",
    "3.14159265358979323846264338327950288",
    "Phone: +1 (555) 123-4567, ZIP 90210-1234",
    "In 2024, 1,234,567 people paid $89.99 for 10000 items.",
    "a1b22c333d4444e55555",
    "\u0661\u0662\u0663\u0664\u0665\u0666 \u0967\u0968\u0969\u096a \uff11\uff12\uff13\uff14 \u2460\u2461",
    "2024-01-15T13:45:30Z 127.0.0.1:8080",
    "v1.2.3-rc.4+build.567",
]

PUNCTUATION = [
    "!!!???...,,,;;;:::",
    "Hello, world!",
    "Wait... what?! No way!!!",
    "--- === *** ### ___ ~~~ ^^^",
    "(((nested))) [[[brackets]]] {{{braces}}}",
    "\u201cquoted\u201d \u00abguillemets\u00bb \u300cCJK\u300d \u2014 dash \u2026 ellipsis",
    "@#$%^&*()_+-=[]{}|;':\",./<>?`~",
    ".\n.\n.\n",
    "!\n\n?\r\n;",
    " ...   !!!   ???",
]

# Text of special and added tokens: Hugging Face matches every added token
# in text before the model (special ones too, unless told not to).
SPECIAL = [
    "<|begin_of_text|>Hello<|end_of_text|>",
    "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
    "<|endoftext|> and <|endoftext|><|endoftext|>",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<bos>text<eos> <pad><unk><mask>",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_image> image <end_of_image>",
    "<unused0> <unused99> <table><tr><td>cell</td></tr></table>",
    "[multimodal] <s> </s> <|reserved_special_token_5|>",
    "not special: <|im_start <im_start|> <| im_end |> < bos > <|begin_of_text|",
    "<|im_start|><|im_start|>user",
    " <|im_end|> spaced <|eot_id|> ",
    "x<|eot_id|>y<|im_end|>z<end_of_turn>w",
    "\u2581\u2581 literal lower blocks \u2581x\u2581\u2581y",
]

MISC = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
    "Question: What is the capital of France?\nAnswer: Paris",
    "Question: Which of these is a mammal?\nA. shark\nB. dolphin\nC. trout\nD. eel\nAnswer:",
    "Mixed CASE words LiKe ThIs and camelCaseIdentifiers and snake_case_names",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\ufffd replacement \ufeffBOM \u0085nel \u200bzwsp \u200czwnj \u200dzwj",
    "\u0000nul \u0001soh \u007fdel",
    "a",
    "",
]


def build():
    out = []
    for group in (CODE, SCRIPTS, EMOJI, WHITESPACE, CONTRACTIONS, DIGITS, PUNCTUATION, SPECIAL, MISC):
        out.extend(group)
    # A few long strings: a paragraph made of the others, in several scripts.
    out.append(" ".join(SCRIPTS[:9]) + "\n" + "\n".join(CODE[:3]))
    out.append(("The year 1999 had 365 days. " * 12).strip())
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    path = os.path.join(root, "tokenizer", "testdata", "strings_families.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for s in build():
            f.write(json.dumps(s, ensure_ascii=True) + "\n")
    print(f"{len(build())} strings -> {path}")


if __name__ == "__main__":
    main()
