//go:build cgo

package binding

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

const abiHeader = "../csrc/include/lmscore.h"

// goMirror is one Go constant that mirrors a C enumerator.
type goMirror struct {
	c, goName string
	value     int64
}

// goMirrors lists every Go twin of an lmscore.h enumerator; a C enumerator
// may have several (lmscore_type is mirrored by model and by gguf).
var goMirrors = []goMirror{
	{"LMSCORE_STATUS_OK", "binding.StatusOK", int64(StatusOK)},
	{"LMSCORE_STATUS_INVALID_ARGUMENT", "binding.StatusInvalidArgument", int64(StatusInvalidArgument)},
	{"LMSCORE_STATUS_UNSUPPORTED", "binding.StatusUnsupported", int64(StatusUnsupported)},
	{"LMSCORE_STATUS_OUT_OF_MEMORY", "binding.StatusOutOfMemory", int64(StatusOutOfMemory)},
	{"LMSCORE_STATUS_DEVICE_ERROR", "binding.StatusDevice", int64(StatusDevice)},
	{"LMSCORE_STATUS_INTERNAL", "binding.StatusInternal", int64(StatusInternal)},

	{"LMSCORE_NORM_RMS", "model.NormRMS", int64(model.NormRMS)},
	{"LMSCORE_NORM_LAYER", "model.NormLayer", int64(model.NormLayer)},
	{"LMSCORE_FFN_SWIGLU", "model.FFNSwiGLU", int64(model.FFNSwiGLU)},
	{"LMSCORE_FFN_GEGLU", "model.FFNGeGLU", int64(model.FFNGeGLU)},
	{"LMSCORE_FFN_GELU", "model.FFNGELU", int64(model.FFNGELU)},
	{"LMSCORE_FFN_GELU_ERF", "model.FFNGELUErf", int64(model.FFNGELUErf)},
	{"LMSCORE_QK_NORM_NONE", "model.QKNormNone", int64(model.QKNormNone)},
	{"LMSCORE_QK_NORM_HEAD", "model.QKNormHead", int64(model.QKNormHead)},
	{"LMSCORE_QK_NORM_FULL", "model.QKNormFull", int64(model.QKNormFull)},

	{"LMSCORE_ROPE_TYPE_NONE", "model.RopeNone", int64(model.RopeNone)},
	{"LMSCORE_ROPE_TYPE_NORM", "model.RopeNorm", int64(model.RopeNorm)},
	{"LMSCORE_ROPE_TYPE_NEOX", "model.RopeNeox", int64(model.RopeNeox)},

	{"LMSCORE_TYPE_F32", "model.TypeF32", int64(model.TypeF32)},
	{"LMSCORE_TYPE_F16", "model.TypeF16", int64(model.TypeF16)},
	{"LMSCORE_TYPE_Q8_0", "model.TypeQ8_0", int64(model.TypeQ8_0)},
	{"LMSCORE_TYPE_BF16", "model.TypeBF16", int64(model.TypeBF16)},
	{"LMSCORE_TYPE_Q4_0", "model.TypeQ4_0", int64(model.TypeQ4_0)},
	{"LMSCORE_TYPE_Q4_1", "model.TypeQ4_1", int64(model.TypeQ4_1)},
	{"LMSCORE_TYPE_Q5_0", "model.TypeQ5_0", int64(model.TypeQ5_0)},
	{"LMSCORE_TYPE_Q5_1", "model.TypeQ5_1", int64(model.TypeQ5_1)},
	{"LMSCORE_TYPE_Q2_K", "model.TypeQ2_K", int64(model.TypeQ2_K)},
	{"LMSCORE_TYPE_Q3_K", "model.TypeQ3_K", int64(model.TypeQ3_K)},
	{"LMSCORE_TYPE_Q4_K", "model.TypeQ4_K", int64(model.TypeQ4_K)},
	{"LMSCORE_TYPE_Q5_K", "model.TypeQ5_K", int64(model.TypeQ5_K)},
	{"LMSCORE_TYPE_Q6_K", "model.TypeQ6_K", int64(model.TypeQ6_K)},
	{"LMSCORE_TYPE_IQ4_NL", "model.TypeIQ4_NL", int64(model.TypeIQ4_NL)},
	{"LMSCORE_TYPE_IQ4_XS", "model.TypeIQ4_XS", int64(model.TypeIQ4_XS)},
	{"LMSCORE_TYPE_F32", "gguf.TensorF32", int64(gguf.TensorF32)},
	{"LMSCORE_TYPE_F16", "gguf.TensorF16", int64(gguf.TensorF16)},
	{"LMSCORE_TYPE_Q8_0", "gguf.TensorQ8_0", int64(gguf.TensorQ8_0)},
	{"LMSCORE_TYPE_BF16", "gguf.TensorBF16", int64(gguf.TensorBF16)},

	{"LMSCORE_LAYER_ATTN_NORM", "model.AttnNorm", int64(model.AttnNorm)},
	{"LMSCORE_LAYER_ATTN_NORM_B", "model.AttnNormB", int64(model.AttnNormB)},
	{"LMSCORE_LAYER_WQ", "model.WQ", int64(model.WQ)},
	{"LMSCORE_LAYER_WK", "model.WK", int64(model.WK)},
	{"LMSCORE_LAYER_WV", "model.WV", int64(model.WV)},
	{"LMSCORE_LAYER_BQ", "model.BQ", int64(model.BQ)},
	{"LMSCORE_LAYER_BK", "model.BK", int64(model.BK)},
	{"LMSCORE_LAYER_BV", "model.BV", int64(model.BV)},
	{"LMSCORE_LAYER_WQKV", "model.WQKV", int64(model.WQKV)},
	{"LMSCORE_LAYER_BQKV", "model.BQKV", int64(model.BQKV)},
	{"LMSCORE_LAYER_WO", "model.WO", int64(model.WO)},
	{"LMSCORE_LAYER_BO", "model.BO", int64(model.BO)},
	{"LMSCORE_LAYER_FFN_NORM", "model.FFNNorm", int64(model.FFNNorm)},
	{"LMSCORE_LAYER_FFN_NORM_B", "model.FFNNormB", int64(model.FFNNormB)},
	{"LMSCORE_LAYER_FFN_GATE", "model.FFNGate", int64(model.FFNGate)},
	{"LMSCORE_LAYER_FFN_UP", "model.FFNUp", int64(model.FFNUp)},
	{"LMSCORE_LAYER_FFN_UP_B", "model.FFNUpB", int64(model.FFNUpB)},
	{"LMSCORE_LAYER_FFN_DOWN", "model.FFNDown", int64(model.FFNDown)},
	{"LMSCORE_LAYER_FFN_DOWN_B", "model.FFNDownB", int64(model.FFNDownB)},
	{"LMSCORE_LAYER_ATTN_Q_NORM", "model.AttnQNorm", int64(model.AttnQNorm)},
	{"LMSCORE_LAYER_ATTN_K_NORM", "model.AttnKNorm", int64(model.AttnKNorm)},
	{"LMSCORE_LAYER_ATTN_POST_NORM", "model.AttnPostNorm", int64(model.AttnPostNorm)},
	{"LMSCORE_LAYER_FFN_POST_NORM", "model.FFNPostNorm", int64(model.FFNPostNorm)},
	{"LMSCORE_LAYER_FFN_GATE_INP", "model.FFNGateInp", int64(model.FFNGateInp)},
	{"LMSCORE_LAYER_FFN_GATE_EXPS", "model.FFNGateExps", int64(model.FFNGateExps)},
	{"LMSCORE_LAYER_FFN_UP_EXPS", "model.FFNUpExps", int64(model.FFNUpExps)},
	{"LMSCORE_LAYER_FFN_DOWN_EXPS", "model.FFNDownExps", int64(model.FFNDownExps)},
	{"LMSCORE_LAYER_FFN_GATE_INP_SHEXP", "model.FFNGateInpShexp", int64(model.FFNGateInpShexp)},
	{"LMSCORE_LAYER_FFN_GATE_SHEXP", "model.FFNGateShexp", int64(model.FFNGateShexp)},
	{"LMSCORE_LAYER_FFN_UP_SHEXP", "model.FFNUpShexp", int64(model.FFNUpShexp)},
	{"LMSCORE_LAYER_FFN_DOWN_SHEXP", "model.FFNDownShexp", int64(model.FFNDownShexp)},
	{"LMSCORE_LAYER_ROLE_COUNT", "model.LayerRoleCount", int64(model.LayerRoleCount)},

	{"LMSCORE_PRECISION_FP32", "binding.PrecisionFP32", int64(PrecisionFP32)},
	{"LMSCORE_PRECISION_BF16", "binding.PrecisionBF16", int64(PrecisionBF16)},
}

var (
	enumBlock  = regexp.MustCompile(`(?s)typedef enum (\w+) \{(.*?)\} \w+;`)
	enumerator = regexp.MustCompile(`(?m)^\s*(LMSCORE_\w+)\s*=`)
)

// headerEnumerators reads the enumerator names of every enum in lmscore.h.
func headerEnumerators(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(abiHeader)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	blocks := enumBlock.FindAllStringSubmatch(string(src), -1)
	if len(blocks) == 0 {
		t.Fatalf("%s: no typedef enum found", abiHeader)
	}
	for _, b := range blocks {
		for _, m := range enumerator.FindAllStringSubmatch(b[2], -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// TestEnumMirrorsMatchHeader: every Go mirror of a C enum has the C value,
// and every enumerator of lmscore.h has a Go twin.
func TestEnumMirrorsMatchHeader(t *testing.T) {
	inHeader := headerEnumerators(t)
	for _, name := range inHeader {
		if _, ok := cEnumerators[name]; !ok {
			t.Errorf("%s is in lmscore.h but not in binding/abi_enums.go's cEnumerators", name)
		}
		if !slices.ContainsFunc(goMirrors, func(m goMirror) bool { return m.c == name }) {
			t.Errorf("%s is in lmscore.h but has no Go twin (add one, and list it in goMirrors)", name)
		}
	}
	for name := range cEnumerators {
		if !slices.Contains(inHeader, name) {
			t.Errorf("cEnumerators lists %s, which lmscore.h no longer has", name)
		}
	}
	for _, m := range goMirrors {
		want, ok := cEnumerators[m.c]
		if !ok {
			t.Errorf("%s mirrors %s, which is not in cEnumerators", m.goName, m.c)
			continue
		}
		if m.value != want {
			t.Errorf("%s = %d, but lmscore.h has %s = %d", m.goName, m.value, m.c, want)
		}
	}
}

// TestABIFunctionListMatchesDeclarations: LMSCORE_ABI_FUNCTIONS, which
// binding/backend.{h,c} and kernels/tests/abi.h expand, names exactly the
// functions lmscore.h declares, in the same order. (The types are checked
// by the compiler, in backend.c.)
func TestABIFunctionListMatchesDeclarations(t *testing.T) {
	src, err := os.ReadFile(abiHeader)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	var declared []string
	for _, m := range regexp.MustCompile(`LMSCORE_API [^(;]*?\b(lmscore_\w+)\(`).FindAllStringSubmatch(text, -1) {
		declared = append(declared, strings.TrimPrefix(m[1], "lmscore_"))
	}
	start := strings.Index(text, "#define LMSCORE_ABI_FUNCTIONS(X)")
	if start < 0 {
		t.Fatal("lmscore.h has no LMSCORE_ABI_FUNCTIONS")
	}
	end := strings.Index(text[start:], "\n\n")
	if end < 0 {
		end = len(text) - start
	}
	var listed []string
	for _, m := range regexp.MustCompile(`X\([^,]+,\s*(\w+),`).FindAllStringSubmatch(text[start:start+end], -1) {
		listed = append(listed, m[1])
	}
	if len(declared) == 0 || !slices.Equal(declared, listed) {
		t.Errorf("lmscore.h declares %v\nbut LMSCORE_ABI_FUNCTIONS lists %v", declared, listed)
	}
}

// TestLayerRoleNamesMatchC checks that Go (model.LayerRole.String, which
// names the GGUF tensors) and the C validator (its error messages) spell
// every layer role alike: both lists are written by hand, in two languages.
func TestLayerRoleNamesMatchC(t *testing.T) {
	for r := model.LayerRole(0); r < model.LayerRoleCount; r++ {
		if got, want := cLayerRoleName(int(r)), r.String(); got != want {
			t.Errorf("layer role %d: C calls it %q, Go %q", r, got, want)
		}
	}
	if got := cLayerRoleName(int(model.LayerRoleCount)); got != "unknown role" {
		t.Errorf("role %d past the end: C calls it %q", model.LayerRoleCount, got)
	}
}
