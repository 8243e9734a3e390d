package resultio

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// A journal keeps a run's finished results on disk as they complete, in
// completion order, so that a killed run loses at most the last sync
// interval's work and `lmscore score --resume` computes only the rest. It
// is append-only JSONL (SQLite would add a dependency and a cgo layer for
// what one append and one fsync a batch do):
//
//	{"lmscore_journal":1,"identity":{...}}        the header: what the results depend on
//	{"i":3,"norm_bytes":5,"r":{"id":"q4",...}}    one per finished result
//
// "i" is the request's index among the run's requests (not its line: with
// --allow-duplicate-ids an id names no single request), "r" the result's
// output line exactly as Encode wrote it, so that a resumed run writes it
// back byte for byte, and norm_bytes what the output line lacks for the
// multiple-choice metrics. A torn last line (a kill mid-write) is not a
// record: ReadJournal stops before it and the append starts over it.

// JournalVersion is the header's format number.
const JournalVersion = 1

// SyncInterval is how often a journal's appends are flushed and fsynced by
// default: results are durable at most this long after they complete.
const SyncInterval = 500 * time.Millisecond

// Header is a journal's first line.
type Header struct {
	Version  int      `json:"lmscore_journal"`
	Identity Identity `json:"identity"`
}

// Identity is everything a run's results depend on. A journal is resumed
// only by a run of the same identity. Left out on purpose: the block size,
// batch size, KV budget, thread count and the prefix cache, since scores do
// not depend on them (metamorphic_test.go pins that on the CPU, the batch
// invariance tests on CUDA); the output and summary paths.
type Identity struct {
	Model ModelIdentity `json:"model"`
	// RequestsSHA256 is the hash of the request input's bytes, Requests
	// the number of requests read from it.
	RequestsSHA256 string `json:"requests_sha256"`
	Requests       int    `json:"requests"`
	// The settings that change a score or the output.
	Backend           string `json:"backend"`
	Precision         string `json:"precision,omitempty"`
	MaxLength         int    `json:"max_length"`
	TokenLogProbs     bool   `json:"token_logprobs"`
	SkipInvalid       bool   `json:"skip_invalid"`
	AllowDuplicateIDs bool   `json:"allow_duplicate_ids"`
	// Build is the lmscore build (VCS revision) that computed the results:
	// another build may compute other numbers.
	Build string `json:"build"`
	// Shard is "i/N" for a run that scores shard i of N (`--shard`), empty
	// for a whole run: one shard's journal never resumes another.
	Shard string `json:"shard,omitempty"`
}

// ModelIdentity identifies a model file without reading all of it (an 8B
// model is 16 GB: a full hash would cost a resumed run more than the work
// it saves): its size, its modification time and a SHA-256 of its first
// ModelHeadBytes (the GGUF header, metadata and tokenizer of any model
// lmscore loads, and the start of the tensor data) and last ModelTailBytes
// (the end of the tensor data). A copy of the file (new mtime) is another
// model: refusing a valid resume is cheap, mixing two models' scores is not.
type ModelIdentity struct {
	Size    int64  `json:"size"`
	ModTime string `json:"mtime"` // RFC 3339, nanoseconds
	SHA256  string `json:"head_tail_sha256"`
}

// The spans of a model file that ModelIdentity hashes.
const (
	ModelHeadBytes = 16 << 20
	ModelTailBytes = 1 << 20
)

// IdentifyModel computes path's ModelIdentity.
func IdentifyModel(path string) (ModelIdentity, error) {
	f, err := os.Open(path)
	if err != nil {
		return ModelIdentity{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ModelIdentity{}, err
	}
	h := sha256.New()
	head := min(st.Size(), ModelHeadBytes)
	if _, err := io.CopyN(h, f, head); err != nil {
		return ModelIdentity{}, fmt.Errorf("hashing %s: %w", path, err)
	}
	if tail := max(head, st.Size()-ModelTailBytes); tail < st.Size() {
		if _, err := io.Copy(h, io.NewSectionReader(f, tail, st.Size()-tail)); err != nil {
			return ModelIdentity{}, fmt.Errorf("hashing %s: %w", path, err)
		}
	}
	return ModelIdentity{Size: st.Size(), ModTime: st.ModTime().UTC().Format(time.RFC3339Nano),
		SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Diff names the first field in which two identities differ, with both
// values, or returns "" when they are the same.
func (a Identity) Diff(b Identity) string {
	return a.DiffNamed(b, "in the journal", "now")
}

// DiffNamed is Diff with the words that say where a and b come from.
func (a Identity) DiffNamed(b Identity, inA, inB string) string {
	return diff("", reflect.ValueOf(a), reflect.ValueOf(b), inA, inB)
}

func diff(prefix string, a, b reflect.Value, inA, inB string) string {
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		name := prefix + jsonName(t.Field(i))
		fa, fb := a.Field(i), b.Field(i)
		if fa.Kind() == reflect.Struct {
			if d := diff(name+".", fa, fb, inA, inB); d != "" {
				return d
			}
			continue
		}
		if !fa.Equal(fb) {
			return fmt.Sprintf("%s: %v %s, %v %s", name, fa.Interface(), inA, fb.Interface(), inB)
		}
	}
	return ""
}

func jsonName(f reflect.StructField) string {
	name, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
	return string(name)
}

// Record is one journaled result.
type Record struct {
	Index     int             `json:"i"`
	NormBytes int             `json:"norm_bytes"`
	Line      json.RawMessage `json:"r"` // the output line without its newline
}

// ErrTornHeader is a journal killed while its header was written: it holds
// no result, so a resumed run starts over.
var ErrTornHeader = errors.New("the journal's header is incomplete")

// ReadJournal reads a journal: its header, its records in file order and
// the length of its valid part (the header and every complete record). A
// torn or unreadable last line is left out; a bad line followed by good
// ones is an error, since no kill produces it.
func ReadJournal(path string) (Header, []Record, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, nil, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var h Header
	var recs []Record
	var valid int64
	torn := 0 // the line number of a line that did not parse, if any
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return Header{}, nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		if len(raw) == 0 {
			break
		}
		if torn != 0 {
			return Header{}, nil, 0, fmt.Errorf("%s:%d: not a journal record, and records follow it", path, torn)
		}
		complete := raw[len(raw)-1] == '\n'
		if n == 1 && !complete {
			return Header{}, nil, 0, fmt.Errorf("%s: %w", path, ErrTornHeader)
		}
		ok := false
		if complete && n == 1 {
			ok = json.Unmarshal(raw, &h) == nil && h.Version != 0
			if ok && h.Version != JournalVersion {
				return Header{}, nil, 0, fmt.Errorf("%s: journal format %d, this lmscore reads %d", path, h.Version, JournalVersion)
			}
		} else if complete {
			var rec Record
			ok = json.Unmarshal(raw, &rec) == nil && len(rec.Line) > 0 && rec.Line[0] == '{'
			if ok {
				recs = append(recs, rec)
			}
		}
		if !ok {
			torn = n
			continue
		}
		valid += int64(len(raw))
	}
	if valid == 0 {
		return Header{}, nil, 0, fmt.Errorf("%s: no journal header", path)
	}
	return h, recs, valid, nil
}

// Journal appends records and makes them durable every sync interval,
// from a goroutine of its own, rather than on every line: an fsync per
// result would cost more than scoring a short one.
type Journal struct {
	path string
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	err  error // the first write or sync failure; every later Add returns it
	done chan struct{}
	wg   sync.WaitGroup
}

// CreateJournal writes a new journal at path (replacing any) with header h,
// durable before it returns.
func CreateJournal(path string, h Header, every time.Duration) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(h)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("creating the journal %s: %w", path, err)
	}
	return startJournal(path, f, every), nil
}

// AppendJournal continues the journal at path after its first valid bytes
// (ReadJournal's length), dropping a torn last line.
func AppendJournal(path string, valid int64, every time.Duration) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncating the journal %s to its valid %d bytes: %w", path, valid, err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return startJournal(path, f, every), nil
}

func startJournal(path string, f *os.File, every time.Duration) *Journal {
	if every <= 0 {
		every = SyncInterval
	}
	j := &Journal{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20), done: make(chan struct{})}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-j.done:
				return
			case <-t.C:
				j.Sync()
			}
		}
	}()
	return j
}

// Add appends the record of result index: line is Encode's output.
func (j *Journal) Add(index, normBytes int, line []byte) error {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	b := make([]byte, 0, len(line)+40)
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"norm_bytes":`...)
	b = strconv.AppendInt(b, int64(normBytes), 10)
	b = append(b, `,"r":`...)
	b = append(b, line...)
	b = append(b, "}\n"...)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		if _, err := j.w.Write(b); err != nil {
			j.err = fmt.Errorf("writing the journal %s: %w", j.path, err)
		}
	}
	return j.err
}

// Sync writes the buffered records and fsyncs the file. The fsync runs
// outside the lock: Add does not wait for the disk.
func (j *Journal) Sync() error {
	j.mu.Lock()
	if j.err == nil {
		if err := j.w.Flush(); err != nil {
			j.err = fmt.Errorf("writing the journal %s: %w", j.path, err)
		}
	}
	err := j.err
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		j.mu.Lock()
		if j.err == nil {
			j.err = fmt.Errorf("syncing the journal %s: %w", j.path, err)
		}
		err = j.err
		j.mu.Unlock()
	}
	return err
}

// Close stops the syncing goroutine, makes every record durable and
// closes the file.
func (j *Journal) Close() error {
	close(j.done)
	j.wg.Wait()
	return errors.Join(j.Sync(), j.f.Close())
}

// WriteFileAtomic writes path through write without a moment at which path
// holds anything but its old content or the complete new one: a temporary
// file in the same folder, fsynced, renamed over path, the folder fsynced.
// A failed or interrupted write leaves path as it was.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a folder's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
