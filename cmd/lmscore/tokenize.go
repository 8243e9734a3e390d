package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/tokenizer"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "print the token ids of JSON strings read from stdin",
		usage:   "tokenize --model M.gguf [--no-bos] [--special] < strings.jsonl",
		about: `Reads one JSON string per line from stdin and writes its token ids as a JSON
array, one line per string. BOS is prepended when the model's add_bos_token
says so (--no-bos leaves it off); EOS is never appended.`,
		example: `echo '"Once upon a time"' | lmscore tokenize -m stories260K.gguf`,
		flags:   tokenizeFlags,
	})
}

func runTokenize(ctx context.Context, args []string) error {
	return commands["tokenize"].run(ctx, stdStreams(), args)
}

func tokenizeFlags(fs *flag.FlagSet) action {
	modelPath := fs.String("model", "", "GGUF file whose tokenizer to use (required)")
	aliasFlag(fs, "m", "model")
	noBOS := fs.Bool("no-bos", false, "never prepend BOS, whatever the model's add_bos_token says")
	special := fs.Bool("special", false, "read the text of control tokens (\"<s>\", \"<|endoftext|>\") as those tokens")
	return func(ctx context.Context, s streams, args []string) error {
		return tokenize(ctx, s, *modelPath, *noBOS, *special, args)
	}
}

func tokenize(ctx context.Context, s streams, modelPath string, noBOS, special bool, args []string) error {
	if modelPath == "" || len(args) != 0 {
		return fmt.Errorf("%w: want --model M.gguf and no arguments (the strings come on stdin)", errUsage)
	}
	f, err := gguf.Open(modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	return tokenizeLines(ctx, tok, s.in, s.out, !noBOS && tok.AddBOS(), special)
}

// tokenizeLines reads JSON strings, one per line, and writes each one's ids
// as a JSON array on its own line. Output is flushed whenever no more input
// is already buffered, so an interactive caller sees each answer at once.
func tokenizeLines(ctx context.Context, tok *tokenizer.Tokenizer, in io.Reader, out io.Writer, addBOS, special bool) error {
	r := bufio.NewReaderSize(in, 1<<16)
	w := bufio.NewWriterSize(out, 1<<16)
	var buf []byte
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			w.Flush()
			return err
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		raw, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			w.Flush()
			return fmt.Errorf("stdin: %w", err)
		}
		if len(raw) == 0 && err == io.EOF {
			break
		}
		var text string
		if jerr := json.Unmarshal(bytes.TrimRight(raw, "\r\n"), &text); jerr != nil {
			w.Flush()
			return fmt.Errorf("stdin line %d: want one JSON string per line: %v", line, jerr)
		}
		ids := tok.EncodeSpecial(text, false, special)
		buf = append(buf[:0], '[')
		if addBOS {
			buf = strconv.AppendInt(buf, int64(tok.BOS()), 10)
		}
		for i, id := range ids {
			if i > 0 || addBOS {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		buf = append(buf, ']', '\n')
		if _, werr := w.Write(buf); werr != nil {
			return werr
		}
		if err == io.EOF {
			break
		}
	}
	return w.Flush()
}
