package lmscore

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DeviceError is a failure of one member of a Pool: its backend and device
// ordinal (for the CPU, the instance's ordinal in the pool), and the error
// as that member reported it. errors.As reaches the error inside (a
// *RequestError, an *Error of kind ErrDevice...).
type DeviceError struct {
	Backend string
	Device  int
	Err     error
}

func (e *DeviceError) Error() string {
	what := "device"
	if e.Backend == "cpu" {
		what = "instance"
	}
	return fmt.Sprintf("lmscore: %s %s %d: %s", e.Backend, what, e.Device, strings.TrimPrefix(e.Err.Error(), "lmscore: "))
}

func (e *DeviceError) Unwrap() error { return e.Err }

// ParseDevices reads a device list, "all" or ordinals separated by commas
// ("0,1,3"), against the available devices' count. available < 0 means the
// count is unknown: a list is then taken as given (opening a device that is
// not there fails with an error naming it), and "all" is refused.
func ParseDevices(spec string, available int) ([]int, error) {
	spec = strings.TrimSpace(spec)
	if spec == "all" {
		switch {
		case available < 0:
			return nil, fmt.Errorf("lmscore: devices %q: the number of devices is unknown here; list them (0,1,...)", spec)
		case available == 0:
			return nil, fmt.Errorf("lmscore: devices %q: no device is available", spec)
		}
		all := make([]int, available)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	if spec == "" {
		return nil, fmt.Errorf("lmscore: devices: empty list (want all or ordinals such as 0,1)")
	}
	var devices []int
	for _, field := range strings.Split(spec, ",") {
		field = strings.TrimSpace(field)
		d, err := strconv.Atoi(field)
		if err != nil || d < 0 || field != strconv.Itoa(d) {
			return nil, fmt.Errorf("lmscore: devices %q: %q is not a device ordinal (want all or ordinals such as 0,1)", spec, field)
		}
		devices = append(devices, d)
	}
	if err := checkDevices(devices, available); err != nil {
		return nil, fmt.Errorf("lmscore: devices %q: %v", spec, strings.TrimPrefix(err.Error(), "lmscore: "))
	}
	return devices, nil
}

// checkDevices refuses an empty list, a negative or repeated ordinal, and,
// when available >= 0, an ordinal that is not there.
func checkDevices(devices []int, available int) error {
	if len(devices) == 0 {
		return fmt.Errorf("lmscore: no devices")
	}
	for i, d := range devices {
		switch {
		case d < 0:
			return fmt.Errorf("lmscore: device %d is negative", d)
		case slices.Contains(devices[:i], d):
			return fmt.Errorf("lmscore: device %d is listed twice", d)
		case available >= 0 && d >= available:
			return fmt.Errorf("lmscore: device %d is not there (%s)", d, countDevices(available))
		}
	}
	return nil
}

func countDevices(n int) string {
	switch n {
	case 0:
		return "no device is available"
	case 1:
		return "1 device is available: 0"
	}
	return fmt.Sprintf("%d devices are available: 0 to %d", n, n-1)
}

// AvailableDevices is the device count ParseDevices checks a list against
// on a backend: VisibleCUDADevices on CUDA; on the CPU -1 (any list), since
// its ordinals only name instances that share the cores.
func AvailableDevices(backend string) int {
	if backend == "cuda" {
		return VisibleCUDADevices()
	}
	return -1
}

// nvidiaDevice matches the character devices the NVIDIA driver creates,
// one per GPU.
var nvidiaDevice = regexp.MustCompile(`^nvidia[0-9]+$`)

// VisibleCUDADevices is the number of CUDA devices this process can use,
// as far as it can tell without the CUDA core (whose ABI has no device
// count): the entries of CUDA_VISIBLE_DEVICES when it is set, otherwise
// the driver's device files. It returns -1 when neither says (no Linux
// device directory), for ParseDevices to take a list as given.
func VisibleCUDADevices() int {
	if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		n := 0
		for _, f := range strings.Split(v, ",") {
			// CUDA enumerates the entries before the first invalid one: an
			// empty variable, or -1, hides every device. An index or UUID
			// that names no GPU still counts here: opening it fails,
			// naming it.
			if !cudaVisibleEntry(strings.TrimSpace(f)) {
				break
			}
			n++
		}
		return n
	}
	entries, err := os.ReadDir(string(filepath.Separator) + "dev")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range entries {
		if nvidiaDevice.MatchString(e.Name()) {
			n++
		}
	}
	return n
}

// cudaVisibleEntry reports whether CUDA could take f as a device: a
// non-negative index, or a GPU or MIG instance's UUID (GPU-..., MIG-...).
func cudaVisibleEntry(f string) bool {
	if d, err := strconv.Atoi(f); err == nil {
		return d >= 0
	}
	return strings.HasPrefix(f, "GPU-") || strings.HasPrefix(f, "MIG-")
}
