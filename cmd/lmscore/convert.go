package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/lmscore/lmscore/convert"
)

func init() {
	register("convert", "import a llama2.c checkpoint or a Hugging Face folder as GGUF", runConvert)
}

const convertUsage = `usage:
  lmscore convert llama2c --model M.bin --tokenizer T.bin --out M.gguf [--type f32|f16|bf16|q8_0]
  lmscore convert hf --dir D --out M.gguf [--type auto|f32|f16|bf16|q8_0] [--vocab-only]`

func runConvert(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: missing source kind\n%s", errUsage, convertUsage)
	}
	fs := flag.NewFlagSet("convert "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, convertUsage); fs.PrintDefaults() }
	out := fs.String("out", "", "output GGUF file")
	typ := fs.String("type", "auto", "matrix type: auto (the source's), f32, f16, bf16 or q8_0")
	switch args[0] {
	case "llama2c":
		modelPath := fs.String("model", "", "llama2.c legacy checkpoint (.bin)")
		tokPath := fs.String("tokenizer", "", "llama2.c tokenizer (.bin)")
		if err := fs.Parse(args[1:]); err != nil {
			return convertFlagErr(err)
		}
		if *modelPath == "" || *tokPath == "" || *out == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: --model, --tokenizer and --out are required\n%s", errUsage, convertUsage)
		}
		return convert.Llama2C(*modelPath, *tokPath, *out, convert.Options{Type: *typ})
	case "hf":
		dir := fs.String("dir", "", "Hugging Face model folder (config.json, *.safetensors, tokenizer)")
		vocabOnly := fs.Bool("vocab-only", false, "write the tokenizer metadata and no tensors")
		if err := fs.Parse(args[1:]); err != nil {
			return convertFlagErr(err)
		}
		if *dir == "" || *out == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: --dir and --out are required\n%s", errUsage, convertUsage)
		}
		return convert.HF(*dir, *out, convert.Options{Type: *typ, VocabOnly: *vocabOnly})
	case "-h", "-help", "--help":
		fs.Usage()
		return flag.ErrHelp
	}
	return fmt.Errorf("%w: unknown source kind %q\n%s", errUsage, args[0], convertUsage)
}

// convertFlagErr keeps -h quiet and marks other flag errors as usage errors.
func convertFlagErr(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}
