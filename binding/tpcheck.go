//go:build cgo

package binding

// #include <stddef.h>
// int lmscore_go_tp_barrier_check(char *msg, size_t cap);
import "C"

import (
	"errors"
	"unsafe"
)

// tpBarrierCheck runs csrc/cpu/tp_check.cpp's scenarios of the
// tensor-parallel barrier on threads (test use only: cgo cannot be used in
// _test.go files).
func tpBarrierCheck() error {
	buf := make([]byte, 512)
	if C.lmscore_go_tp_barrier_check((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))) == 0 {
		return nil
	}
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return errors.New(string(buf[:n]))
}
