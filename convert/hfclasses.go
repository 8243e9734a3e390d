package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/lmscore/lmscore/model"
)

// hfClass is what the importer knows of one transformers class: the
// family it becomes and the class's config defaults, which a config.json
// saved by transformers 4 may leave out.
type hfClass struct {
	arch    model.Arch
	eps     float64 // rms_norm_eps (layer_norm_eps for GPT-NeoX) when absent
	tied    bool    // tie_word_embeddings when absent
	act     string  // the activation lmscore runs: "silu", "gelu_tanh" or "gelu"
	headDim int     // head_dim when absent (Gemma's 256); 0: hidden_size/heads
	ctx     int     // max_position_embeddings when absent; 0: required
	// sliding: sliding_window is read (the model attends within it), with
	// window as its default.
	sliding bool
	window  int
	moe     string // "mixtral", "qwen2moe", "qwen3moe" or ""
}

// hfClasses are the transformers classes lmscore converts.
var hfClasses = map[string]hfClass{
	"LlamaForCausalLM":    {arch: model.ArchLlama, eps: 1e-6, act: "silu"},
	"MistralForCausalLM":  {arch: model.ArchLlama, eps: 1e-6, act: "silu", sliding: true, window: 4096},
	"MixtralForCausalLM":  {arch: model.ArchLlama, eps: 1e-5, act: "silu", sliding: true, moe: "mixtral"},
	"Qwen2ForCausalLM":    {arch: model.ArchQwen2, eps: 1e-6, act: "silu"},
	"Qwen3ForCausalLM":    {arch: model.ArchQwen3, eps: 1e-6, act: "silu"},
	"Qwen2MoeForCausalLM": {arch: model.ArchQwen2MoE, eps: 1e-6, act: "silu", moe: "qwen2moe"},
	"Qwen3MoeForCausalLM": {arch: model.ArchQwen3MoE, eps: 1e-6, act: "silu", moe: "qwen3moe"},
	"Gemma2ForCausalLM": {arch: model.ArchGemma2, eps: 1e-6, tied: true, act: "gelu_tanh", headDim: 256, ctx: 8192,
		sliding: true, window: 4096},
	"Gemma3ForCausalLM": {arch: model.ArchGemma3, eps: 1e-6, tied: true, act: "gelu_tanh", headDim: 256, ctx: 131072,
		sliding: true, window: 4096},
	"Phi3ForCausalLM":    {arch: model.ArchPhi3, eps: 1e-5, act: "silu", ctx: 4096, sliding: true},
	"GPTNeoXForCausalLM": {arch: model.ArchGPTNeoX, eps: 1e-5, act: "gelu", ctx: 2048},
	"Olmo2ForCausalLM":   {arch: model.ArchOLMo2, eps: 1e-5, act: "silu", ctx: 2048},
	"GPT2LMHeadModel":    {arch: model.ArchGPT2, tied: true},
}

// hfActivations are the config.json values of each activation lmscore runs.
var hfActivations = map[string][]string{
	"silu":      {"silu", "swish"},
	"gelu_tanh": {"gelu_pytorch_tanh", "gelu_new", "gelu_fast"},
	"gelu":      {"gelu"},
}

// supportedHFClasses lists the classes, for errors.
func supportedHFClasses() string {
	var names []string
	for n := range hfClasses {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func readHFConfig(path string) (*hfConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", path, err)
	}
	return &c, nil
}

func (c *hfConfig) class(path string) (hfClass, error) {
	if len(c.Architectures) != 1 {
		return hfClass{}, fmt.Errorf("convert: %s: \"architectures\" is %q, want one of %s", path, c.Architectures, supportedHFClasses())
	}
	cl, ok := hfClasses[c.Architectures[0]]
	if !ok {
		return hfClass{}, fmt.Errorf("convert: %s: unsupported architecture %q (lmscore converts %s)", path, c.Architectures[0], supportedHFClasses())
	}
	return cl, nil
}

func (c *hfConfig) arch(path string) (model.Arch, error) {
	cl, err := c.class(path)
	return cl.arch, err
}

// tied reports whether the output matrix is the embedding, with the
// transformers default of each class.
func (c *hfConfig) tied(a model.Arch) bool {
	if c.TieWordEmbeddings != nil {
		return *c.TieWordEmbeddings
	}
	if len(c.Architectures) == 1 {
		return hfClasses[c.Architectures[0]].tied
	}
	return a == model.ArchGPT2
}

// optFloat reads a number that may be null: null is 0 (none), absent def.
func optFloat(raw json.RawMessage, def float64) (float64, error) {
	if len(raw) == 0 {
		return def, nil
	}
	if string(raw) == "null" {
		return 0, nil
	}
	var x float64
	if err := json.Unmarshal(raw, &x); err != nil {
		return 0, err
	}
	return x, nil
}
