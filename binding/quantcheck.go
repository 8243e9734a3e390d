//go:build cgo

package binding

// #include <stdint.h>
// int32_t lmscore_go_dequant(int32_t type, const void *src, int64_t n_blocks, float *out);
// int32_t lmscore_go_dequant_panel(int n_parts, const int32_t *types, const int64_t *rows, const uint8_t *data,
//                                  int64_t k, int64_t p, int64_t k0, int32_t kc, float *out);
// int32_t lmscore_go_dequant_matrix_seconds(int n_parts, const int32_t *types, const int64_t *rows,
//                                           const uint8_t *data, int64_t k, int32_t reps, double *seconds);
import "C"

import (
	"unsafe"

	"github.com/lmscore/lmscore/model"
)

// The CPU core's dequantization kernels, for quantkernel_test.go and its
// benchmark (test use only: cgo cannot be used in _test.go files). Each
// runs the instruction set LMSCORE_CPU_ISA names, or the best one.

// quantPart is rows rows of one type, k values each, as blocks.
type quantPart struct {
	typ  model.TensorType
	rows int64
	data []byte
}

func statusError(op string, st C.int32_t) error {
	if st == 0 {
		return nil
	}
	return &Error{Status: Status(st), Op: op}
}

// cDequant decodes n blocks of typ (values per block: typ.BlockSize()).
func cDequant(typ model.TensorType, src []byte, n int) ([]float32, error) {
	out := make([]float32, n*typ.BlockSize()+1)
	var p unsafe.Pointer
	if len(src) > 0 {
		p = unsafe.Pointer(&src[0])
	}
	st := C.lmscore_go_dequant(C.int32_t(typ), p, C.int64_t(n), (*C.float)(&out[0]))
	return out[:len(out)-1], statusError("dequant", st)
}

func partArgs(parts []quantPart) (types []C.int32_t, rows []C.int64_t, data []byte) {
	for _, p := range parts {
		types = append(types, C.int32_t(p.typ))
		rows = append(rows, C.int64_t(p.rows))
		data = append(data, p.data...)
	}
	return types, rows, data
}

// cDequantPanel is panel p, k in [k0, k0+kc), of the matrix whose rows are
// parts one after the other: kc x 32 floats, [k][row in panel].
func cDequantPanel(parts []quantPart, k int64, p, k0 int64, kc int) ([]float32, error) {
	types, rows, data := partArgs(parts)
	out := make([]float32, kc*32)
	st := C.lmscore_go_dequant_panel(C.int(len(parts)), &types[0], &rows[0], (*C.uint8_t)(&data[0]), C.int64_t(k),
		C.int64_t(p), C.int64_t(k0), C.int32_t(kc), (*C.float)(&out[0]))
	return out, statusError("dequant panel", st)
}

// cDequantMatrixSeconds times reps dequantizations of every panel of the
// matrix (gemm's K blocks, no multiply).
func cDequantMatrixSeconds(parts []quantPart, k int64, reps int) (float64, error) {
	types, rows, data := partArgs(parts)
	var sec C.double
	st := C.lmscore_go_dequant_matrix_seconds(C.int(len(parts)), &types[0], &rows[0], (*C.uint8_t)(&data[0]),
		C.int64_t(k), C.int32_t(reps), &sec)
	return float64(sec), statusError("dequant matrix", st)
}
