// Command lmscore scores (context, continuation) pairs with a causal language
// model, computing every shared prompt prefix once. This package only parses
// flags: each subcommand lives in its own file and calls into the library.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// streams are a command's standard files; tests substitute their own.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// stdStreams reads os.Stdin and friends when called, not at init, so that a
// test that swaps os.Stdout sees the swap.
func stdStreams() streams { return streams{os.Stdin, os.Stdout, os.Stderr} }

// action runs a command once its flags are parsed; args are the positional
// arguments, which may come before, between or after the flags.
type action func(ctx context.Context, s streams, args []string) error

// command is one subcommand. Its help is made from these fields and its
// FlagSet by one formatter (printHelp), so that every command's help has
// the same shape and lists every flag.
type command struct {
	name    string
	summary string // one line, for `lmscore help`
	usage   string // after "lmscore ": the synopsis
	about   string // optional paragraphs on what it does
	example string // one command line per line, without the "$ "
	// flags registers the command's flags on fs and returns what runs once
	// they are parsed.
	flags func(fs *flag.FlagSet) action
}

var commands = map[string]*command{}

// register is called from each subcommand file's init.
func register(c *command) { commands[c.name] = c }

var errUsage = errors.New("usage")

// newFlagSet is c's FlagSet with c's flags, silent: parse errors and -h come
// back as errors and this package prints them.
func (c *command) newFlagSet() (*flag.FlagSet, action) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs, c.flags(fs)
}

// run parses args and runs c. -h and --help print the help on s.out and
// return flag.ErrHelp; a bad flag is a usage error.
func (c *command) run(ctx context.Context, s streams, args []string) error {
	fs, act := c.newFlagSet()
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(s.out, fs)
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return act(ctx, s, pos)
}

// parseInterspersed parses flags wherever they are among the positional
// arguments (`inspect M.gguf --json` as well as `inspect --json M.gguf`);
// everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printHelp is the one help formatter: usage line, description, example and
// every flag of fs.
func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "lmscore %s: %s\n\nusage: lmscore %s\n", c.name, c.summary, c.usage)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	if c.example != "" {
		fmt.Fprintln(w, "\nexample:")
		for _, line := range strings.Split(strings.TrimSpace(c.example), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// aliasFlag registers short as another name of the flag long, sharing its
// value: -m for -model, as llama.cpp's tools spell it.
func aliasFlag(fs *flag.FlagSet, short, long string) {
	f := fs.Lookup(long)
	fs.Var(f.Value, short, "short for -"+long)
}

func sortedNames() []string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "lmscore scores (context, continuation) pairs with a causal language model,\ncomputing every shared prompt prefix once.\n\nusage: lmscore <command> [flags]\n\ncommands:")
	for _, name := range sortedNames() {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "show a command's help: lmscore help <command>")
	fmt.Fprintf(w, "  %-10s %s\n", "version", "print the version, commit and backends")
	fmt.Fprintln(w, "\nRun 'lmscore <command> --help' for a command's flags and an example.")
}

// runMain is main without the exit: it returns the exit status. Help and
// version go to s.out and exit 0; usage errors exit 2, other failures 1.
func runMain(ctx context.Context, args []string, s streams) int {
	if len(args) == 0 {
		usage(s.err)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(s.out)
		return 0
	case "help":
		if len(args) == 1 {
			usage(s.out)
			return 0
		}
		cmd, ok := commands[args[1]]
		if !ok || len(args) > 2 {
			fmt.Fprintf(s.err, "lmscore help: unknown command %q\n\n", strings.Join(args[1:], " "))
			usage(s.err)
			return 2
		}
		fs, _ := cmd.newFlagSet()
		cmd.printHelp(s.out, fs)
		return 0
	case "version", "-version", "--version":
		printVersion(s.out)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.err, "lmscore: unknown command %q\n\n", args[0])
		usage(s.err)
		return 2
	}
	err := cmd.run(ctx, s, args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(s.err, "%s\nRun 'lmscore %s --help' for usage.\n", formatError(cmd.name, err), cmd.name)
		return 2
	default:
		fmt.Fprintln(s.err, formatError(cmd.name, err))
		return 1
	}
}

// formatError is the one place an error becomes the message the user sees:
// "lmscore <command>: <what went wrong>", naming lmscore and the command
// once. Errors of the library carry their own "lmscore: " prefix (right for
// a library, redundant here), and usage errors carry errUsage's text;
// both are dropped.
func formatError(name string, err error) string {
	msg := err.Error()
	prefixes := []string{errUsage.Error() + ": ", "lmscore " + name + ": ", "lmscore: ", name + ": "}
	for trimmed := true; trimmed; {
		trimmed = false
		for _, p := range prefixes {
			if strings.HasPrefix(msg, p) {
				msg, trimmed = msg[len(p):], true
			}
		}
	}
	msg = strings.ReplaceAll(msg, ": lmscore: ", ": ")
	return "lmscore " + name + ": " + msg
}

func main() {
	// The first Ctrl-C or SIGTERM cancels the context so that commands flush
	// what they have; a second one kills the process the usual way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore the default handlers: the next signal ends the process
	}()
	code := runMain(ctx, os.Args[1:], stdStreams())
	stop()
	os.Exit(code)
}
