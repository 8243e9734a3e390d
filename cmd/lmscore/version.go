package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/lmscore/lmscore"
)

// version may be set at link time: go build -ldflags "-X main.version=v1.2.3".
// Otherwise the module version from the build info is used ("devel" for a
// build from a checkout).
var version = ""

// buildInfo is what `lmscore version` reports about the build.
type buildInfo struct {
	Version  string
	Commit   string // vcs.revision, "unknown" when the build has none
	Modified bool   // vcs.modified: built from a tree with uncommitted changes
	Go       string
}

func readBuildInfo() buildInfo {
	info, ok := debug.ReadBuildInfo()
	return buildInfoFrom(info, ok)
}

func buildInfoFrom(info *debug.BuildInfo, ok bool) buildInfo {
	b := buildInfo{Version: version, Commit: "unknown", Go: runtime.Version()}
	if ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// printVersion prints the version, the commit and which backends this
// binary can run: the CPU core when built with cgo, CUDA when its library
// is found where Open would look.
func printVersion(w io.Writer) {
	b := readBuildInfo()
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "lmscore %s\ncommit   %s\ngo       %s %s/%s\n", b.Version, commit, b.Go, runtime.GOOS, runtime.GOARCH)
	cpu, cuda := "built in", ""
	lib, err := lmscore.FindCUDALibrary("")
	switch {
	case errors.Is(err, lmscore.ErrNoCgo):
		cpu, cuda = "not built (no cgo)", "not built (no cgo)"
	case err != nil:
		// The message names the places looked in and how to build the library.
		msg := err.Error()
		if i := strings.Index(msg, "not found: "); i >= 0 {
			msg = msg[i+len("not found: "):]
		}
		cuda = "library not found: " + msg
	default:
		cuda = lib
	}
	fmt.Fprintf(w, "cpu      %s\ncuda     %s\n", cpu, cuda)
}
