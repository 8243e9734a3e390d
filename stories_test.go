package lmscore

import (
	"testing"

	"github.com/lmscore/lmscore/internal/testshared"
)

func storiesGGUF(t *testing.T) string { return testshared.Stories260KGGUF(t) }
