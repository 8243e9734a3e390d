package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "print a GGUF file's model and tokenizer as JSON",
		usage:   "inspect --model M.gguf",
		about: `Describes any GGUF file, also one lmscore cannot score (a vocabulary-only
file, an unsupported architecture or tensor type: "problem" then says why).
The older form "lmscore inspect M.gguf" still works but is deprecated.`,
		example: `lmscore inspect -m stories260K.gguf`,
		flags:   inspectFlags,
	})
}

func runInspect(ctx context.Context, args []string) error {
	return commands["inspect"].run(ctx, stdStreams(), args)
}

func inspectFlags(fs *flag.FlagSet) action {
	path := fs.String("model", "", "GGUF file (required)")
	aliasFlag(fs, "m", "model")
	return func(ctx context.Context, s streams, args []string) error {
		switch {
		case len(args) > 1 || (len(args) == 1 && *path != ""):
			return fmt.Errorf("%w: want one GGUF file, given as --model M.gguf", errUsage)
		case len(args) == 1:
			// The positional form, from before every command took --model.
			fmt.Fprintln(s.err, "lmscore inspect: the positional form is deprecated: use --model M.gguf")
			*path = args[0]
		case *path == "":
			return fmt.Errorf("%w: --model is required", errUsage)
		}
		f, err := gguf.Open(*path)
		if err != nil {
			return err
		}
		defer f.Close()
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(model.Summarize(f))
	}
}
