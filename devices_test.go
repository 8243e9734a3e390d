package lmscore

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// CUDA_VISIBLE_DEVICES as CUDA reads it: indices or UUIDs, up to the first
// entry that is neither (-1 is the usual way to hide every device).
func TestVisibleCUDADevicesStopsAtAnInvalidEntry(t *testing.T) {
	for v, want := range map[string]int{
		"0":                         1,
		"3,5":                       2,
		" 1 , 0 ":                   2,
		"":                          0,
		"-1":                        0,
		"0,2,-1,1":                  2,
		"0,,1":                      1,
		"0,x,1":                     1,
		"GPU-8932f937-d72c-4106":    1,
		"GPU-8932f937,GPU-a1b2c3d4": 2,
		"MIG-4b1e0ab8-2a9c-5f5e-8d32-0a7e5c1f3f11": 1,
		"MIG-GPU-8932f937/1/0,0":                   2,
	} {
		t.Setenv("CUDA_VISIBLE_DEVICES", v)
		assert.Equal(t, want, VisibleCUDADevices(), "CUDA_VISIBLE_DEVICES=%q", v)
	}
}
