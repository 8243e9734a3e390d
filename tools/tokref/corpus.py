#!/usr/bin/env python3
"""Writes the tokenizer test corpus: tokenizer/testdata/strings.jsonl.

One JSON string per line. The corpus is committed; this script only exists so
that it can be regenerated (it is deterministic: a fixed seed, no network).
Every reference encoder in tools/tokref/ reads the same file, so the expected
ids of all vocabularies line up with it line by line.

Deliberately absent from this file: the text of special tokens ("<s>",
"<|endoftext|>"), which the Hugging Face reference would parse as special, and
the two code points on which JavaScript's \\s disagrees with Unicode's
White_Space (U+0085, U+FEFF). Those live in strings_edge.jsonl, which only the
llama.cpp and SentencePiece references run.

Usage: python3 tools/tokref/corpus.py [repo-root]
"""
import json
import os
import random
import sys

ENGLISH = [
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
    "Tom was very hungry, so he asked his mom for some food.",
    "It's a truth universally acknowledged that a single man in possession of a good fortune must be in want of a wife.",
    "I'm sure we'll be fine; they've said they'd come, and you're invited.",
    "DON'T SHOUT! I'M RIGHT HERE AND YOU'LL WAKE THE BABY'S SISTER.",
    "She said 'hello' and he said 'goodbye'.",
    "rock 'n' roll, the '90s, y'all, o'clock",
    "Curly quotes: \u2018single\u2019, \u201cdouble\u201d, it\u2019s, don\u2019t.",
    "Question: What is the capital of France?\nAnswer: Paris",
    "Question: Which of these is a mammal?\nA. shark\nB. dolphin\nC. trout\nD. eel\nAnswer:",
    "The mitochondria is the powerhouse of the cell.",
    "e.g. i.e. etc. vs. Mr. Mrs. Dr. St.",
    "Supercalifragilisticexpialidocious",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "grabbed",
    " grabbed",
    "           grabbed",
    "  Hello  world  ",
    "Hello\tworld",
    "Hello\nworld",
    "Hello\n\nworld",
    "Hello\r\nworld",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "in the park. One day, she saw a big, red ball.",
    " park.",
    " spoon.",
    " some food.",
    " a big rock.",
    "Mixed CASE words LiKe ThIs and camelCaseIdentifiers and snake_case_names",
    "hyphen-ated words, em\u2014dashes, en\u2013dashes, and ellipses\u2026",
    "Footnote[1] and (parenthetical) and {braces} and <angles>",
    "email: someone@example.com, url: https://example.com/path?q=1&r=2#frag",
    "#hashtag @mention $TICKER %percent ^caret &amp; *star*",
    "!!!???...,,,;;;:::",
    "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "x's y'T z'Re w'vE",
    "'",
    "''",
    "'''s",
    "a'",
    "it'",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "func main() {\n\tfmt.Println(\"hello, \u4e16\u754c\")\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "$ ls -la | grep '^d' | awk '{print $9}' > dirs.txt 2>&1",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "if (a && b || !c) { return a ?: b; } else if (x != y) {}",
    "const f = (a, b) => a === b ? 'same' : `diff ${a}`;",
    "    indented with four spaces\n\tindented with a tab\n        eight spaces",
    "a\t\tb\t\t\tc",
    "/* comment */ // line comment\n# shell comment\n-- sql comment",
    "^[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\\.[a-zA-Z0-9-.]+$",
    "C:\\Users\\name\\Documents\\file.txt",
    "matrix[i][j] += alpha * x[i] * y[j];   // rank-1 update",
    "__init__ __name__ == '__main__' self._private __dunder__",
    "@decorator\nclass Foo(Bar, metaclass=Meta):\n    pass\n",
    "::std::vector<std::pair<int,int>> v{{1,2},{3,4}};",
    "    \n    \n",
    "}\n\n\n{",
    "print('hello')  \n",
    "x=1;y=2;z=x+y",
]

NUMBERS = [
    "1", "12", "123", "1234", "12345", "123456", "1234567", "1234567890",
    "3.14159265358979", "-42", "+7", "1e-10", "6.022e23", "0x1F 0b1010 0o777",
    "1,000,000", "1.000.000,00", "$100.00", "\u20ac50", "\u00a3300", "\u00a51000", "99%",
    "2023-12-31T23:59:59Z", "12:30:45.678", "(555) 123-4567", "192.168.0.1",
    "v1.2.3-beta.4+build.5", "1/2 3/4 7/8", "10^6 2**10 5!",
    "Arabic-Indic digits: \u0663\u0664\u0665 and Devanagari \u0967\u0968\u0969",
    "Fullwidth \uff11\uff12\uff13\uff14",
    "Superscripts x\u00b2 y\u00b3 and fractions \u00bd \u00be",
    "Roman \u216b \u2160\u2161\u2162 circled \u2460\u2461\u2462",
    "The year 1999 and the year 2000 and 31337 and 007",
    "0000000000000000000000000000000000000000",
    " 1 22 333 4444 55555",
    "a1b2c3d4e5",
    "3.0.0rc1",
]

WHITESPACE = [
    "", " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\n\n\n",
    "\r", "\r\n", "\r\n\r\n", " \n", "\n ", " \n ", " \t \n \r ",
    "a ", "a  ", "a   ", " a", "  a", "   a", " a ", "  a  ",
    "a  b", "a   b", "a    b", "a \tb", "a\t b", "a \nb", "a\n b", "a \n b",
    "a\n\n\nb", "a\n \n \nb", "a\r\nb\r\nc", "end with newline\n", "end with spaces   ",
    "\u00a0nbsp\u00a0nbsp\u00a0", "ideographic\u3000space", "thin\u2009space", "en\u2002em\u2003",
    "zero\u200bwidth", "line\u2028sep", "para\u2029sep", "narrow\u202fnbsp", "ogham\u1680space",
    "\u000b\u000c vertical tab and form feed",
    " \u00a0 \u00a0 ", "\t\n\t\n", "   \n\n   \n", "x\u00a0\u00a0y",
]

CJK = [
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
    "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\u3002\u5929\u5b89\u95e8\u4e0a\u592a\u9633\u5347\u3002",
    "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002",
    "\u3072\u3089\u304c\u306a\u3068\u30ab\u30bf\u30ab\u30ca\u3068\u6f22\u5b57",
    "\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8 \ubb38\uc7a5\uc785\ub2c8\ub2e4.",
    "\u4e2d\u6587English\u6df7\u5408mixed\u6587\u672c",
    "\u300c\u5f15\u7528\u300d\u3010\u62ec\u5f27\u3011\u300a\u4e66\u540d\u300b",
    "\u6570\u5b57\uff11\uff12\uff13\u548c123",
    "\u8fd9\u662f\u4e00\u4e2a\u5f88\u957f\u7684\u53e5\u5b50\uff0c\u7528\u6765\u6d4b\u8bd5\u5206\u8bcd\u5668\u5bf9\u4e2d\u6587\u7684\u5904\u7406\u80fd\u529b\uff0c\u5305\u62ec\u6807\u70b9\u7b26\u53f7\u548c\u6570\u5b57\u3002",
    "\u7e41\u9ad4\u4e2d\u6587\u8207\u7c21\u9ad4\u4e2d\u6587",
    "\u30ab\u30bf\u30ab\u30ca\u30fc\u30fb\u30c6\u30b9\u30c8",
    "\U00020000\U00026a00 CJK Extension B",
]

EMOJI = [
    "\U0001f600", "\U0001f600\U0001f601\U0001f602", "I love pizza \U0001f355!",
    "\U0001f44d\U0001f3fd thumbs up with skin tone",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5 flags", "\u2764\ufe0f heart with VS16",
    "\u2603 snowman \u2600 sun \u2601 cloud", "\U0001f9d1\u200d\U0001f4bb coder",
    "emoji\U0001f389in\U0001f38amiddle", "   \U0001f680   ", "\U0001f600 \U0001f600  \U0001f600",
    "1\ufe0f\u20e3 keycap", "\U0001fae0 melting face",
]

UNICODE = [
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber se\u00f1or",
    "cafe\u0301 combining acute", "Z\u0335\u0321\u031aa\u0336\u0327\u0305l\u0337\u0322\u0302g\u0334\u0328\u0303o\u0335\u031b\u0304",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442.",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "\u0531\u0562\u0563 Armenian \u1200\u1208 Ethiopic \u13a0\u13a1 Cherokee",
    "\u2200x\u2208\u211d: x\u00b2 \u2265 0 \u2227 \u2211\u1d62 a\u1d62 \u2264 \u222b f(x) dx",
    "\u2500\u2502\u250c\u2510\u2514\u2518 box \u2588\u2591\u2592\u2593 blocks",
    "\ufb01nance \ufb02ow ligatures \u212b \u2126 \u212a",
    "\u00bfQu\u00e9? \u00a1S\u00ed! \u00ab guillemets \u00bb \u201ehalb\u201c",
    "\u0130stanbul \u0131\u015f\u0131k \u00c7\u00f6\u011f",
    "Stra\u00dfe \u1e9e \u00c6\u00e6 \u0152\u0153 \u00d8\u00f8 \u00c5\u00e5",
    "\u2122 \u00a9 \u00ae \u00a7 \u00b6 \u2020 \u2021 \u2022 \u00b0 \u2030",
    "\u0000\u0001\u0002 control \u007f del \u0080\u009f c1",
    "private use \ue000\uf8ff",
    "\U0001d400\U0001d401\U0001d402 math bold \U0001d7ce\U0001d7cf digits",
    "\U00010348 gothic \U0001f130 squared",
    "\u1100\u1161\u11a8 conjoining jamo",
    "\u02b0\u02b1 modifier letters \u02c6\u02dc",
    "\u0300\u0301 leading combining marks",
    "\u3164 hangul filler \u115f\u1160",
    "soft\u00adhyphen and zero\u200cwidth\u200djoiners",
    "\u202eright-to-left override\u202c",
    "\u2028\u2029",
    "\ufffd replacement char",
    "\u0378 unassigned \u0380",
]

LONG = [
    "a" * 1000,
    "ab" * 400,
    "Supercalifragilisticexpialidocious" * 20,
    "9" * 500,
    "1234567890" * 30,
    "=" * 300,
    "-" * 200 + "\n" + "=" * 200,
    " " * 300,
    "\n" * 100,
    "\t" * 50 + "x",
    "\u4e2d" * 300,
    "\U0001f600" * 100,
    "https://example.com/" + "very/long/path/segment/" * 20 + "index.html?query=" + "x" * 100,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " * 8,
    "thequickbrownfoxjumpsoverthelazydog" * 15,
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "\u00e9" * 200,
    "x" * 2000,
]

# Fragments for random combinations: each draws a few and concatenates them,
# which exercises the boundaries between classes (letters next to digits, a
# space before punctuation, newlines inside whitespace runs, ...).
FRAGMENTS = [
    "the", "The", "THE", "cat", "dog", "running", "un", "believ", "able", " ", "  ", "\t", "\n",
    "\r\n", ".", ",", "!", "?", "'s", "'ll", "'", "\"", "(", ")", "[", "]", "{", "}", "-", "_",
    "1", "42", "2024", "3.14", "0", "\u4e2d\u6587", "\u65e5\u672c", "\ud55c", "\U0001f600",
    "\U0001f44d\U0001f3fb", "\u00e9", "e\u0301", "\u00a0", "\u3000", "\u2009", "\u00fc", "\u00df",
    "\u041c\u043e\u0441\u043a\u0432\u0430", "\u03b1\u03b2\u03b3", "\u0627\u0644", "<", ">", "/", "\\",
    "=", "==", "=>", "->", "::", "&&", "||", "#", "@", "$", "%", "^", "&", "*", "+", "~", "`", "|",
    "http", "://", "www", "com", "\u2014", "\u2026", "\u00bd", "\u00b2", "\u2160", "\u0663",
    "\U0001d400", "\ue000", "\u200b", "\u200d", "\ufe0f", "\u2028", "\u000b", "\u000c", "\u0001",
]


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(2, 14)
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(k)))
    return out


# Edge cases run only by references that follow Unicode's White_Space and
# treat special-token text as plain text (llama.cpp with parse_special off,
# SentencePiece).
EDGE = [
    "next\u0085line", "a\u0085\u0085b", "bom\ufeffinside", "\ufeffleading bom",
    "\u0085", "\ufeff", "x \u0085 y", "x \ufeff y",
    "<s>", "</s>", "<unk>", "<|endoftext|>", "text<|endoftext|>text", "<s> hello </s>",
    "<0x41>", "\u2581\u2581already escaped\u2581", "\u2581", "a\u2581b",
    "\U0002ebf0 CJK Ext I (Unicode 15.1)",
    "\U000e0001\U000e0020 tags", "\U0010fffd plane 16",
]


# (context, continuation) pairs for EncodePair, checked against
# lm-evaluation-harness's _encode_pair run with reference encoders
# (ref_pairs.py). Contexts that are only whitespace are left out: there
# lm-evaluation-harness encodes an empty context, which EncodePair replaces
# with the prefix token (tested in Go instead).
PAIRS = [
    ("Once upon a time, there was a little girl named Lily. She loved to play outside in the", " park."),
    ("Once upon a time, there was a little girl named Lily. She loved to play outside in the", " spoon."),
    ("Tom was very hungry, so he asked his mom for", " some food."),
    ("Tom was very hungry, so he asked his mom for", " a big rock."),
    ("", "Once upon a time, there was a little girl named Lily."),
    ("", " park."),
    ("", ""),
    ("Question: What is 2+2?\nAnswer:", " 4"),
    ("Question: What is 2+2?\nAnswer: ", "4"),
    ("Question: What is 2+2?\nAnswer:  ", " 4"),
    ("Hello\n\n", "World"),
    ("Hello \n", "World"),
    ("a\t", "b"),
    ("x\u00a0", "y"),
    ("x\u3000", "y"),
    ("x\u2028", "y"),
    ("x\u001c", "y"),
    ("x\u0085", "y"),
    ("x\u200b", "y"),
    ("x\ufeff", "y"),
    ("The capital of France is", " Paris"),
    ("The capital of France is", "Paris"),
    ("The capital of France is ", "Paris"),
    ("1 + 1 =", " 2"),
    ("1234", "5678"),
    ("don", "'t"),
    ("I", "'ll go"),
    ("\u4f60\u597d", "\u4e16\u754c"),
    ("emoji ", "\U0001f600"),
    ("end.", ""),
    ("end. ", ""),
    ("Multiple choice:\nA. red\nB. blue\nAnswer:", " B"),
]


def split_pairs(strings, n, seed):
    """Pairs cut from corpus strings at a random code point."""
    rng = random.Random(seed)
    out = []
    for s in rng.sample([s for s in strings if len(s) >= 2], n):
        k = rng.randint(1, len(s) - 1)
        if s[:k].strip():
            out.append((s[:k], s[k:]))
    return out


def dump(s):
    # Readable UTF-8, except for the code points that some line readers
    # treat as line breaks: those stay escaped so that one line is one string.
    line = json.dumps(s, ensure_ascii=False)
    for cp in ("\u0085", "\u2028", "\u2029"):
        line = line.replace(cp, "\\u%04x" % ord(cp))
    return line


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    strings = ENGLISH + CODE + NUMBERS + WHITESPACE + CJK + EMOJI + UNICODE + LONG + random_strings(120, 20240501)
    seen = set()
    uniq = []
    for s in strings:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    for s in uniq:
        assert "\u0085" not in s and "\ufeff" not in s, repr(s)
    out_dir = os.path.join(root, "tokenizer", "testdata")
    with open(os.path.join(out_dir, "strings.jsonl"), "w", encoding="utf-8") as f:
        for s in uniq:
            f.write(dump(s) + "\n")
    with open(os.path.join(out_dir, "strings_edge.jsonl"), "w", encoding="utf-8") as f:
        for s in EDGE:
            f.write(dump(s) + "\n")
    pairs = PAIRS + split_pairs(uniq, 150, 20240502)
    with open(os.path.join(out_dir, "pairs.jsonl"), "w", encoding="utf-8") as f:
        for c, k in pairs:
            assert c == "" or c.strip(), repr(c)
            f.write("[" + dump(c) + "," + dump(k) + "]\n")
    print(f"{len(uniq)} strings, {len(EDGE)} edge strings, {len(pairs)} pairs")


if __name__ == "__main__":
    main()
