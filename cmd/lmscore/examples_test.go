package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lmscore/lmscore/workload"
)

const examplesDir = "../../examples"

// job is the part of a Kubernetes Job manifest the examples rely on.
type job struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Name    string   `yaml:"name"`
					Image   string   `yaml:"image"`
					Command []string `yaml:"command"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readJob(t *testing.T, name string) job {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, "k8s", name))
	if err != nil {
		t.Fatal(err)
	}
	var j job
	if err := yaml.Unmarshal(b, &j); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if j.APIVersion != "batch/v1" || j.Kind != "Job" || j.Metadata.Name == "" {
		t.Fatalf("%s: %s %s %q: want a batch/v1 Job with a name", name, j.APIVersion, j.Kind, j.Metadata.Name)
	}
	if p := j.Spec.Template.Spec.RestartPolicy; p != "Never" && p != "OnFailure" {
		t.Errorf("%s: restartPolicy %q: a Job's pods must be Never or OnFailure", name, p)
	}
	if len(j.Spec.Template.Spec.Containers) != 1 || j.Spec.Template.Spec.Containers[0].Image == "" {
		t.Fatalf("%s: want one container with an image", name)
	}
	return j
}

// checkCLI parses args (after "lmscore") with the real command's flags: an
// example that names a flag lmscore lacks fails here.
func checkCLI(t *testing.T, where string, args []string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no lmscore command", where)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		t.Fatalf("%s: lmscore has no command %q", where, args[0])
	}
	fs, _ := cmd.newFlagSet()
	if _, err := parseInterspersed(fs, args[1:]); err != nil {
		t.Fatalf("%s: lmscore %s: %v", where, args[0], err)
	}
	if f := fs.Lookup("shard"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return ""
}

// TestKubernetesExample: the Indexed Job's manifest has what an Indexed Job
// needs, its command is lmscore's, with N the Job's completions; run as
// the Job would run it (each index's pod in turn, /data a folder here),
// then the merge Job's command, it writes one process's output.
func TestKubernetesExample(t *testing.T) {
	score, merge := readJob(t, "score-shards.yaml"), readJob(t, "merge.yaml")
	if score.Spec.CompletionMode != "Indexed" || score.Spec.Completions == nil || *score.Spec.Completions < 1 {
		t.Fatalf("score-shards.yaml: completionMode %q, completions %v: want an Indexed Job with completions", score.Spec.CompletionMode, score.Spec.Completions)
	}
	n := *score.Spec.Completions
	cmdline := score.Spec.Template.Spec.Containers[0].Command
	if cmdline[0] != "lmscore" {
		t.Fatalf("score-shards.yaml runs %q, not lmscore", cmdline[0])
	}
	if shard := checkCLI(t, "score-shards.yaml", cmdline[1:]); shard != "auto/"+strconv.Itoa(n) {
		t.Errorf("score-shards.yaml: --shard %q with %d completions: want auto/%d", shard, n, n)
	}
	mergeCmd := merge.Spec.Template.Spec.Containers[0].Command
	if len(mergeCmd) != 3 || mergeCmd[0] != "sh" || mergeCmd[1] != "-c" || !strings.HasPrefix(mergeCmd[2], "lmscore merge ") {
		t.Fatalf("merge.yaml: command %q: want sh -c 'lmscore merge ...'", mergeCmd)
	}
	checkCLI(t, "merge.yaml", strings.Fields(mergeCmd[2])[1:])
	if testing.Short() {
		return
	}

	dir := t.TempDir()
	bin := buildBinary(t, dir)
	data := filepath.Join(dir, "data")
	writeExampleInputs(t, data)
	os.MkdirAll(filepath.Join(data, "out"), 0o755) // the claim's folder, made once by whoever fills it
	one := filepath.Join(dir, "one.jsonl")
	runCLI(t, bin, nil, "score", "--model", filepath.Join(data, "model.gguf"), "--in", filepath.Join(data, "requests.jsonl"), "--out", one)
	for i := range n {
		var args []string
		for _, a := range cmdline[1:] {
			// What the kubelet and the volume mount do to the command.
			a = strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", strconv.Itoa(i))
			args = append(args, strings.ReplaceAll(a, "/data", data))
		}
		runCLI(t, bin, []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)}, args...)
	}
	sh := exec.Command("sh", "-c", strings.ReplaceAll(strings.Replace(mergeCmd[2], "lmscore", bin, 1), "/data", data))
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("merge.yaml's command: %v\n%s", err, out)
	}
	if !sameFile(t, one, filepath.Join(data, "out", "results.jsonl")) {
		t.Error("the Indexed Job's merged output differs from one process's")
	}
}

// TestSlurmExample: the scripts parse (bash -n), and submit.sh, run with an
// sbatch that runs each job here at once (an array's tasks one after
// another, with the variables Slurm sets), scores the shards and merges
// them into one process's output, through lmscore's real flags.
func TestSlurmExample(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join(examplesDir, "slurm", "*"))
	if err != nil || len(scripts) < 3 {
		t.Fatalf("examples/slurm: %v, %d files", err, len(scripts))
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
	if testing.Short() {
		t.Skip("runs the scripts through the binary, built here")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	data := filepath.Join(dir, "data")
	writeExampleInputs(t, data)
	fake := filepath.Join(dir, "fakebin")
	os.MkdirAll(fake, 0o755)
	// Job output goes to stderr: `sbatch --parsable` prints only the id.
	sbatch := `#!/bin/bash
set -euo pipefail
array= script=
for a in "$@"; do
  case $a in
    --array=*) array=${a#--array=} ;;
    --*) ;;
    *) script=$a ;;
  esac
done
echo "$@" >>"$SBATCH_LOG"
if [ -n "$array" ]; then
  lo=${array%-*} hi=${array#*-}
  for i in $(seq "$lo" "$hi"); do
    SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1)) SLURM_CPUS_PER_TASK=1 bash "$script" >&2
  done
else
  bash "$script" >&2
fi
echo $RANDOM
`
	if err := os.WriteFile(filepath.Join(fake, "sbatch"), []byte(sbatch), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	const shards = 5
	log := filepath.Join(dir, "sbatch.log")
	cmd := exec.Command("bash", filepath.Join(examplesDir, "slurm", "submit.sh"))
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "SBATCH_LOG="+log, "LMSCORE="+bin,
		"MODEL="+filepath.Join(data, "model.gguf"), "REQUESTS="+filepath.Join(data, "requests.jsonl"),
		"OUT="+out, fmt.Sprint("SHARDS=", shards))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("submit.sh: %v\n%s", err, b)
	}
	calls, _ := os.ReadFile(log)
	if !strings.Contains(string(calls), fmt.Sprintf("--array=0-%d", shards-1)) || !strings.Contains(string(calls), "--dependency=afterok:") {
		t.Errorf("submit.sh's sbatch calls:\n%s\nwant an array of %d and a merge after it", calls, shards)
	}
	for i := range shards {
		if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("shard-%d.jsonl", i))); err != nil {
			t.Errorf("shard %d: %v", i, err)
		}
	}
	one := filepath.Join(dir, "one.jsonl")
	runCLI(t, bin, nil, "score", "--model", filepath.Join(data, "model.gguf"), "--in", filepath.Join(data, "requests.jsonl"), "--out", one)
	if !sameFile(t, one, filepath.Join(out, "results.jsonl")) {
		t.Error("the Slurm array's merged output differs from one process's")
	}
}

// writeExampleInputs writes the model and requests the examples read into
// data, as model.gguf and requests.jsonl.
func writeExampleInputs(t *testing.T, data string) {
	t.Helper()
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(shardTestModel(t, data), filepath.Join(data, "model.gguf")); err != nil {
		t.Fatal(err)
	}
	lines, err := workload.Generate("metaicl16", workload.Options{Seed: 2, Vocab: 300, FirstID: 3, Newline: 13, Scale: 0.005})
	if err != nil {
		t.Fatal(err)
	}
	if err := workload.WriteFile(filepath.Join(data, "requests.jsonl"), lines); err != nil {
		t.Fatal(err)
	}
}
