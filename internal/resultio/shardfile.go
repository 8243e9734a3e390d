package resultio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// A shard file is what `lmscore score --shard i/N --out FILE` writes: one
// shard's results, with what `lmscore merge` needs to rebuild the output
// and the summary of one process without the request file:
//
//	{"lmscore_shard":1,"shard":2,"shards":7,"identity":{...},...}   the header
//	{"i":3,"norm_bytes":5,"c":{"group":"q1",...},"r":{"id":"q4",...}}  one per result
//
// "i" is the request's index among all the run's requests (every shard
// reads the whole file), "r" its output line exactly as Encode wrote it
// (merge writes it back byte for byte), norm_bytes and "c" (its question,
// when it has one) what the multiple-choice metrics need beyond the line.
// The file is written once, atomically, when the shard ends.

// ShardFileVersion is the header's format number.
const ShardFileVersion = 1

// ShardHeader is a shard file's first line.
type ShardHeader struct {
	Version int `json:"lmscore_shard"`
	Shard   int `json:"shard"`
	Shards  int `json:"shards"`
	// Identity is the run's (Identity.Shard says "Shard/Shards"); every
	// shard of one run has the same identity but for Shard.
	Identity Identity `json:"identity"`
	// Requests is the shard's share of the run's Identity.Requests;
	// Interrupted says the run stopped with fewer results than that.
	Requests    int  `json:"shard_requests"`
	Interrupted bool `json:"interrupted,omitempty"`
	// Summary is the shard's summary JSON, as the score job writes it.
	Summary json.RawMessage `json:"summary"`
}

// Choice is a result's multiple-choice question (lmscore.Choice).
type Choice struct {
	Task  string `json:"task,omitempty"`
	Group string `json:"group"`
	Index int    `json:"index"`
	Label int    `json:"label"`
}

// ShardRecord is one result of a shard file.
type ShardRecord struct {
	Index     int             `json:"i"`
	NormBytes int             `json:"norm_bytes"`
	Choice    *Choice         `json:"c,omitempty"`
	Line      json.RawMessage `json:"r"` // the output line without its newline
}

// WriteShardFile writes a shard file atomically: h, then the records.
func WriteShardFile(path string, h ShardHeader, recs []ShardRecord) error {
	h.Version = ShardFileVersion
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(append(head, '\n')); err != nil {
			return err
		}
		for _, r := range recs {
			if _, err := w.Write(appendShardRecord(nil, r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// appendShardRecord spells the record by hand around the output line, so
// that the line's bytes are the ones Encode wrote (json.Marshal of a
// RawMessage would re-escape them).
func appendShardRecord(b []byte, r ShardRecord) []byte {
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(r.Index), 10)
	b = append(b, `,"norm_bytes":`...)
	b = strconv.AppendInt(b, int64(r.NormBytes), 10)
	if r.Choice != nil {
		c, _ := json.Marshal(r.Choice) // strings and ints: cannot fail
		b = append(append(b, `,"c":`...), c...)
	}
	b = append(b, `,"r":`...)
	b = append(b, bytes.TrimSuffix(r.Line, []byte{'\n'})...)
	return append(b, "}\n"...)
}

// ErrNotShardFile is wrapped by ReadShardFile's error for a file that does
// not start with a shard header (a plain results file, say).
var ErrNotShardFile = errors.New("not a shard file of lmscore score --shard")

// ReadShardFile reads a shard file; every error names path and the line.
func ReadShardFile(path string) (ShardHeader, []ShardRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return ShardHeader{}, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var h ShardHeader
	var recs []ShardRecord
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return ShardHeader{}, nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(raw) == 0 {
			if n == 1 {
				return ShardHeader{}, nil, fmt.Errorf("%s: empty: %w", path, ErrNotShardFile)
			}
			return h, recs, nil
		}
		if raw[len(raw)-1] != '\n' {
			return ShardHeader{}, nil, fmt.Errorf("%s:%d: the last line is cut short (shard files are written whole: is this one?)", path, n)
		}
		if n == 1 {
			if json.Unmarshal(raw, &h) != nil || h.Version == 0 {
				return ShardHeader{}, nil, fmt.Errorf("%s: %w", path, ErrNotShardFile)
			}
			if h.Version != ShardFileVersion {
				return ShardHeader{}, nil, fmt.Errorf("%s: shard file format %d, this lmscore reads %d", path, h.Version, ShardFileVersion)
			}
			continue
		}
		var rec ShardRecord
		if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Line) == 0 || rec.Line[0] != '{' {
			return ShardHeader{}, nil, fmt.Errorf("%s:%d: not a shard record", path, n)
		}
		recs = append(recs, rec)
	}
}
