package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// lmscore's device memory is allocated by its CUDA library, out of Go's
// sight and outside the lmscore.h ABI, so the benchmark reads it the way an
// operator would: from nvidia-smi. What it reports is the whole process's:
// CUDA context, weights, the preallocated KV pool and the step workspace.

// NvidiaSMI runs nvidia-smi with args and returns its output.
type NvidiaSMI func(args ...string) (string, error)

// RunNvidiaSMI is the NvidiaSMI of the machine.
func RunNvidiaSMI(args ...string) (string, error) {
	out, err := exec.Command("nvidia-smi", args...).Output()
	if err != nil {
		return "", fmt.Errorf("nvidia-smi: %w", err)
	}
	return string(out), nil
}

// ProcessGPUMemory returns the device memory of process pid in bytes, from
// nvidia-smi's list of compute processes. Where that list is empty (some
// virtual machines hide it), it falls back to the card's used memory less
// baseline, the used memory measured before the process touched the GPU.
func ProcessGPUMemory(smi NvidiaSMI, pid int, baseline int64) (int64, string, error) {
	out, err := smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
	if err == nil {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(line, ",")
			if len(f) != 2 {
				continue
			}
			p, err1 := strconv.Atoi(strings.TrimSpace(f[0]))
			mib, err2 := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
			if err1 == nil && err2 == nil && p == pid {
				return mib << 20, "nvidia-smi, this process (context, weights, KV pool, workspace)", nil
			}
		}
	}
	used, err := CardUsedMemory(smi)
	if err != nil {
		return 0, "", err
	}
	return used - baseline, "nvidia-smi, card used minus the use before loading (context, weights, KV pool, workspace)", nil
}

// CardUsedMemory returns the first card's used memory in bytes.
func CardUsedMemory(smi NvidiaSMI) (int64, error) {
	out, err := smi("--query-gpu=memory.used", "--format=csv,noheader,nounits")
	if err != nil {
		return 0, err
	}
	first := strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[0])
	mib, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, errors.New("nvidia-smi: memory.used: unexpected output " + strconv.Quote(out))
	}
	return mib << 20, nil
}
