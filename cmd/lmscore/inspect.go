package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

func init() {
	register("inspect", "print a GGUF file's model and tokenizer as JSON", runInspect)
}

func runInspect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, "usage: lmscore inspect M.gguf"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return convertFlagErr(err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one GGUF file", errUsage)
	}
	f, err := gguf.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(model.Summarize(f))
}
